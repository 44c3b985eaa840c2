"""16-bit RGB and RGBA keep all 16 bits through the exact modes: from PNG and TIFF files (lic's
writers and others'), arrays and ``Image16``, back to 16-bit PNG, TIFF and PPM; what cannot be
kept exactly is refused in one line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

import bitstream
import codec
from codec import Image16, InputError, cli
from codec.images import open_image
from sixteen_bit_files import pixels16, plain_png, plain_ppm, plain_tiff

ICC = bytes(16) + b"RGB " + bytes(108)  # a profile header says its colour space in bytes 16..20


def _same_within(decoded: np.ndarray, original: np.ndarray, max_error: int) -> None:
    diff = np.abs(decoded.astype(np.int64) - original.astype(np.int64))
    assert diff[..., :3].max() <= max_error
    if original.shape[2] == 4:
        assert np.array_equal(decoded[..., 3], original[..., 3])  # alpha is always exact
    if max_error == 0:
        assert np.array_equal(decoded, original)


# -- round trips -------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_error", [0, 2])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("source,target", [(".png", ".tif"), (".tif", ".png")])
def test_sixteen_bit_colour_files_round_trip_through_lic_within_max_error(tmp_path, capsys, source, target,
                                                                         channels, max_error):
    pixels = pixels16(channels)
    Image16(pixels).save(tmp_path / f"in{source}")
    assert cli.main(["encode", str(tmp_path / f"in{source}"), "--max-error", str(max_error),
                     "-o", str(tmp_path / "x.lic")]) == 0, capsys.readouterr().err
    header = bitstream.read_header((tmp_path / "x.lic").read_bytes())
    assert (header.residual.bits, header.channels) == (16, "RGBA" if channels == 4 else "RGB")
    assert cli.main(["decode", str(tmp_path / "x.lic"), "-o", str(tmp_path / f"out{target}")]) == 0
    assert "warning" not in capsys.readouterr().err
    back = open_image(tmp_path / f"out{target}", exact=True)
    assert isinstance(back, Image16) and back.size == (12, 9)
    _same_within(np.asarray(back), pixels, max_error)
    with Image.open(tmp_path / f"out{target}") as img:  # Pillow alone reads the high bytes of the same file
        assert np.array_equal(np.asarray(img), np.asarray(back) >> 8)


@pytest.mark.parametrize("channels", [3, 4])
def test_arrays_and_image16_round_trip_through_the_api(channels):
    pixels = pixels16(channels, seed=1)
    data = codec.compress(pixels, max_error=0)
    out = codec.decompress(data)
    assert isinstance(out, Image16) and out.mode == ("RGBA;16" if channels == 4 else "RGB;16")
    assert np.asarray(out).dtype == np.uint16 and np.array_equal(np.asarray(out), pixels)
    assert codec.compress(out, max_error=0) == data  # what the decoder gives, the encoder takes
    near = codec.decompress_exact(codec.compress_exact(Image16(pixels, ICC), 2))
    _same_within(np.asarray(near), pixels, 2)
    assert near.info["icc_profile"] == ICC
    buffer = io.BytesIO()
    near.save(buffer, format="PNG")
    with Image.open(buffer) as img:
        assert img.info["icc_profile"] == ICC


def test_sixteen_bit_alpha_keeps_every_bit_in_each_form_of_the_alpha_blob():
    from codec.alpha import decode_alpha, encode_alpha

    y, x = np.mgrid[0:30, 0:40]
    planes = {"constant": np.full((30, 40), 65534, np.uint16), "noise": pixels16(4)[..., 3],
              "smooth": (x * 1500 + y * 700 + (x * y) % 3).astype(np.uint16)}
    tags = set()
    for plane in planes.values():
        blob = encode_alpha(plane, 16)
        tags.add(blob[0])
        decoded = decode_alpha(blob, plane.shape[1], plane.shape[0], 16)
        assert decoded.dtype == np.uint16 and np.array_equal(decoded, plane)
    assert tags == {0, 1, 2}  # zlib, PNG and constant forms all met


# -- reading others' files ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["png rgb", "png rgba", "tiff little-endian", "tiff big-endian rgba",
                                  "tiff rgb with an unused extra sample", "ppm"])
def test_sixteen_bit_files_written_by_other_writers_are_read_whole(tmp_path, kind):
    pixels = pixels16(4 if "rgba" in kind or "extra" in kind else 3, seed=2)
    data = {"png rgb": lambda: plain_png(pixels), "png rgba": lambda: plain_png(pixels),
            "tiff little-endian": lambda: plain_tiff(pixels),
            "tiff big-endian rgba": lambda: plain_tiff(pixels, ">", extra=2),
            "tiff rgb with an unused extra sample": lambda: plain_tiff(pixels, extra=0),
            "ppm": lambda: plain_ppm(pixels)}[kind]()
    path = tmp_path / f"in.{kind[:3]}"
    path.write_bytes(data)
    expected = pixels[..., :3] if "extra" in kind else pixels
    image = open_image(path, exact=True)
    assert isinstance(image, Image16) and np.array_equal(np.asarray(image), expected)
    with open(path, "rb") as f:  # a file object, read twice from where it stands
        assert np.array_equal(np.asarray(open_image(f, exact=True)), expected)


def test_exif_orientation_turns_all_sixteen_bits(tmp_path):
    pixels = pixels16(3, seed=3)
    path = tmp_path / "turned.tif"
    path.write_bytes(plain_tiff(pixels, orientation=6))
    image = open_image(path, exact=True)
    with Image.open(path) as img:
        as_pillow_turns_it = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(np.asarray(image) >> 8, as_pillow_turns_it)
    assert np.array_equal(np.asarray(image), np.rot90(pixels, -1))  # 6: turn 90 degrees clockwise


def test_a_pil_image_opened_but_not_loaded_from_a_sixteen_bit_file_is_coded_whole(tmp_path):
    pixels = pixels16(3, seed=4)
    (tmp_path / "in.png").write_bytes(plain_png(pixels))
    with Image.open(tmp_path / "in.png") as img:
        data = codec.compress(img, max_error=0)
    assert np.array_equal(np.asarray(codec.decompress(data)), pixels)


# -- writing -----------------------------------------------------------------------------------------

def test_image16_saves_sixteen_bit_ppm_and_reduces_to_eight_bits_as_pillow_reads_it(tmp_path):
    pixels = pixels16(3, seed=5)
    Image16(pixels).save(tmp_path / "x.ppm")
    data = (tmp_path / "x.ppm").read_bytes()
    assert data.startswith(b"P6\n12 9\n65535\n") and data.endswith(pixels.astype(">u2").tobytes())
    with Image.open(tmp_path / "x.ppm") as img:  # Pillow scales 16-bit PPM samples to 8 bits, rounded
        assert np.array_equal(np.asarray(img), np.asarray(Image16(pixels).to_8bit()))
    with pytest.raises(InputError, match="PNG, TIFF and PPM"):
        Image16(pixels).save(tmp_path / "x.jpg")
    with pytest.raises(InputError, match="no alpha"):
        Image16(pixels16(4)).save(tmp_path / "y.ppm")


# -- what stays 8 bits, and what is refused ----------------------------------------------------------

@pytest.mark.usefixtures("use_tiny_weights")
def test_the_lossy_mode_reduces_sixteen_bit_colour_to_eight_bits_with_a_warning():
    with pytest.warns(UserWarning, match="16-bit samples reduced to 8 bits"):
        data = codec.compress(Image16(pixels16(4)), quality=4)
    assert bitstream.read_header(data).version == bitstream.FORMAT_VERSION and codec.decompress(data).mode == "RGBA"


def _float_tiff(tmp_path):
    Image.fromarray(np.full((6, 7), 0.5, np.float32), "F").save(tmp_path / "float.tif")
    return tmp_path / "float.tif"


def _gray_alpha_png(tmp_path):
    (tmp_path / "la16.png").write_bytes(plain_png(pixels16(2)))  # 16-bit gray with alpha: Pillow gives 8 bits
    return tmp_path / "la16.png"


def _ten_bit_ppm(tmp_path):
    (tmp_path / "ten.ppm").write_bytes(plain_ppm(pixels16(3) >> 6, maxval=1023))  # scaled by Pillow: not exact
    return tmp_path / "ten.ppm"


@pytest.mark.parametrize("make,max_error,reason", [
    (lambda tmp: np.full((4, 5, 3), 0.5, np.float32), 0, "array: float samples cannot be coded exactly"),
    (_float_tiff, 0, "32-bit float samples cannot be coded exactly"),
    (lambda tmp: np.full((4, 5, 3), 70000, np.int32), 0, "outside 0..65535"),
    (lambda tmp: np.full((4, 5), -3, np.int16), 0, "outside 0..65535"),
    (_gray_alpha_png, 0, "16-bit samples cannot be coded exactly"),
    (_ten_bit_ppm, 0, "16-bit samples cannot be coded exactly"),
    (lambda tmp: np.zeros((4, 5, 3), np.uint8), 300, "max error must be in 0..255 for 8-bit samples"),
    (lambda tmp: np.zeros((4, 5, 3), np.uint16), 70000, "max error must be in 0..65535 for 16-bit samples"),
])
def test_what_cannot_be_kept_exactly_is_refused_in_one_line(tmp_path, make, max_error, reason):
    with pytest.raises(InputError) as error:
        codec.compress(make(tmp_path), max_error=max_error)
    assert reason in str(error.value) and "\n" not in str(error.value)


def test_pillow_opens_a_sixteen_bit_colour_file_as_eight_bits_rounded():
    pixels = pixels16(4, seed=6)
    with Image.open(io.BytesIO(codec.compress(pixels, max_error=0))) as img:
        assert img.mode == "RGBA" and img.size == (12, 9)
        assert np.array_equal(np.asarray(img), np.round(pixels * (255 / 65535)).astype(np.uint8))
