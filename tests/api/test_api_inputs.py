"""What the API accepts and how it says no: float pixels, bit depths, frames, quality, paths,
and the Pillow plugin's reasons for refusing a damaged file."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import codec

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


def png_48_bit(path, pixels: np.ndarray) -> None:
    """Write an (H, W, 3) uint16 array as a 16-bit-per-sample RGB PNG (Pillow cannot)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def depth_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "bits" in str(w.message)]


# -- float input: one rule for arrays and tensors ---------------------------------------------------

def coded(image) -> np.ndarray:
    """The RGB samples the encoder codes for ``image`` (file bytes of the tiny model barely
    depend on the pixels, so inputs are compared here)."""
    from codec.images import to_coded

    return to_coded(image).rgb


def test_float_arrays_and_tensors_in_0_1_code_like_uint8(make_image):
    import torch

    pixels = make_image(19, 23, 3)
    as_float = pixels.astype(np.float64) / 255
    for image in (as_float, as_float.astype(np.float32), torch.from_numpy(as_float).permute(2, 0, 1),
                  torch.from_numpy(as_float).permute(2, 0, 1).float()[None]):
        assert np.array_equal(coded(image), pixels)
    assert np.array_equal(coded(torch.from_numpy(as_float).permute(2, 0, 1).half()),
                          coded(as_float.astype(np.float16)))
    # A rounding error just outside [0, 1] is not an error.
    assert np.array_equal(coded(as_float * (1 + 1e-7) - 1e-9), pixels)
    assert codec.compress(torch.from_numpy(as_float).permute(2, 0, 1))[:4] == b"LIC1"


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_float_input_outside_0_1_is_an_error_not_a_silent_clip(kind, make_image):
    import torch

    wrong = make_image(19, 23, 3).astype(np.float64)  # 0..255 held in floats
    image = wrong if kind == "numpy" else torch.from_numpy(wrong).permute(2, 0, 1).float()
    with pytest.raises(ValueError, match=r"\[0, 1\]") as error:
        codec.compress(image)
    message = str(error.value)
    assert "\n" not in message and "255" in message


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinite_float_input_is_an_error(kind, bad):
    import torch

    array = np.full((8, 9, 3), bad)
    image = array if kind == "numpy" else torch.from_numpy(array).permute(2, 0, 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        codec.compress(image)
    partly = np.full((8, 9), 0.5)
    partly[3, 4] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        codec.compress(partly if kind == "numpy" else torch.from_numpy(partly)[None])


def test_integer_tensors_follow_the_array_rule(make_image):
    import torch

    pixels = make_image(11, 13, 3)
    assert np.array_equal(coded(torch.from_numpy(pixels.astype(np.int64)).permute(2, 0, 1)), pixels)
    assert np.array_equal(coded(torch.from_numpy(pixels)[..., 0][None]), np.dstack([pixels[..., 0]] * 3))
    assert np.array_equal(coded(pixels.astype(np.int64)), pixels)


def test_tensor_shape_error_reports_the_shape_that_was_passed(make_image):
    import torch

    hwc = torch.from_numpy(make_image(32, 40, 3))
    with pytest.raises(ValueError, match=r"\(32, 40, 3\)") as error:
        codec.compress(hwc)
    assert "permute(2, 0, 1)" in str(error.value)


# -- bit depth and frames -----------------------------------------------------------------------------

def test_48_bit_png_warns_once_naming_the_file(tmp_path, make_image):
    wide = make_image(9, 11, 3).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    png_48_bit(path, wide)
    for source in (path, str(path)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            codec.compress(source)
        assert depth_warnings(caught) == [f"{path}: 16-bit samples reduced to 8 bits"]
    with Image.open(path) as img, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.compress(img)
    assert depth_warnings(caught) == [f"{path}: 16-bit samples reduced to 8 bits"]


def test_8_bit_png_gives_no_depth_warning(tmp_path, make_image):
    Image.fromarray(make_image(9, 11, 3)).save(tmp_path / "plain.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.compress(tmp_path / "plain.png")
    assert depth_warnings(caught) == []


def test_32_bit_samples_are_called_32_bit(make_image):
    deep = make_image(12, 14, 1)[..., 0].astype(np.int64) * 16843009  # 0..2^32-1 scale
    image = Image.fromarray((deep // 2).astype(np.int32), "I")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.compress(image)
    messages = depth_warnings(caught)
    assert len(messages) == 1 and "32-bit" in messages[0] and "16-bit" not in messages[0]
    assert not messages[0].startswith("image:")


@pytest.mark.parametrize("name", ["anim.gif", "pages.tif"])
def test_animated_or_multi_page_file_says_only_the_first_frame_is_coded(tmp_path, name):
    frames = [Image.new("RGB", (8, 6), (40 * i, 200 - 40 * i, 90)) for i in range(3)]
    frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
    for source in (tmp_path / name, Image.open(tmp_path / name)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = codec.decompress(codec.compress(source))
        frame_warnings = [str(w.message) for w in caught if "frame" in str(w.message)]
        assert frame_warnings == [f"{tmp_path / name}: 3 frames; only the first is coded"]
        assert out.size == (8, 6)
    Image.new("RGB", (8, 6)).save(tmp_path / "still.gif")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.compress(tmp_path / "still.gif")
    assert not [w for w in caught if "frame" in str(w.message)]


# -- quality, paths, results ----------------------------------------------------------------------------

def test_quality_none_means_the_default_and_non_numbers_are_refused(make_image):
    pixels = make_image(16, 16, 3)
    assert codec.compress(pixels, quality=None) == codec.compress(pixels)
    for bad in (True, False, "4", [4]):
        with pytest.raises(TypeError, match="quality must be a number") as error:
            codec.compress(pixels, quality=bad)
        assert "float()" not in str(error.value)
    with pytest.raises(TypeError, match="quality must be a number"):
        codec.Codec(device="cpu", quality=True)
    assert codec.compress(pixels, quality=np.float32(3)) == codec.compress(pixels, quality=3)


def test_decompress_takes_bytes_or_a_path(tmp_path, make_image):
    data = codec.compress(make_image(16, 18, 3))
    (tmp_path / "x.lic").write_bytes(data)
    expected = np.asarray(codec.decompress(data))
    assert np.array_equal(np.asarray(codec.decompress(tmp_path / "x.lic")), expected)
    assert np.array_equal(np.asarray(codec.decompress(str(tmp_path / "x.lic"))), expected)
    assert np.array_equal(np.asarray(codec.decompress(bytearray(data))), expected)
    with pytest.raises(TypeError, match="bytes"):
        codec.decompress(12)


def test_target_result_repr_is_short(make_image):
    result = codec.Codec(device="cpu").compress_to_size(make_image(32, 40, 3), 10_000)
    text = repr(result)
    assert len(text) < 120 and "quality=" in text and "bytes" in text and "\\x" not in text


# -- the Pillow plugin keeps the reason a file is refused -------------------------------------------------

def test_image_open_on_a_damaged_lic_says_why(tmp_path, make_image):
    data = codec.compress(make_image(16, 18, 3))
    (tmp_path / "cut.lic").write_bytes(data[: len(data) // 2])
    (tmp_path / "flip.lic").write_bytes(data[:-6] + bytes([data[-6] ^ 0x40]) + data[-5:])
    with pytest.raises(UnidentifiedImageError, match="truncated file") as error:
        Image.open(tmp_path / "cut.lic")
    assert "cut.lic" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UnidentifiedImageError, match="CRC mismatch"):
        Image.open(tmp_path / "flip.lic")
    with pytest.raises(UnidentifiedImageError, match="truncated file"):
        Image.open(io.BytesIO(data[: len(data) // 2]))
