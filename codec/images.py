"""Pixels in and out of the codec: any image Pillow opens <-> the RGB array the model codes.

The model codes three 8-bit channels.  Everything else is mapped onto that and back:

    grayscale (1, L, I;16, I, F)  ─► R=G=B ─► model ─► mean of R,G,B ─► mode "L"
    RGBA, LA, PA, P + transparency ─► RGB ─► model ─► RGB ┐
                                    └─► alpha plane, lossless blob ─┴─► mode "RGBA", alpha bit-exact
    CMYK, YCbCr, LAB, HSV, ...     ─► RGB (Pillow's conversion) ─► mode "RGB"

EXIF orientation is applied before coding (the file has no orientation tag).  An ICC profile
travels in the header when it describes the coded colour space ('RGB ' for colour, 'GRAY' for
gray); a CMYK profile on a converted image would be wrong, so it is dropped.  Every reduction of
bit depth warns once, naming the file: 16-bit PNG, TIFF and PPM samples (which Pillow itself cuts
to 8 bits while loading colour images), 32-bit integer and float samples.  An animated or
multi-page file codes its first frame, with a warning.

Arrays and tensors follow one rule.  Integers are samples: values that all fit in 0..255 are
8-bit, wider ones are 16-bit (up to 65535) or 32-bit and are scaled down with a warning; bool is
0 or 255.  Floats are in [0, 1] and are rounded to the nearest of 256 levels; a float input
with a value more than half a level outside [0, 1] (0..255 held in floats, say), NaN or
infinity is an ``InputError`` (a ``ValueError``), never clipped in silence.

The alpha plane travels beside the colour streams as a lossless blob (``codec.alpha``).

The exact modes (lossless and near-lossless: ``to_exact``, ``from_exact``) keep samples at their
bit depth instead: 8 bits, or 16 for gray (Pillow's "I;16" and "I"), RGB and RGBA.  Pillow has no
16-bit colour mode, so a 16-bit RGB or RGBA image is an ``Image16``: ``open_image(...,
exact=True)`` reads one from a PNG, TIFF or PPM (``codec.colour16``), and the decoder returns one.  What
cannot be kept exactly (floats, 32-bit integers, 16-bit layouts Pillow cannot give whole) is an
``InputError`` there, never reduced.

Pillow's decompression-bomb limit (89 M pixels by default) is raised, while lic opens an image, to
what a .lic file can hold (2^28 pixels), and restored after: ``codec.limits.pixel_limit``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from bitstream import InputError, LicFormatError

from . import colour16
from .limits import pixel_limit

__all__ = ["CodedImage", "ExactImage", "Image16", "to_coded", "to_exact", "from_exact", "from_decoded", "open_image",
           "to_8bit", "pixel_limit"]

_GRAY_MODES = {"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


@dataclass
class CodedImage:
    """What the encoder needs: an (H, W, 3) uint8 array plus what travels beside it."""

    rgb: np.ndarray  # (H, W, 3) uint8; R=G=B when channels == "L"
    channels: str  # "L", "RGB" or "RGBA": the mode the decoder returns
    alpha: np.ndarray | None = None  # (H, W) uint8 when channels == "RGBA"
    icc: bytes | None = None

    def __post_init__(self):
        # Own, writable, contiguous arrays: torch.from_numpy warns on Pillow's read-only views.
        self.rgb = np.array(self.rgb, dtype=np.uint8, order="C")
        if self.alpha is not None:
            self.alpha = np.array(self.alpha, dtype=np.uint8, order="C")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow says it."""
        return self.rgb.shape[1], self.rgb.shape[0]


# -- input -----------------------------------------------------------------------------------------

# Half an 8-bit level: a float this far outside [0, 1] still rounds to 0 or 255.
FLOAT_TOLERANCE = 0.5 / 255


# A reduction of bit depth is told to a ``Reduced`` handler as (name, what): "16-bit", "32-bit float".
# ``to_coded`` warns (``_warn_reduced``: "photo.png: 16-bit samples reduced to 8 bits"); ``to_exact``
# refuses (``_refuse_reduced``).
Reduced = Callable[[str | None, str], None]


def _named(name: str | None, message: str) -> str:
    return f"{name}: {message}" if name else message


