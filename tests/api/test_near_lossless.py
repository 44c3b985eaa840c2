"""Lossless and near-lossless files: every sample within K, every mode, through every door."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import bitstream
import codec
from codec import LicFormatError

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


def _images(make_image):
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:23, 0:31]
    g16 = np.clip(20000 + 300 * x + 170 * y + rng.integers(-400, 400, x.shape), 0, 65535).astype(np.uint16)
    return {
        "L": Image.fromarray(make_image(23, 31, 1)[..., 0]),
        "RGB": Image.fromarray(make_image(23, 31, 3)),
        "RGBA": Image.fromarray(make_image(23, 31, 4)),
        "I;16": Image.fromarray(g16),
        "I": Image.fromarray(g16.astype(np.int32)),
    }


@pytest.mark.parametrize("max_error", [0, 1, 2, 4])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16", "I"])
def test_every_decoded_sample_is_within_max_error(mode, max_error, make_image):
    image = _images(make_image)[mode]
    data = codec.compress(image, max_error=max_error)
    out = codec.decompress(data)
    expected_mode = {"I": "I;16"}.get(mode, mode)
    assert out.mode == expected_mode and out.size == image.size
    original, decoded = np.asarray(image).astype(np.int64), np.asarray(out).astype(np.int64)
    if mode == "RGBA":
        assert np.array_equal(decoded[..., 3], original[..., 3])  # alpha lossless, as always
    assert np.abs(decoded - original).max() <= max_error
    if max_error == 0:
        assert np.array_equal(decoded, original)
    header = bitstream.read_header(data)
    assert header.residual.max_error == max_error
    assert header.residual.bits == (16 if mode in ("I;16", "I") else 8)


def test_sixteen_bits_are_kept_and_lossy_files_are_unchanged(make_image):
    g16 = np.asarray(_images(make_image)["I;16"])
    out = np.asarray(codec.decompress(codec.compress(g16, max_error=0)))
    assert out.dtype == np.uint16 and np.array_equal(out, g16)
    lossy = codec.compress(make_image(9, 11, 3), quality=3)
    assert lossy[4] == bitstream.FORMAT_VERSION == 1  # lossy files are still version 1
    assert bitstream.read_header(lossy).residual is None


def test_pillow_plugin_saves_lossless_and_reopens_sixteen_bit(make_image):
    for mode, image in _images(make_image).items():
        buffer = io.BytesIO()
        image.save(buffer, format="LIC", lossless=True)
        buffer.seek(0)
        with Image.open(buffer) as reopened:
            assert reopened.mode == {"I": "I;16"}.get(mode, mode)
            assert np.array_equal(np.asarray(reopened), np.asarray(image).astype(np.asarray(reopened).dtype))


def test_more_error_allowed_costs_fewer_bits(make_image):
    image = _images(make_image)["I;16"]
    sizes = [len(codec.compress(image, max_error=k)) for k in (0, 1, 4, 16)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]


def test_inputs_that_cannot_be_kept_exactly_are_refused():
    with pytest.raises(codec.InputError, match="float samples cannot be coded exactly"):
        codec.compress(np.zeros((4, 5, 3), np.float32), max_error=0)
    with pytest.raises(codec.InputError, match="max error"):
        codec.compress(np.zeros((4, 5), np.uint8), max_error=-1)


def _fix_crc(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def test_tampered_residual_streams_raise_format_errors_never_a_wrong_image(make_image):
    """A changed bit (file CRC made good again) is refused, or it fell in the range coder's slack
    and the samples decode exactly as before: never a different image."""
    data = codec.compress(_images(make_image)["I;16"], max_error=1)
    good = np.asarray(codec.decompress(data))
    rng = np.random.default_rng(0)
    residual_start = len(data) - 4 - len(bitstream.unpack(data).streams[-1])
    refused = 0
    for _ in range(25):
        bad = bytearray(data)
        bad[int(rng.integers(residual_start, len(data) - 4))] ^= 1 << int(rng.integers(8))
        try:
            assert np.array_equal(np.asarray(codec.decompress(_fix_crc(bytes(bad)))), good)
        except LicFormatError:
            refused += 1
    assert refused >= 20


def test_cli_lossless_sixteen_bit_png_round_trip(tmp_path, make_image):
    from codec import cli

    g16 = np.asarray(_images(make_image)["I;16"])
    Image.fromarray(g16).save(tmp_path / "in.png")
    assert cli.main(["encode", str(tmp_path / "in.png"), "--lossless", "-o", str(tmp_path / "x.lic")]) == 0
    assert cli.main(["decode", str(tmp_path / "x.lic"), "-o", str(tmp_path / "out.png")]) == 0
    with Image.open(tmp_path / "out.png") as out:
        assert np.array_equal(np.asarray(out).astype(np.int64), g16.astype(np.int64))
    assert cli.main(["encode", str(tmp_path / "in.png"), "--max-error", "2", "-o", str(tmp_path / "y.lic")]) == 0
    assert bitstream.read_header((tmp_path / "y.lic").read_bytes()).residual.max_error == 2


def _make_golden():
    import importlib.util
    from pathlib import Path

    data_dir = Path(__file__).resolve().parents[1] / "data"
    spec = importlib.util.spec_from_file_location("make_golden_exact", data_dir / "make_golden_exact.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make, data_dir


def test_golden_exact_files_decode_and_encode_byte_for_byte():
    """Pins the residual coder of new files (``lic-exact-3``): a change to its model or coding breaks
    this test, and then needs a new coder id (files already written must keep decoding)."""
    make, data_dir = _make_golden()
    rgb_name, gray_name = make.names(bitstream.RESIDUAL_CODER)
    rgb = Image.open(data_dir / "sample.png").convert("RGB")
    golden = (data_dir / rgb_name).read_bytes()
    assert bitstream.read_header(golden).model_id == bitstream.RESIDUAL_CODER == "lic-exact-3"
    assert np.array_equal(np.asarray(codec.decompress(golden)), np.asarray(rgb))
    assert codec.compress_exact(rgb, 0) == golden
    gray, golden = make.gray16(), (data_dir / gray_name).read_bytes()
    assert np.abs(np.asarray(codec.decompress(golden)).astype(np.int64) - gray).max() <= 1
    assert codec.compress_exact(gray, 1) == golden


def _older_coder(coder: str, remake) -> None:
    """Golden files of an older residual coder decode as they did, and ``remake(planes, maxval,
    max_error)`` (its encoder) re-makes their streams byte for byte."""
    make, data_dir = _make_golden()
    rgb_name, gray_name = make.names(coder)
    rgb = np.asarray(Image.open(data_dir / "sample.png").convert("RGB"))
    for name, image, max_error, maxval in ((rgb_name, rgb, 0, 255), (gray_name, make.gray16()[..., None], 1, 65535)):
        golden = (data_dir / name).read_bytes()
        container = bitstream.unpack(golden)
        assert container.header.model_id == coder
        decoded = np.asarray(codec.decompress(golden)).astype(np.int64).reshape(image.shape)
        assert np.abs(decoded - image).max() <= max_error
        assert remake(np.moveaxis(image, -1, 0), maxval, max_error) == container.streams[0]


def test_lic_exact_1_files_still_decode_and_its_coder_is_unchanged():
    from codec.lossless.residual import encode_residual

    _older_coder("lic-exact-1", lambda planes, maxval, k: encode_residual(planes, maxval, k)[0])


def test_lic_exact_2_files_still_decode_and_its_coder_is_unchanged():
    from codec.lossless.exact2 import encode_residual

    _older_coder("lic-exact-2", lambda planes, maxval, k: encode_residual(planes, maxval, k, "lic-exact-2")[0])


def test_lic_exact_5_files_decode_and_its_coder_is_unchanged():
    """Pins lic-exact-5 (API-selectable): a change to its model or coding breaks this test."""
    from codec.lossless.exact2 import encode_residual

    _older_coder("lic-exact-5", lambda planes, maxval, k: encode_residual(planes, maxval, k, "lic-exact-5")[0])


def test_an_unknown_residual_coder_is_refused_in_one_line(make_image):
    import dataclasses

    data = codec.compress(make_image(9, 11, 3), max_error=0)
    container = bitstream.unpack(data)
    other = bitstream.pack(dataclasses.replace(container.header, model_id="lic-exact-99"), container.streams)
    with pytest.raises(LicFormatError, match="unsupported residual coder 'lic-exact-99'"):
        codec.decompress(other)


def test_a_changed_constant_alpha_plane_is_refused_by_the_sample_checksum():
    """In lic-exact-2 and later files the sample CRC covers the alpha plane, whose constant form has
    no checksum of its own: a changed alpha value (file CRC made good again) is refused, never
    decoded."""
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., :3] = np.arange(30, dtype=np.uint8).reshape(5, 6)[..., None] * 7
    rgba[..., 3] = 200
    data = codec.compress_exact(Image.fromarray(rgba, "RGBA"), 0)
    container = bitstream.unpack(data)
    assert container.alpha == bytes([container.alpha[0], 200])  # the constant form: tag, value
    assert np.array_equal(np.asarray(codec.decompress(data)), rgba)
    assert data.count(container.alpha) == 1
    at = data.index(container.alpha)
    bad = bytearray(data)
    bad[at + 1] = 201
    with pytest.raises(LicFormatError, match="checksum"):
        codec.decompress(_fix_crc(bytes(bad)))
