"""Pixels in and out of the codec: any image Pillow opens <-> the RGB array the model codes.

The model codes three 8-bit channels.  Everything else is mapped onto that and back:

    grayscale (1, L, I;16, I, F)  ─► R=G=B ─► model ─► mean of R,G,B ─► mode "L"
    RGBA, LA, PA, P + transparency ─► RGB ─► model ─► RGB ┐
                                    └─► alpha plane, lossless blob ─┴─► mode "RGBA", alpha bit-exact
    CMYK, YCbCr, LAB, HSV, ...     ─► RGB (Pillow's conversion) ─► mode "RGB"

EXIF orientation is applied before coding (the file has no orientation tag).  An ICC profile
travels in the header when it describes the coded colour space ('RGB ' for colour, 'GRAY' for
gray); a CMYK profile on a converted image would be wrong, so it is dropped.  16-bit input is
reduced to 8 bits with a warning.

Alpha blob: one tag byte, then the payload.  The encoder tries each and keeps the smallest:

    0x00  zlib (level 9) of the raw H*W plane            best for noise-like or tiny planes
    0x01  a PNG of the plane (mode L, Pillow optimize)    best for smooth masks (PNG filters)
    0x02  one byte: the plane is constant                 fully opaque images cost 2 bytes
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bitstream import LicFormatError

__all__ = ["CodedImage", "to_coded", "from_decoded", "encode_alpha", "decode_alpha", "open_image"]

_ALPHA_ZLIB, _ALPHA_PNG, _ALPHA_CONST = 0, 1, 2
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

def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully load an image file; ``OSError`` / ``ValueError`` for anything unreadable."""
    with Image.open(path) as img:
        img.load()
        return img


def _to_8bit(values: np.ndarray, what: str, sixteen_bit: bool = False) -> np.ndarray:
    """Reduce integer or float samples to uint8 (16-bit: x / 257, rounded), warning once.

    ``sixteen_bit``: the source says its samples are 16-bit (Pillow's I;16 modes); otherwise
    integers that all fit in 0..255 are taken as 8-bit values.
    """
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    if np.issubdtype(values.dtype, np.floating):
        # Floats in [0, 1] are normalized images; anything larger is taken as 0..255.
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0
        return np.clip(np.nan_to_num(values) * scale + 0.5, 0, 255).astype(np.uint8)
    if not sixteen_bit and values.max(initial=0) <= 255 and values.min(initial=0) >= 0:
        return values.astype(np.uint8)
    warnings.warn(f"{what}: 16-bit samples reduced to 8 bits", stacklevel=3)
    return np.clip((values.astype(np.float64) / 257.0).round(), 0, 255).astype(np.uint8)


def _icc_for(icc: bytes | None, channels: str) -> bytes | None:
    """Keep an ICC profile only if its colour space (bytes 16..20) matches the coded image."""
    if not icc or len(icc) < 20:
        return None
    space = icc[16:20]
    return icc if space == (b"GRAY" if channels == "L" else b"RGB ") else None


def _from_pil(img: Image.Image) -> CodedImage:
    img = ImageOps.exif_transpose(img)
    icc = img.info.get("icc_profile")
    mode = img.mode
    if mode == "P":
        mode = "PA" if "transparency" in img.info else "RGB"
        img = img.convert("RGBA" if mode == "PA" else "RGB")
        mode = img.mode
    if mode in _GRAY_MODES:
        gray = _to_8bit(np.asarray(img), "image", sixteen_bit=mode.startswith("I;16"))
        return CodedImage(np.repeat(gray[..., None], 3, axis=2), "L", None, _icc_for(icc, "L"))
    if mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"))
        return CodedImage(np.ascontiguousarray(rgba[..., :3]), "RGBA",
                          np.ascontiguousarray(rgba[..., 3]), _icc_for(icc, "RGBA"))
    if mode in ("RGB", "RGBX"):
        rgb = np.asarray(img.convert("RGB"))
        return CodedImage(np.ascontiguousarray(rgb), "RGB", None, _icc_for(icc, "RGB"))
    # CMYK, YCbCr, LAB, HSV, 16-bit RGB modes...: Pillow knows the way to RGB.
    return CodedImage(np.asarray(img.convert("RGB")).copy(), "RGB", None, _icc_for(icc, "RGB"))