def _warn(name: str | None, message: str) -> None:
    warnings.warn(_named(name, message), UserWarning, stacklevel=4)


def _warn_reduced(name: str | None, what: str) -> None:
    warnings.warn(_named(name, f"{what} samples reduced to 8 bits"), UserWarning, stacklevel=4)


def _refuse_reduced(name: str | None, what: str) -> None:
    raise InputError(_named(name, f"{what} samples cannot be coded exactly (the lossless and near-lossless modes "
                                  "keep 8-bit samples, and 16-bit gray, RGB and RGBA from PNG, TIFF, PPM or arrays)"))


def _file_bits(img: Image.Image) -> int:
    """Bits per sample of the file behind ``img``, read from its not yet loaded tiles (else 8).

    Pillow loads 16-bit colour PNG, TIFF and PPM samples as 8-bit "RGB"/"RGBA"; only the raw
    mode of the tiles (``RGB;16B``) or PPM's maximum value (65535) still says what the file held.
    """
    for tile in getattr(img, "tile", None) or ():
        codec_name, args = tile[0], tile[3]
        rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
        if codec_name == "ppm" and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int) \
                and args[1] > 255:
            return 16
    return 8


def _frames(img: Image.Image) -> int:
    try:
        return int(getattr(img, "n_frames", 1))
    except (OSError, ValueError, EOFError, TypeError):  # a closed file cannot be counted again
        return 1


def _source(img: Image.Image) -> tuple[int, int, str | None]:
    """(bits per sample, frames, name) of the file behind ``img``: noted by ``open_image`` before
    loading hid them, else read now (name: the file Pillow opened, if any)."""
    noted = getattr(img, "_lic_source", None)
    if noted is not None:
        return noted
    return _file_bits(img), _frames(img), getattr(img, "filename", None) or None


def open_image(source, name: str | None = None, *, exact: bool = False) -> Image.Image | Image16:
    """Open and fully load an image (a path or a binary file object) for ``compress``.

    ``OSError`` / ``ValueError`` for anything unreadable.  Notes the file's bits per sample and
    frame count on the image first, so coding can warn about what loading hides; ``name`` is how
    those warnings refer to it (default: the path).

    ``exact`` (for the lossless and near-lossless modes): a 16-bit RGB or RGBA PNG or TIFF, or a
    16-bit PPM, comes back as an ``Image16`` holding every bit, EXIF orientation applied; Pillow
    alone keeps 8 of them.  It is read twice (``codec.colour16``), so a file object is read from
    where it stands again (one that cannot seek is read into memory first).
    """
    is_path = isinstance(source, (str, os.PathLike))
    if exact and not is_path and not (hasattr(source, "seekable") and source.seekable()):
        source = io.BytesIO(source.read())
    start = None if is_path else source.tell()
    with pixel_limit(), Image.open(source) as img:
        noted = (_file_bits(img), _frames(img), name or getattr(img, "filename", None) or None)
        read = colour16.reader(img) if exact and noted[0] == 16 else None
        img.load()
        img._lic_source = noted
        if read is None:
            return img
    if start is not None:
        source.seek(start)
    with pixel_limit():
        image = Image16(read(img, source), img.info.get("icc_profile"))
    image._lic_source = noted
    return image


