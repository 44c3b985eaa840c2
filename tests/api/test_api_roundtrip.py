"""The Python API and the Pillow plugin: modes, sizes, alpha and ICC survive a round trip."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms

import codec
from codec import LicFormatError

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


def _icc(space: str) -> bytes:
    profile = ImageCms.createProfile("sRGB") if space == "RGB" else ImageCms.createProfile("LAB")
    data = ImageCms.ImageCmsProfile(profile).tobytes()
    if space == "GRAY":  # a minimal stand-in: only the colour-space field matters to lic
        data = data[:16] + b"GRAY" + data[20:]
    return data


@pytest.mark.parametrize("height,width", [(1, 1), (17, 300)])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_roundtrip_preserves_mode_size_and_alpha(mode, height, width, make_image):
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = make_image(height, width, channels, seed=height)
    image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
    out = codec.decompress(codec.compress(image))
    assert out.mode == mode
    assert out.size == (width, height)
    if mode == "RGBA":
        assert np.array_equal(np.asarray(out)[..., 3], pixels[..., 3])


@pytest.mark.parametrize("mode,space", [("RGB", "RGB"), ("RGBA", "RGB"), ("L", "GRAY")])
def test_icc_profile_is_carried_through(mode, space, make_image):
    pixels = make_image(20, 24, {"L": 1, "RGB": 3, "RGBA": 4}[mode])
    image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
    image.info["icc_profile"] = _icc(space)
    out = codec.decompress(codec.compress(image))
    assert out.info.get("icc_profile") == image.info["icc_profile"]


def test_icc_profile_of_another_colour_space_is_dropped(make_image):
    image = Image.fromarray(make_image(16, 16, 3))
    image.info["icc_profile"] = _icc("LAB")[:16] + b"CMYK" + _icc("LAB")[20:]
    assert "icc_profile" not in codec.decompress(codec.compress(image)).info


def test_pillow_plugin_opens_and_saves_lic(tmp_path, make_image):
    pixels = make_image(17, 30, 4)
    path = tmp_path / "x.lic"
    Image.fromarray(pixels, "RGBA").save(path, quality=5)
    assert path.read_bytes()[:4] == b"LIC1"
    with Image.open(path) as img:
        assert (img.format, img.mode, img.size) == ("LIC", "RGBA", (30, 17))
        assert img.info["quality"] == 5.0
        img.load()
        assert np.array_equal(np.asarray(img)[..., 3], pixels[..., 3])
    gray = Image.fromarray(pixels[..., 0], "L")
    buffer = io.BytesIO()
    gray.save(buffer, format="LIC")
    buffer.seek(0)
    with Image.open(buffer) as img:
        assert img.mode == "L" and img.size == (30, 17)
        assert np.asarray(img).shape == (17, 30)


def test_plugin_and_api_decode_identically(tmp_path, make_image):
    data = codec.compress(make_image(20, 21, 3), quality=3.5)
    (tmp_path / "y.lic").write_bytes(data)
    with Image.open(tmp_path / "y.lic") as img:
        assert np.array_equal(np.asarray(img), np.asarray(codec.decompress(data)))


def test_inputs_numpy_tensor_path_and_pil_agree(tmp_path, make_image):
    import torch

    pixels = make_image(19, 23, 3)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    from codec.images import to_coded

    expected = codec.compress(pixels)
    sources = [Image.fromarray(pixels), tmp_path / "in.png", str(tmp_path / "in.png"),
               torch.from_numpy(pixels).permute(2, 0, 1), torch.from_numpy(pixels).permute(2, 0, 1).float() / 255]
    for source in sources:
        # The tiny model's bytes barely depend on the pixels: compare what is coded, too.
        assert np.array_equal(to_coded(source).rgb, pixels)
        assert codec.compress(source) == expected
    assert codec.decompress(codec.compress(pixels[..., 0])).mode == "L"
    assert codec.decompress(codec.compress(pixels[..., :1])).mode == "L"


def test_palette_with_transparency_decodes_as_rgba_with_exact_alpha():
    image = Image.new("P", (9, 7))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    image.putdata([i % 3 for i in range(63)])
    image.info["transparency"] = 0
    out = codec.decompress(codec.compress(image))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(image.convert("RGBA"))[..., 3])


def test_la_decodes_as_rgba_and_cmyk_as_rgb(make_image):
    pixels = make_image(8, 10, 4)
    la = Image.fromarray(pixels[..., [0, 3]], "LA")
    out = codec.decompress(codec.compress(la))
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], pixels[..., 3])
    cmyk = Image.fromarray(pixels, "RGBA").convert("CMYK")
    assert codec.decompress(codec.compress(cmyk)).mode == "RGB"


def test_16_bit_input_is_reduced_with_a_warning(make_image):
    wide = make_image(12, 14, 1)[..., 0].astype(np.uint16) * 257
    image = Image.fromarray(wide.astype(np.int32), "I")
    with pytest.warns(UserWarning, match="16-bit"):
        data = codec.compress(image)
    assert codec.decompress(data).mode == "L"
    with pytest.warns(UserWarning, match="16-bit"):
        codec.compress(np.dstack([wide] * 3))
    png = io.BytesIO()
    Image.fromarray(np.full((5, 6), 200, np.uint16)).save(png, format="PNG")  # dark, but 16-bit
    with Image.open(png) as sixteen, pytest.warns(UserWarning, match="16-bit"):
        assert sixteen.mode == "I;16"
        out = codec.decompress(codec.compress(sixteen))
    assert out.mode == "L"


def test_exif_orientation_is_applied(make_image):
    image = Image.fromarray(make_image(10, 30, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    with Image.open(buffer) as jpeg:
        out = codec.decompress(codec.compress(jpeg))
    assert out.size == (10, 30)


def test_alpha_blob_picks_a_compact_lossless_form(make_image):
    from codec.alpha import decode_alpha, encode_alpha

    for plane in (np.full((40, 50), 255, np.uint8), make_image(40, 50, 1)[..., 0],
                  np.tile(np.arange(50, dtype=np.uint8), (40, 1))):
        blob = encode_alpha(plane)
        assert np.array_equal(decode_alpha(blob, 50, 40), plane)
    assert len(encode_alpha(np.full((40, 50), 255, np.uint8))) == 2
    with pytest.raises(LicFormatError):
        decode_alpha(encode_alpha(make_image(40, 50, 1)[..., 0]), 51, 40)
    with pytest.raises(LicFormatError):
        decode_alpha(b"\x09junk", 2, 2)


def test_quality_is_a_real_number_in_range(make_image):
    pixels = make_image(16, 16, 3)
    assert codec.Codec().compress(pixels, quality=2.75)[:4] == b"LIC1"
    for bad in (0.5, 8.01, float("nan")):
        with pytest.raises(ValueError, match="quality"):
            codec.compress(pixels, quality=bad)


def test_bad_data_raises_lic_format_error(make_image):
    data = codec.compress(make_image(16, 16, 3))
    for bad in (b"", b"LIC", data[:-1], data[:20], b"\x89PNG" + data[4:], data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]):
        with pytest.raises(LicFormatError):
            codec.decompress(bad)


def test_file_from_another_model_is_refused(tmp_path, make_image):
    import torch

    from codec.networks.config import ModelConfig
    from codec.networks.model import LicModel
    from codec.weights import save_model

    torch.manual_seed(1)
    save_model(LicModel(ModelConfig.tiny()), tmp_path)
    other = codec.Codec(device="cpu", weights=tmp_path)
    with pytest.raises(LicFormatError, match="another model"):
        codec.decompress(other.compress(make_image(16, 16, 3)))


def test_codec_reports_timings(make_image):
    c = codec.Codec(device="cpu", quality=3)
    data = c.compress(make_image(16, 16, 3))
    assert c.last_timings.total > 0
    c.decompress(data)
    assert c.last_timings.network > 0 and c.last_timings.coding > 0


def test_target_searches_land_on_the_right_side(make_image):
    c = codec.Codec(device="cpu")
    pixels = make_image(32, 40, 3)
    smallest, largest = len(c.compress(pixels, quality=1)), len(c.compress(pixels, quality=8))
    for limit in (smallest, (smallest + largest) // 2, largest + 10):
        result = c.compress_to_size(pixels, limit)
        assert result.met and len(result.data) <= limit
    assert not c.compress_to_size(pixels, smallest - 1).met
    result = c.compress_to_bpp(pixels, 100.0)
    assert result.met and result.quality == codec.MAX_QUALITY
    low = c.compress_to_psnr(pixels, 1.0)
    assert low.met and low.quality == codec.MIN_QUALITY
    decoded = np.asarray(c.decompress(low.data))
    assert codec.psnr(decoded, pixels) == pytest.approx(low.psnr, abs=1e-9)
    high = c.compress_to_psnr(pixels, 90.0)
    assert not high.met and high.quality == codec.MAX_QUALITY


def test_import_codec_is_light_and_registers_the_plugin():
    code = ("import sys, codec; from PIL import Image; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert Image.registered_extensions()['.lic'] == 'LIC'")
    subprocess.run([sys.executable, "-c", code], check=True)