def _from_array(array: np.ndarray) -> CodedImage:
    """(H, W) or (H, W, C) with C in 1, 3, 4; uint8 (or 16-bit, bool, float in [0, 1])."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(f"expected an (H, W) or (H, W, C) array with C in 1, 3, 4; got {array.shape}")
    array = _to_8bit(np.asarray(array), "array")
    channels = array.shape[2]
    if channels == 1:
        return CodedImage(np.ascontiguousarray(np.repeat(array, 3, axis=2)), "L")
    if channels == 3:
        return CodedImage(np.ascontiguousarray(array), "RGB")
    return CodedImage(np.ascontiguousarray(array[..., :3]), "RGBA", np.ascontiguousarray(array[..., 3]))


def _is_tensor(obj) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def to_coded(image) -> CodedImage:
    """Any supported input -> ``CodedImage``.

    ``image``: a PIL image; a path (str or ``os.PathLike``); a numpy array (H, W) or (H, W, C),
    C in 1, 3, 4, uint8; or a torch tensor (C, H, W) (or (1, C, H, W)), float in [0, 1] or uint8.
    """
    if isinstance(image, CodedImage):
        return image
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, (str, os.PathLike)):
        return _from_pil(open_image(Path(image)))
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if _is_tensor(image):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3:
            raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(t.shape)}")
        array = t.permute(1, 2, 0).numpy()
        if array.dtype != np.uint8:
            array = np.clip(array.astype(np.float64) * 255 + 0.5, 0, 255).astype(np.uint8)
        return _from_array(array)
    raise TypeError(f"cannot code a {type(image).__name__}: pass a PIL image, a path, a numpy array or a tensor")


# -- alpha -----------------------------------------------------------------------------------------

def encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless blob for an (H, W) uint8 alpha plane: the smallest of the formats above."""
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    if (alpha == alpha.flat[0]).all():
        return bytes([_ALPHA_CONST, int(alpha.flat[0])])
    candidates = [bytes([_ALPHA_ZLIB]) + zlib.compress(alpha.tobytes(), 9)]
    png = io.BytesIO()
    Image.fromarray(alpha, "L").save(png, format="PNG", optimize=True)
    candidates.append(bytes([_ALPHA_PNG]) + png.getvalue())
    return min(candidates, key=len)


def decode_alpha(blob: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of ``encode_alpha``; ``LicFormatError`` if the blob is not a plane of that size."""
    if not blob:
        raise LicFormatError("corrupt: empty alpha plane")
    tag, payload = blob[0], blob[1:]
    if tag == _ALPHA_CONST and len(payload) == 1:
        return np.full((height, width), payload[0], dtype=np.uint8)
    if tag == _ALPHA_ZLIB:
        d = zlib.decompressobj()
        try:
            raw = d.decompress(payload, width * height + 1)
        except zlib.error:
            raise LicFormatError("corrupt: alpha plane does not decompress") from None
        if len(raw) != width * height or not d.eof:
            raise LicFormatError("corrupt: alpha plane has the wrong size")
        return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)
    if tag == _ALPHA_PNG:
        try:
            with Image.open(io.BytesIO(payload), formats=["PNG"]) as img:
                if img.size != (width, height) or img.mode != "L":
                    raise LicFormatError("corrupt: alpha plane has the wrong size")
                return np.asarray(img).copy()
        except (OSError, ValueError, SyntaxError) as e:
            if isinstance(e, LicFormatError):
                raise
            raise LicFormatError("corrupt: alpha plane is not a valid PNG") from None
    raise LicFormatError(f"corrupt: unknown alpha plane format {tag}")


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