def _integers_to_8bit(values: np.ndarray, name: str | None, reduced: Reduced, bits: int | None = None) -> np.ndarray:
    """Integer samples -> uint8.  ``bits``: the file's declared sample width; otherwise values
    that fit in 0..255 are 8-bit and wider ones 16-bit (to 65535) or 32-bit.  Scaled, warned."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    low, high = int(values.min(initial=0)), int(values.max(initial=0))
    if bits is None:
        if low >= 0 and high <= 255:
            return values.astype(np.uint8)
        bits = 16 if low >= 0 and high <= 65535 else 32
    reduced(name, f"{bits}-bit")
    return _reduce(values, bits)


def _reduce(values: np.ndarray, bits: int) -> np.ndarray:
    """``bits``-bit integer samples scaled to 8 bits, rounded (the one rule for every reduction)."""
    scale = 255 / (2**bits - 1)
    return np.clip(np.round(values.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def _floats_to_8bit(values: np.ndarray, what: str) -> np.ndarray:
    """Float samples in [0, 1] -> uint8 (the one float rule; see the module doc)."""
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        raise InputError(f"{what} has NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        hint = "; scale 0..255 values by 1/255" if -FLOAT_TOLERANCE <= low and high <= 255.5 else ""
        raise InputError(f"{what} must hold values in [0, 1], got values in [{low:g}, {high:g}]{hint}")
    return np.clip(values * 255 + 0.5, 0, 255).astype(np.uint8)


def _samples_to_8bit(values: np.ndarray, what: str, name: str | None, reduced: Reduced) -> np.ndarray:
    if np.issubdtype(values.dtype, np.floating):
        return _floats_to_8bit(values, f"float {what}")
    if values.dtype == bool or np.issubdtype(values.dtype, np.integer):
        return _integers_to_8bit(values, name, reduced)
    raise TypeError(f"cannot code a {what} of dtype {values.dtype} (use uint8, integers, bool or floats in [0, 1])")


def _gray_to_8bit(img: Image.Image, bits: int, name: str | None, reduced: Reduced) -> np.ndarray:
    values = np.asarray(img)
    if img.mode == "F":  # Pillow's float images hold 0..255, as its own convert("L") reads them
        if not np.isfinite(values).all():
            raise InputError(f"{name or 'image'}: float samples include NaN or infinite values")
        reduced(name, "32-bit float")
        return np.clip(values.astype(np.float64) + 0.5, 0, 255).astype(np.uint8)
    declared = 16 if img.mode.startswith("I;16") or bits == 16 else None
    return _integers_to_8bit(values, name, reduced, declared)


def _icc_for(icc: bytes | None, channels: str) -> bytes | None:
    """Keep an ICC profile only if its colour space (bytes 16..20) matches the coded image."""
    if not icc or len(icc) < 20:
        return None
    space = icc[16:20]
    return icc if space == (b"GRAY" if channels == "L" else b"RGB ") else None


def _from_pil(img: Image.Image, name: str | None, reduced: Reduced) -> CodedImage:
    bits, frames, noted_name = _source(img)
    name = name or noted_name
    if frames > 1:
        _warn(name, f"{frames} frames; only the first is coded")
    img = ImageOps.exif_transpose(img)
    icc = img.info.get("icc_profile")
    mode = img.mode
    if mode == "P":
        mode = "PA" if "transparency" in img.info else "RGB"
        img = img.convert("RGBA" if mode == "PA" else "RGB")
        mode = img.mode
    if mode in _GRAY_MODES:
        gray = _gray_to_8bit(img, bits, name, reduced)
        return CodedImage(np.repeat(gray[..., None], 3, axis=2), "L", None, _icc_for(icc, "L"))
    if bits > 8:  # Pillow already cut these samples to 8 bits while loading
        reduced(name, f"{bits}-bit")
    if mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"))
        return CodedImage(np.ascontiguousarray(rgba[..., :3]), "RGBA",
                          np.ascontiguousarray(rgba[..., 3]), _icc_for(icc, "RGBA"))
    if mode in ("RGB", "RGBX"):
        rgb = np.asarray(img.convert("RGB"))
        return CodedImage(np.ascontiguousarray(rgb), "RGB", None, _icc_for(icc, "RGB"))
    # CMYK, YCbCr, LAB, HSV, 16-bit RGB modes...: Pillow knows the way to RGB.
    return CodedImage(np.asarray(img.convert("RGB")).copy(), "RGB", None, _icc_for(icc, "RGB"))


def _from_array(array: np.ndarray, what: str, name: str | None, reduced: Reduced) -> CodedImage:
    """(H, W) or (H, W, C) with C in 1, 3, 4; samples as in the module doc."""
    shape = array.shape
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise InputError(f"expected an (H, W) or (H, W, C) array with C in 1, 3, 4; got shape {shape}")
    array = _samples_to_8bit(np.asarray(array), what, name, reduced)
    channels = array.shape[2]
    if channels == 1:
        return CodedImage(np.ascontiguousarray(np.repeat(array, 3, axis=2)), "L")
    if channels == 3:
        return CodedImage(np.ascontiguousarray(array), "RGB")
    return CodedImage(np.ascontiguousarray(array[..., :3]), "RGBA", np.ascontiguousarray(array[..., 3]))


def _is_tensor(obj) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def _tensor_array(tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W), C in 1, 3, 4 -> the (H, W, C) array the array rule applies to."""
    import torch

    shape = tuple(tensor.shape)
    t = tensor.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4) or 0 in t.shape:
        hint = "; for an (H, W, C) tensor use .permute(2, 0, 1)" if len(shape) == 3 and shape[2] in (1, 3, 4) else ""
        raise InputError(f"expected a (C, H, W) or (1, C, H, W) tensor with C in 1, 3, 4; got shape {shape}{hint}")
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    return t.permute(1, 2, 0).numpy()


