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

Pillow's decompression-bomb limit (89 M pixels by default) is raised, while lic opens an image, to
what a .lic file can hold (2^28 pixels), and restored after: ``pixel_limit``.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageOps

from bitstream import MAX_PIXELS, InputError, LicFormatError

__all__ = ["CodedImage", "ExactImage", "to_coded", "to_exact", "from_exact", "from_decoded", "open_image",
           "pixel_limit"]

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


# A reduction of bit depth is said as a sentence ("photo.png: 16-bit samples reduced to 8 bits") to a
# ``Reduced`` handler: ``to_coded`` warns (``_warn_reduced``), ``to_exact`` refuses (``_refuse_reduced``).
Reduced = Callable[[str], None]


def _named(name: str | None, message: str) -> str:
    return f"{name}: {message}" if name else message


def _warn(name: str | None, message: str) -> None:
    warnings.warn(_named(name, message), UserWarning, stacklevel=4)


def _warn_reduced(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def _refuse_reduced(message: str) -> None:
    raise ValueError(f"{message}: lossless and near-lossless modes keep 8-bit images and 16-bit gray exactly, "
                     "nothing else")


@contextmanager
def pixel_limit() -> Iterator[None]:
    """Within the block, Pillow opens every image a .lic file can hold (``bitstream.MAX_PIXELS``),
    unless its decompression-bomb limit is already higher or off; the limit is restored after."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or limit >= MAX_PIXELS:
        yield
        return
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        yield
    finally:
        if Image.MAX_IMAGE_PIXELS == MAX_PIXELS:  # unless someone set another limit meanwhile
            Image.MAX_IMAGE_PIXELS = limit


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


def open_image(source, name: str | None = None) -> Image.Image:
    """Open and fully load an image (a path or a binary file object) for ``compress``.

    ``OSError`` / ``ValueError`` for anything unreadable.  Notes the file's bits per sample and
    frame count on the image first, so coding can warn about what loading hides; ``name`` is how
    those warnings refer to it (default: the path).
    """
    with pixel_limit(), Image.open(source) as img:
        noted = (_file_bits(img), _frames(img), name or getattr(img, "filename", None) or None)
        img.load()
        img._lic_source = noted
        return img


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
    reduced(_named(name, f"{bits}-bit samples reduced to 8 bits"))
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
        reduced(_named(name, "32-bit float samples reduced to 8 bits"))
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
        reduced(_named(name, f"{bits}-bit samples reduced to 8 bits"))
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


def _from_tensor(tensor, name: str | None, reduced: Reduced) -> CodedImage:
    """(C, H, W) or (1, C, H, W), C in 1, 3, 4: the array rule, channels first."""
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
    return _from_array(t.permute(1, 2, 0).numpy(), "tensor", name, reduced)


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
        return _from_tensor(image, name, reduced)
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

    ``samples``: (H, W, C) uint8 (8-bit gray, RGB) or uint16 (16-bit gray), C in 1, 3;
    ``channels``: "L", "RGB" or "RGBA" (alpha beside, lossless, 8-bit).
    """

    samples: np.ndarray
    bits: int
    channels: str
    alpha: np.ndarray | None = None
    icc: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.samples.shape[1], self.samples.shape[0]


_SIXTEEN_BIT_GRAY = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def _sixteen_bit_gray(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{what}: samples outside 0..65535 cannot be coded losslessly (signed or wider data "
                         "must be offset or scaled by the caller)")
    return np.ascontiguousarray(values, dtype=np.uint16)[..., None]


def to_exact(image, name: str | None = None) -> ExactImage:
    """Any supported input -> ``ExactImage``, refusing what cannot be kept exactly.

    16-bit gray (Pillow modes ``I;16``, ``I``; uint16 or wider integer arrays of one channel with
    values in 0..65535) keeps 16 bits; everything 8-bit goes through ``to_coded``.  An input
    that ``to_coded`` would reduce in bit depth (16-bit colour, floats) is a ``ValueError``.
    """
    if isinstance(image, (str, os.PathLike)):
        name = name or str(image)
        image = open_image(Path(image))
    if isinstance(image, Image.Image) and image.mode in _SIXTEEN_BIT_GRAY:
        img = ImageOps.exif_transpose(image)
        return ExactImage(_sixteen_bit_gray(np.asarray(img), name or "image"), 16, "L", None,
                          _icc_for(img.info.get("icc_profile"), "L"))
    if isinstance(image, np.ndarray) and image.dtype.kind in "iu" and image.dtype.itemsize > 1 \
            and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)) and image.size \
            and (image.dtype == np.uint16 or image.max() > 255):
        return ExactImage(_sixteen_bit_gray(image.reshape(image.shape[:2]), name or "array"), 16, "L")
    coded = _to_coded(image, name, _refuse_reduced)
    samples = coded.rgb[..., :1] if coded.channels == "L" else coded.rgb
    return ExactImage(np.ascontiguousarray(samples), 8, coded.channels, coded.alpha, coded.icc)


def from_exact(samples: np.ndarray, bits: int, channels: str, alpha: np.ndarray | None = None,
               icc: bytes | None = None) -> Image.Image:
    """(C, H, W) decoded samples -> a PIL image: "I;16" for 16-bit gray, else "L", "RGB", "RGBA"."""
    planes = np.moveaxis(np.asarray(samples), 0, -1)
    if bits > 8:
        img = Image.fromarray(np.ascontiguousarray(planes[..., 0], dtype=np.uint16))  # mode "I;16"
    else:
        rgb = np.repeat(planes.astype(np.uint8), 3, axis=2) if channels == "L" else planes.astype(np.uint8)
        img = from_decoded(rgb, channels, alpha, None)
    if icc:
        img.info["icc_profile"] = icc
    return img
