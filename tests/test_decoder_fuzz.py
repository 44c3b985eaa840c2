"""The decoder only ever returns the right image or raises LicFormatError.

Mutations of a valid file: byte flips, truncations, extensions, splices, and the same with the
trailing CRC32 recomputed, so that tampered payloads reach the range decoder and the model
(a plain mutation is stopped by the container's CRC).  Lossy files, lossless and near-lossless
8-bit RGB and 16-bit gray, 16-bit RGB and RGBA.  CI runs a short version; set
LIC_FUZZ_EXAMPLES=100000 for a long run.
"""

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bitstream
from bitstream import LicFormatError
from codec.coding import decode_rgb, encode_rgb
from codec.networks.config import ModelConfig
from codec.networks.model import LicModel
from codec.weights import fingerprint

EXAMPLES = int(os.environ.get("LIC_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def setup(active_tiny_model):
    model = active_tiny_model
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    digest = fingerprint(model)
    data = encode_rgb(model, rgb, 6.0, model_hash=digest)
    reference, _, _ = decode_rgb(model, data, model_hash=digest)
    return model, digest, data, reference


def _fix_crc(data: bytes) -> bytes:
    """Recompute the trailing CRC32 (little-endian, over everything before it)."""
    if len(data) < 4:
        return data
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("splice"), st.tuples(st.integers(0, 10**6), st.binary(max_size=16))),
)


def _apply(data: bytes, op) -> bytes:
    kind, arg = op
    buf = bytearray(data)
    if kind == "flip":
        for pos, bits in arg:
            buf[pos % len(buf)] ^= bits
    elif kind == "truncate":
        del buf[arg % len(buf):]
    elif kind == "extend":
        buf += arg
    else:
        pos, insert = arg
        pos %= len(buf)
        buf[pos:pos + len(insert)] = insert
    return bytes(buf)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=mutation, fix_crc=st.booleans())
def test_tampered_files_decode_exactly_or_raise_lic_format_error(setup, op, fix_crc):
    model, digest, data, reference = setup
    tampered = _apply(data, op)
    if fix_crc:
        tampered = _fix_crc(tampered)
    try:
        rgb, _, _ = decode_rgb(model, tampered, model_hash=digest)
    except LicFormatError as err:
        assert "\n" not in str(err) and str(err)
        return
    assert np.array_equal(rgb, reference), "a tampered file decoded to a different image"


def test_file_from_another_model_is_refused(setup):
    model, digest, data, _ = setup
    other = LicModel(ModelConfig.tiny()).eval()
    with pytest.raises(LicFormatError, match="another model"):
        decode_rgb(other, data)


def test_same_image_encodes_to_identical_bytes(setup):
    model, digest, data, _ = setup
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    assert encode_rgb(model, rgb, 6.0, model_hash=digest) == data


def test_decoding_with_one_or_two_threads_gives_identical_images(setup):
    model, digest, data, reference = setup
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _, _ = decode_rgb(model, data, model_hash=digest)
        torch.set_num_threads(2)
        two, _, _ = decode_rgb(model, data, model_hash=digest)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(one, reference) and np.array_equal(two, reference)


