"""Claims about the .lic container (bitstream.container)."""

import zlib

import pytest

from bitstream import FORMAT_VERSION, Header, LicFormatError, pack, read_header, unpack
from bitstream.container import MAX_STREAMS, _varint
from codec.quality import quantize_quality

HEADER = Header("lic-cc-v1", b"\x9a\x01\xff\x00", quantize_quality(4.3), 768, 512, "RGB", 0xDEADBEEF)


def valid_file() -> bytes:
    return pack(HEADER, [b"\x01\x02\x03\x04" * 5, b"", b"z" * 300])


def with_crc(body: bytes) -> bytes:
    """A file whose trailing CRC is correct, so checks after the CRC are what fire."""
    return body + zlib.crc32(body).to_bytes(4, "little")


def craft(width_minus_1=767, height_minus_1=511, flags=1, streams=(b"ab",), n_streams=None,
          quality=1100, id_bytes=b"m", version=FORMAT_VERSION, extra=b"", lengths=None):
    n = len(streams) if n_streams is None else n_streams
    body = b"LIC1" + bytes([version, flags, len(id_bytes)]) + id_bytes + b"hash"
    body += quality.to_bytes(2, "little") + _varint(width_minus_1) + _varint(height_minus_1)
    body += (7).to_bytes(4, "little") + _varint(n)
    body += b"".join(_varint(x) for x in (lengths or [len(s) for s in streams]))
    return with_crc(body + b"".join(streams) + extra)


def test_roundtrip_keeps_every_field():
    header = Header("x" * 32, b"abcd", 8.0, 65536, 4096, "RGBA", 0xFFFFFFFF, icc=b"\x00icc" * 100)
    streams = [bytes([i]) * (i * 37) for i in range(MAX_STREAMS)]
    assert unpack(pack(header, streams, alpha=b"alpha" * 1000)) == (header, streams, b"alpha" * 1000)


@pytest.mark.parametrize("channels", ["L", "RGB"])
def test_roundtrip_with_zero_streams(channels):
    header = Header("m", b"\0\0\0\0", 1.0, 1, 1, channels, 0)
    assert unpack(pack(header, [])) == (header, [], None)


def test_read_header_matches_unpack():
    assert read_header(valid_file()) == HEADER


def test_header_of_a_768x512_rgb_file_is_small():
    streams = [b"y" * 40_000, b"z" * 900]
    overhead = len(pack(HEADER, streams)) - sum(map(len, streams))
    assert overhead <= 40


def test_quality_is_quantized_to_1_over_256():
    assert quantize_quality(4.3) == round(4.3 * 256) / 256
    assert quantize_quality(quantize_quality(7.77)) == quantize_quality(7.77)
    with pytest.raises(ValueError):
        quantize_quality(8.1)
    with pytest.raises(ValueError):
        Header("m", b"abcd", 4.3, 1, 1, "L", 0)  # not a stored value


@pytest.mark.parametrize("data,reason", [
    (b"", "truncated"), (b"LIC", "truncated"), (b"LIC1", "truncated"),
    (b"PNG\x89" + bytes(40), "bad magic"), (b"\x89PNG\r\n", "bad magic"),
])
def test_short_or_foreign_files_are_refused(data, reason):
    with pytest.raises(LicFormatError, match=reason):
        unpack(data)


def test_future_version_is_refused_by_number():
    data = bytearray(valid_file())
    data[4] = 7
    with pytest.raises(LicFormatError, match="unsupported format version 7"):
        unpack(bytes(data))


def test_truncation_at_every_length_is_refused():
    data = valid_file()
    for n in range(len(data)):
        with pytest.raises(LicFormatError):
            unpack(data[:n])


def test_every_flipped_bit_is_refused():
    data = valid_file()
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(LicFormatError):
            unpack(bytes(flipped))


def test_trailing_bytes_are_refused():
    with pytest.raises(LicFormatError):
        unpack(valid_file() + b"\0")
    with pytest.raises(LicFormatError, match="trailing bytes"):
        unpack(craft(extra=b"!"))


def test_stream_length_past_end_is_refused():
    with pytest.raises(LicFormatError, match="past the end"):
        unpack(craft(lengths=[3]))
    with pytest.raises(LicFormatError, match="past the end"):
        unpack(craft(lengths=[1 << 34]))


@pytest.mark.parametrize("w,h", [(65536, 0), (1 << 20, 0), (65535, 65535), (0, 1 << 30)])
def test_absurd_image_sizes_are_refused_with_a_correct_crc(w, h):
    with pytest.raises(LicFormatError, match="image size"):
        unpack(craft(width_minus_1=w, height_minus_1=h))


def test_absurd_stream_count_is_refused_with_a_correct_crc():
    with pytest.raises(LicFormatError, match="streams"):
        unpack(craft(n_streams=10**9, streams=()))


@pytest.mark.parametrize("kwargs,reason", [
    (dict(flags=3), "channel layout"), (dict(flags=0x41), "flags"), (dict(flags=2), "alpha"),
    (dict(quality=255), "quality"), (dict(quality=2049), "quality"),
    (dict(id_bytes=b""), "model id"), (dict(id_bytes=b"a\nb"), "model id"),
    (dict(id_bytes=b"x" * 33), "model id"),
])
def test_invalid_fields_are_refused_with_a_correct_crc(kwargs, reason):
    with pytest.raises(LicFormatError, match=reason):
        unpack(craft(**kwargs))


def test_crafted_valid_file_is_accepted():
    header, streams, alpha = unpack(craft())
    assert (header.width, header.height, streams, alpha) == (768, 512, [b"ab"], None)


def test_overlong_varints_are_refused():
    body = craft()[:-4]
    at = body.index(_varint(767))  # width - 1, two bytes
    padded = body[:at] + bytes([0xFF, 0x85, 0x00]) + body[at + 2:]  # same value, one byte too many
    with pytest.raises(LicFormatError, match="over-long"):
        unpack(with_crc(padded))
    six = body[:at] + b"\x80" * 5 + b"\x01" + body[at + 2:]
    with pytest.raises(LicFormatError, match="varint"):
        unpack(with_crc(six))


def test_pack_rejects_inconsistent_alpha():
    with pytest.raises(ValueError):
        pack(HEADER, [], alpha=b"a")
    rgba = Header("m", b"abcd", 2.0, 3, 3, "RGBA", 0)
    with pytest.raises(ValueError):
        pack(rgba, [])


def test_a_file_cut_inside_its_streams_is_reported_as_truncated():
    from bitstream import Header, LicFormatError, pack, unpack

    header = Header(model_id="lic-test", model_hash=b"\x01\x02\x03\x04", quality=4.0, width=768,
                    height=512, channels="RGB", symbol_crc=7)
    data = pack(header, [bytes(range(200)), bytes(300)])
    for cut in (60, 200, len(data) - 1):
        with pytest.raises(LicFormatError, match=r"^truncated file \(\d+ of [\d,]+ bytes\)$"):
            unpack(data[:cut])


def test_each_version_has_its_own_header_type():
    from bitstream import RESIDUAL_CODER, Residual, ResidualHeader

    exact = ResidualHeader(5, 3, "L", Residual(16, 2, 0xABCDEF), icc=b"gray")
    assert unpack(pack(exact, [b"\x00" * 4])) == (exact, [b"\x00" * 4], None)
    assert (exact.version, exact.model_id) == (2, RESIDUAL_CODER)
    lossy = read_header(valid_file())
    assert type(lossy) is Header and lossy.version == FORMAT_VERSION and lossy.residual is None
    with pytest.raises(ValueError, match="one stream"):
        pack(exact, [b"", b""])
