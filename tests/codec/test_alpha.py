"""Claims about the alpha plane's blob (codec.alpha) and where lic lifts Pillow's pixel limit."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from bitstream import MAX_PIXELS, LicFormatError
from codec.alpha import decode_alpha, encode_alpha
from codec.images import open_image, pixel_limit


def test_each_form_decodes_to_its_plane_and_the_smallest_is_written():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    assert encode_alpha(np.full((3, 5), 7, np.uint8)) == b"\x02\x07"
    for plane in (noise, ramp):
        blob = encode_alpha(plane)
        assert np.array_equal(decode_alpha(blob, plane.shape[1], plane.shape[0]), plane)
        raw = b"\x00" + zlib.compress(plane.tobytes(), 9)
        assert len(blob) <= len(raw)
        assert np.array_equal(decode_alpha(raw, plane.shape[1], plane.shape[0]), plane)


@pytest.mark.parametrize("blob", [b"", b"\x00" + zlib.compress(bytes(14)), b"\x00garbage", b"\x01not a png",
                                  b"\x02", b"\x07\x00"])
def test_a_blob_that_is_not_a_plane_of_the_size_is_corrupt(blob):
    with pytest.raises(LicFormatError, match="corrupt"):
        decode_alpha(blob, 3, 5)


def test_the_pixel_limit_is_lifted_only_while_lic_opens_an_image(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own limit: 64 > 2 * 10 pixels
        Image.open(tmp_path / "a.png")
    assert open_image(tmp_path / "a.png").size == (8, 8)
    png = io.BytesIO()
    Image.new("L", (8, 8), 3).save(png, format="PNG")
    assert decode_alpha(b"\x01" + png.getvalue(), 8, 8).max() == 3
    assert Image.MAX_IMAGE_PIXELS == 10
    with pixel_limit():
        assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # no limit stays no limit
    with pixel_limit():
        assert Image.MAX_IMAGE_PIXELS is None