@pytest.fixture(scope="module")
def residual_setup():
    """A near-lossless 16-bit gray file and a lossless RGB one of the residual coder of new files
    (version 2: one residual stream), the same two, a colour overlay and two-level gray text (the
    tools for few colours on) by lic-exact-4 and by lic-exact-5, and the golden files of lic-exact-2, -3 and -5, which still decode."""
    from pathlib import Path

    from codec.images import ExactImage
    from codec.lossless.near_lossless import decode_exact, encode_exact

    rng = np.random.default_rng(1)
    gray = np.clip(rng.normal(2000, 300, (21, 27, 1)), 0, 4095).astype(np.uint16)
    rgb = rng.integers(0, 256, (9, 13, 3)).astype(np.uint8)
    overlay = np.repeat(rng.integers(0, 40, (12, 14, 1)), 3, axis=-1).astype(np.uint8)
    overlay[3:9, 4:11] = [255, 128, 32]  # a patch of one colour over gray
    text = np.where(rng.random((15, 19, 1)) < 0.3, 250, 12).astype(np.uint8)
    files = [encode_exact(ExactImage(gray, 16, "L"), 1), encode_exact(ExactImage(rgb, 8, "RGB"), 0)]
    files += [encode_exact(ExactImage(gray, 16, "L"), 1, coder="lic-exact-4"),
              encode_exact(ExactImage(rgb, 8, "RGB"), 0, coder="lic-exact-4"),
              encode_exact(ExactImage(overlay, 8, "RGB"), 0, coder="lic-exact-4"),
              encode_exact(ExactImage(text, 8, "L"), 0, coder="lic-exact-4")]
    files += [encode_exact(ExactImage(gray, 16, "L"), 1, coder="lic-exact-5"),
              encode_exact(ExactImage(rgb, 8, "RGB"), 0, coder="lic-exact-5"),
              encode_exact(ExactImage(overlay, 8, "RGB"), 0, coder="lic-exact-5"),
              encode_exact(ExactImage(text, 8, "L"), 0, coder="lic-exact-5")]
    data_dir = Path(__file__).resolve().parent / "data"
    files += [(data_dir / name).read_bytes() for name in ("golden-exact2-16.lic", "golden-exact2-rgb.lic",
                                                          "golden-exact3-16.lic", "golden-exact3-rgb.lic",
                                                          "golden-exact5-16.lic", "golden-exact5-rgb.lic")]
    return [(data, decode_exact(data)[0]) for data in files], decode_exact


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=mutation, fix_crc=st.booleans(), which=st.integers(0, 15))
def test_tampered_residual_files_decode_exactly_or_raise_lic_format_error(residual_setup, op, fix_crc, which):
    files, decode_exact = residual_setup
    tampered, reference = _tamper(files[which], op, fix_crc)
    try:
        samples, _, _ = decode_exact(tampered)
    except LicFormatError as err:
        assert "\n" not in str(err) and str(err)
        return
    assert np.array_equal(samples, reference), "a tampered file decoded to different samples"


def test_residual_fuzz_files_cover_lic_exact_4s_tools_for_few_colours(residual_setup):
    files, _ = residual_setup
    assert [bitstream.unpack(data).streams[0][0] for data, _ in files[2:10]] == [0, 0, 1, 1] * 2  # options byte


def _tamper(file, op, fix_crc):
    """(the file changed by ``op``, its CRC made good again if ``fix_crc``; the samples it held)."""
    data, reference = file
    tampered = _apply(data, op)
    return (_fix_crc(tampered) if fix_crc else tampered), reference


@pytest.fixture(scope="module")
def colour16_setup():
    """A lossless 16-bit RGBA file (its alpha plane in the zlib form) and a near-lossless 16-bit RGB
    one, decoded through the API, alpha plane included."""
    from codec import compress_exact, decompress_exact

    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:6, 0:7]
    rgba = np.stack([20000 + 3000 * x + 1000 * y + rng.integers(0, 512, x.shape) for _ in range(4)], axis=-1)
    rgba[..., 3] = rng.integers(0, 65536, x.shape)
    rgba = rgba.astype(np.uint16)
    files = [compress_exact(rgba, 0), compress_exact(rgba[..., :3], 2)]
    assert bitstream.unpack(files[0]).alpha[0] == 0  # the zlib form: its checksum guards the plane
    return [(data, np.asarray(decompress_exact(data))) for data in files], decompress_exact


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=mutation, fix_crc=st.booleans(), which=st.integers(0, 1))
def test_tampered_sixteen_bit_colour_files_decode_exactly_or_raise_lic_format_error(colour16_setup, op, fix_crc,
                                                                                     which):
    files, decompress_exact = colour16_setup
    tampered, reference = _tamper(files[which], op, fix_crc)
    try:
        image = decompress_exact(tampered)
    except LicFormatError as err:
        assert "\n" not in str(err) and str(err)
        return
    assert np.array_equal(np.asarray(image), reference), "a tampered file decoded to a different image"