def to_coded(image, name: str | None = None) -> CodedImage:
    """Any supported input -> ``CodedImage``.

    ``image``: a PIL image; a path (str or ``os.PathLike``); a numpy array (H, W) or (H, W, C),
    C in 1, 3, 4; or a torch tensor (C, H, W) (or (1, C, H, W)).  Samples: uint8, wider
    integers (reduced with a warning), bool, or floats in [0, 1] (see the module doc).
    ``name`` starts every warning (default: the path, or the file a PIL image came from).
    """
    return _to_coded(image, name, _warn_reduced)


def _to_coded(image, name: str | None, reduced: Reduced) -> CodedImage:
    if isinstance(image, CodedImage):
        return image
    if isinstance(image, Image.Image):
        return _from_pil(image, name, reduced)
    if isinstance(image, (str, os.PathLike)):
        return _from_pil(open_image(Path(image)), name or str(image), reduced)
    if isinstance(image, np.ndarray):
        return _from_array(image, "array", name, reduced)
    if _is_tensor(image):
        return _from_array(_tensor_array(image), "tensor", name, reduced)
    if isinstance(image, Image16):  # 16 bits that only the exact modes keep
        reduced(name, "16-bit")
        pixels = _reduce(image.pixels, 16)
        channels = "RGBA" if pixels.shape[2] == 4 else "RGB"
        return CodedImage(pixels[..., :3], channels, pixels[..., 3] if channels == "RGBA" else None,
                          _icc_for(image.info.get("icc_profile"), channels))
    raise TypeError(f"cannot code a {type(image).__name__}: pass a PIL image, a path, a numpy array or a tensor")


# -- output ----------------------------------------------------------------------------------------

