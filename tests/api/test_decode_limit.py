"""Bounded decoding: a file that declares more pixels than the limit is refused in one line before
any stream is decoded, by the API and by ``lic decode``; ``max_pixels`` and ``--max-pixels`` raise
the limit, which is Pillow's decompression-bomb limit by default.  The crafted files are a few
dozen bytes that declare 2^28 pixels: nothing of that size is ever allocated."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

import bitstream
import codec
import codec.api
import codec.coding
import codec.lossless.near_lossless
from bitstream import MAX_PIXELS, Header, LicFormatError, Residual, ResidualHeader
from codec import InputError, cli
from codec.limits import decode_limit

SIDE = 16384  # 16384 x 16384 = 2^28 pixels: the most the format holds, 3x Pillow's limit


def huge_exact() -> bytes:
    return bitstream.pack(ResidualHeader(SIDE, SIDE, "RGB", Residual(16, 0, 0)), [bytes(8)])


def huge_lossy() -> bytes:
    return bitstream.pack(Header("lic-tiny", bytes(4), 4.0, SIDE, SIDE, "RGBA", 0), [bytes(8)], alpha=b"\x02\xff")


class DecodingStarted(LicFormatError):
    """Raised by the stand-ins for the stream decoders: a limit let the file through."""


@pytest.fixture
def no_decoding(monkeypatch):
    """Stream decoding and the model stand in for the real ones: reaching them is a test's signal."""
    def started(*args, **kwargs):
        raise DecodingStarted("decoding started")

    for coder in codec.lossless.near_lossless.DECODERS:
        monkeypatch.setitem(codec.lossless.near_lossless.DECODERS, coder, started)
    monkeypatch.setattr(codec.coding, "decode_rgb", started)
    monkeypatch.setattr(codec.api, "default_codec", started)


@pytest.mark.parametrize("make", [huge_exact, huge_lossy])
def test_a_file_over_the_limit_is_refused_before_any_decoding(no_decoding, make):
    data = make()
    assert len(data) < 100
    for decode in (codec.decompress, codec.decompress_exact) if make is huge_exact else (codec.decompress,):
        with pytest.raises(LicFormatError) as error:
            decode(data)
        message = str(error.value)
        assert not isinstance(error.value, DecodingStarted) and "\n" not in message
        assert f"{SIDE}x{SIDE} = {SIDE * SIDE:,} pixels" in message and "89,478,485" in message
        assert "max_pixels=" in message


def test_max_pixels_raises_the_limit_and_lowers_it(no_decoding, make_image):
    with pytest.raises(DecodingStarted):
        codec.decompress(huge_exact(), max_pixels=MAX_PIXELS)
    with pytest.raises(DecodingStarted):
        codec.decompress(huge_lossy(), max_pixels=SIDE * SIDE)
    small = codec.compress_exact(make_image(12, 16, 3), 0)
    with pytest.raises(LicFormatError, match="limit of 191 pixels"):
        codec.decompress(small, max_pixels=191)
    with pytest.raises(DecodingStarted):
        codec.decompress(small, max_pixels=192)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "1000"])
def test_max_pixels_must_be_a_positive_integer(bad):
    with pytest.raises(InputError, match="max_pixels"):
        codec.decompress(huge_exact(), max_pixels=bad)


def test_the_default_limit_is_pillows_as_the_application_set_it(no_decoding, monkeypatch):
    assert decode_limit() == Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own default
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SIDE * SIDE)
    with pytest.raises(DecodingStarted):
        codec.decompress(huge_exact())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's limit off: the format's own bound
    assert decode_limit() == MAX_PIXELS
    with pytest.raises(DecodingStarted):
        codec.decompress(huge_exact())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(LicFormatError, match="limit of 100 pixels"):
        codec.decompress(codec.compress_exact(np.zeros((12, 16), np.uint8), 0))


def test_pillow_applies_its_own_rule_to_lic_files(monkeypatch, make_image):
    pixels = make_image(12, 16, 3)
    data = codec.compress_exact(pixels, 0)  # 192 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # over the limit: a warning, and it decodes
    with pytest.warns(Image.DecompressionBombWarning):
        with Image.open(io.BytesIO(data)) as img:
            assert np.array_equal(np.asarray(img), pixels)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 95)  # over twice the limit: refused at open
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(data))


def test_lic_decode_refuses_a_file_over_the_limit_in_one_line_and_max_pixels_raises_it(no_decoding, tmp_path, capsys):
    for make in (huge_lossy, huge_exact):  # the lossy one is refused before the model loads
        (tmp_path / "huge.lic").write_bytes(make())
        status = cli.main(["decode", str(tmp_path / "huge.lic"), "-o", str(tmp_path / "out.png")])
        err = capsys.readouterr().err
        assert status == 1 and err.count("\n") == 1 and err.startswith(f"lic: error: {tmp_path / 'huge.lic'}: ")
        assert "--max-pixels" in err and "internal" not in err and not (tmp_path / "out.png").exists()
    status = cli.main(["decode", str(tmp_path / "huge.lic"), "-o", str(tmp_path / "out.png"),
                       "--max-pixels", "268,435,456"])
    assert status == 1 and "decoding started" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-1", "many", "1e9"])
def test_lic_decode_max_pixels_takes_a_positive_integer(tmp_path, capsys, bad):
    (tmp_path / "huge.lic").write_bytes(huge_exact())
    assert cli.main(["decode", str(tmp_path / "huge.lic"), "--max-pixels", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pixels" in err