def decoded_pixels(rgb: np.ndarray, channels: str) -> np.ndarray:
    """The colour samples the decoder returns: (H, W) gray for "L", else (H, W, 3)."""
    if channels == "L":
        # The model returns nearly equal R, G, B; their rounded mean is the gray value.
        return ((rgb.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
    return rgb


def from_decoded(rgb: np.ndarray, channels: str, alpha: np.ndarray | None = None,
                 icc: bytes | None = None) -> Image.Image:
    """The decoder's (H, W, 3) array and side data -> a PIL image in the original mode."""
    pixels = decoded_pixels(rgb, channels)
    if channels == "L":
        img = Image.fromarray(pixels, "L")
    elif channels == "RGBA":
        if alpha is None:
            raise LicFormatError("corrupt: RGBA file without an alpha plane")
        img = Image.fromarray(np.dstack([pixels, alpha]), "RGBA")
    else:
        img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    if icc:
        img.info["icc_profile"] = icc
    return img


# -- exact samples (lossless and near-lossless modes) ------------------------------------------------

@dataclass
class ExactImage:
    """The samples a lossless or near-lossless file keeps, at their true bit depth.

    ``samples``: (H, W, C) uint8 (``bits`` 8) or uint16 (``bits`` 16), C in 1, 3;
    ``channels``: "L", "RGB" or "RGBA" (alpha beside, lossless, at the same bit depth).
    """

    samples: np.ndarray
    bits: int
    channels: str
    alpha: np.ndarray | None = None
    icc: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.samples.shape[1], self.samples.shape[0]


_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}  # Pillow's 16-bit gray
_SIXTEEN_BIT_GRAY = _SIXTEEN_BIT_MODES | {"I"}  # and 32-bit integers, kept when they fit in 16 bits


class Image16:
    """A 16-bit RGB or RGBA image, which Pillow has no mode for.

    What ``codec.decompress`` returns for a lossless or near-lossless file of one, and what
    ``open_image(..., exact=True)`` reads from a 16-bit colour PNG or TIFF; ``compress`` takes it.

    ``pixels``: (H, W, 3) or (H, W, 4) uint16 samples, alpha last (``np.asarray(image)`` gives
    them); ``mode``: "RGB;16" or "RGBA;16"; ``size``: (width, height), as Pillow says it;
    ``info``: {"icc_profile": bytes} when it has a profile.  ``save`` writes a 16-bit PNG, TIFF or
    PPM; ``to_8bit`` gives the PIL image with every sample reduced to 8 bits.
    """

    def __init__(self, pixels: np.ndarray, icc: bytes | None = None):
        pixels = np.ascontiguousarray(pixels)
        if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or 0 in pixels.shape:
            raise InputError(f"expected (H, W, 3) or (H, W, 4) uint16 samples, got {pixels.dtype} {pixels.shape}")
        self.pixels = pixels
        self.info = {"icc_profile": icc} if icc else {}

    @property
    def mode(self) -> str:
        return "RGBA;16" if self.pixels.shape[2] == 4 else "RGB;16"

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.pixels if dtype is None else self.pixels.astype(dtype)

    def __repr__(self) -> str:
        return f"<codec.Image16 mode={self.mode} size={self.size[0]}x{self.size[1]}>"

    def save(self, fp, format: str | None = None) -> None:
        """Write the image, all 16 bits, to a path or a binary file: ``format`` "PNG", "TIFF" or
        "PPM" (RGB only), else the one Pillow registers for the path's extension."""
        if format is None:
            extension = os.path.splitext(os.fspath(fp))[1].lower() if isinstance(fp, (str, os.PathLike)) else ""
            format = Image.registered_extensions().get(extension)
        writer = colour16.WRITERS.get((format or "").upper())
        if writer is None:
            raise InputError(f"cannot write 16-bit colour as {format or 'an unknown format'}: PNG, TIFF and PPM "
                             "hold it (to_8bit() gives an 8-bit PIL image for the others)")
        if writer is colour16.write_ppm and self.pixels.shape[2] == 4:
            raise InputError("PPM has no alpha channel: save PNG or TIFF, or drop the alpha first")
        icc = () if writer is colour16.write_ppm else (self.info.get("icc_profile"),)  # PPM has no profile
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "wb") as f:
                writer(self.pixels, f, *icc)
        else:
            writer(self.pixels, fp, *icc)

    def to_8bit(self) -> Image.Image:
        """The PIL image ("RGB" or "RGBA") of the samples reduced to 8 bits, rounded (v * 255 / 65535),
        the profile kept."""
        return to_8bit(self)


def to_8bit(image: Image.Image | Image16) -> Image.Image:
    """A decoded image with 8-bit samples, for a format that holds no more: an ``Image16`` becomes
    "RGB" or "RGBA" and an "I;16" image "L", every sample rounded (v * 255 / 65535, as every
    reduction in lic); any other image is returned as it is."""
    if isinstance(image, Image16):
        img = Image.fromarray(_reduce(image.pixels, 16), "RGBA" if image.pixels.shape[2] == 4 else "RGB")
    elif image.mode in _SIXTEEN_BIT_MODES:
        img = Image.fromarray(_reduce(np.asarray(image), 16), "L")
    else:
        return image
    if image.info.get("icc_profile"):
        img.info["icc_profile"] = image.info["icc_profile"]
    return img


def _sixteen_bit(values: np.ndarray, what: str) -> ExactImage:
    """(H, W) or (H, W, C) integer samples in 0..65535, C in 1, 3, 4 -> a 16-bit ``ExactImage``."""
    values = np.asarray(values)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise InputError(f"{what}: samples outside 0..65535 cannot be coded losslessly (signed or wider data "
                         "must be offset or scaled by the caller)")
    samples = np.ascontiguousarray(values, dtype=np.uint16)
    if samples.ndim == 2:
        samples = samples[..., None]
    channels = {1: "L", 3: "RGB", 4: "RGBA"}[samples.shape[2]]
    alpha = np.ascontiguousarray(samples[..., 3]) if channels == "RGBA" else None
    return ExactImage(np.ascontiguousarray(samples[..., :3]), 16, channels, alpha)


def _is_wide(array: np.ndarray) -> bool:
    """An integer array of a valid shape whose samples are 16-bit (uint16, or values outside 0..255)."""
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
    return (shape_ok and array.size > 0 and array.dtype.kind in "iu" and array.dtype.itemsize > 1
            and (array.dtype == np.uint16 or array.max() > 255 or array.min() < 0))


def _unloaded_colour16(img: Image.Image) -> bool:
    """A PIL image opened from a 16-bit colour file, not loaded yet: its file can be read again."""
    filename = getattr(img, "filename", None)
    return (bool(getattr(img, "tile", None)) and isinstance(filename, str) and os.path.isfile(filename)
            and _file_bits(img) == 16 and colour16.reader(img) is not None)


def to_exact(image, name: str | None = None) -> ExactImage:
    """Any supported input -> ``ExactImage``, refusing what cannot be kept exactly.

    16 bits are kept for gray (Pillow modes ``I;16``, ``I``), for RGB and RGBA PNG and TIFF files
    (a path, or a PIL image not yet loaded from one; ``Image16``), and for integer arrays and
    tensors of 1, 3 or 4 channels that are uint16 or hold values outside 0..255 (in 0..65535);
    everything 8-bit goes through ``to_coded``.  An input that ``to_coded`` would reduce in bit
    depth (floats, 32-bit samples, a 16-bit layout that cannot be read whole) is an ``InputError``.
    """
    if isinstance(image, (str, os.PathLike)):
        name = name or str(image)
        image = open_image(Path(image), exact=True)
    elif isinstance(image, Image.Image) and _unloaded_colour16(image):
        name = name or image.filename
        image = open_image(image.filename, exact=True)
    if _is_tensor(image):
        image = _tensor_array(image)
    if isinstance(image, Image16):
        _, frames, noted = getattr(image, "_lic_source", (16, 1, None))
        if frames > 1:
            _warn(name or noted, f"{frames} frames; only the first is coded")
        exact = _sixteen_bit(image.pixels, name or "image")
        exact.icc = _icc_for(image.info.get("icc_profile"), exact.channels)
        return exact
    if isinstance(image, Image.Image) and image.mode in _SIXTEEN_BIT_GRAY:
        img = ImageOps.exif_transpose(image)
        exact = _sixteen_bit(np.asarray(img), name or "image")
        exact.icc = _icc_for(img.info.get("icc_profile"), "L")
        return exact
    if isinstance(image, np.ndarray):
        if np.issubdtype(image.dtype, np.floating):
            _refuse_reduced(name or "array", "float")
        if _is_wide(image):
            return _sixteen_bit(image, name or "array")
    coded = _to_coded(image, name, _refuse_reduced)
    samples = coded.rgb[..., :1] if coded.channels == "L" else coded.rgb
    return ExactImage(np.ascontiguousarray(samples), 8, coded.channels, coded.alpha, coded.icc)


def from_exact(samples: np.ndarray, bits: int, channels: str, alpha: np.ndarray | None = None,
               icc: bytes | None = None) -> Image.Image | Image16:
    """(C, H, W) decoded samples -> "I;16" for 16-bit gray, an ``Image16`` for 16-bit colour,
    else a PIL image "L", "RGB" or "RGBA"."""
    planes = np.moveaxis(np.asarray(samples), 0, -1)
    if bits > 8 and channels != "L":
        if channels == "RGBA":
            if alpha is None:
                raise LicFormatError("corrupt: RGBA file without an alpha plane")
            planes = np.dstack([planes, alpha])
        return Image16(planes.astype(np.uint16), icc)
    if bits > 8:
        img = Image.fromarray(np.ascontiguousarray(planes[..., 0], dtype=np.uint16))  # mode "I;16"
    else:
        rgb = np.repeat(planes.astype(np.uint8), 3, axis=2) if channels == "L" else planes.astype(np.uint8)
        img = from_decoded(rgb, channels, alpha, None)
    if icc:
        img.info["icc_profile"] = icc
    return img
