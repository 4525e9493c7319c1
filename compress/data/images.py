"""Decoding image files into RGB PIL images, with a reason code for every failure.

Conversion rules (each is what a person looking at the picture would expect):

- EXIF orientation is applied, so a phone photo stored sideways comes out upright.
- Transparent images (RGBA, LA, PA, palette or grayscale with a transparency entry) are
  composited on white.
- CMYK, YCbCr, LAB, HSV, grayscale and 1-bit images use Pillow's conversion to RGB.
- 16-bit grayscale (I;16, I;16B, I;16L) is scaled so 65535 becomes 255. 32-bit integer images
  (mode I, as Pillow reads 16-bit PNG and TIFF data) are read on the same 0..65535 scale, clipped.
- 32-bit float images (mode F) with every value in [0, 1] are scaled by 255; otherwise clipped to
  [0, 255].

The image is fully decoded here (`Image.load`), so truncated files are caught now rather than
later in a transform. `ImageFile.LOAD_TRUNCATED_IMAGES` is left off on purpose.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from compress.errors import BadSampleError

# File signatures of the formats a shard or manifest is expected to hold; a file that starts with
# one of these but cannot be read is damaged, anything else is simply not an image we decode.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_TRANSPARENT_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def load_image(data: str | Path | bytes, source: str | None = None) -> Image.Image:
    """A fully decoded RGB image from a file path or the file's bytes.

    `source` is what error messages call the image (default: the path). Raises `BadSampleError`
    with reason missing_file, empty_file, unsupported_format, corrupt_image, truncated_image or
    image_too_large.
    """
    if isinstance(data, (str, Path)):
        source = source or str(data)
        data = _read_file(Path(data), source)
    source = source or "<image bytes>"
    if len(data) == 0:
        raise BadSampleError(source, "empty_file")
    _check_riff_length(data, source)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise BadSampleError(source, "image_too_large", str(err)) from None
    except UnidentifiedImageError:
        raise _unidentified(data, source) from None
    except Exception as err:  # a plugin failing on a damaged header
        raise BadSampleError(source, "corrupt_image", _describe(err)) from None
    try:
        image.load()
    except Image.DecompressionBombError as err:
        raise BadSampleError(source, "image_too_large", str(err)) from None
    except Exception as err:  # any decoder failure means the data is damaged
        reason = "truncated_image" if "truncated" in str(err).lower() else "corrupt_image"
        raise BadSampleError(source, reason, _describe(err)) from None
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as err:
        raise BadSampleError(source, "corrupt_image", f"unreadable EXIF orientation: {_describe(err)}") from None
    return to_rgb(image, source)


def to_rgb(image: Image.Image, source: str = "<image>") -> Image.Image:
    """`image` as 8-bit RGB following the rules in the module docstring."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES:
        return _gray_to_rgb(np.asarray(image).astype(np.float64) * (255.0 / 65535.0))
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        in_unit_range = finite.size > 0 and finite.min() >= 0.0 and finite.max() <= 1.0
        return _gray_to_rgb(np.nan_to_num(values) * (255.0 if in_unit_range else 1.0))
    if mode in _TRANSPARENT_MODES or "transparency" in image.info:
        return _composite_on_white(image, source)
    try:
        return image.convert("RGB")
    except ValueError as err:
        raise BadSampleError(source, "unsupported_format", f"cannot convert mode {mode} to RGB: {err}") from None


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def _composite_on_white(image: Image.Image, source: str) -> Image.Image:
    try:
        rgba = image.convert("LA").convert("RGBA") if image.mode == "La" else image.convert("RGBA")
    except ValueError as err:
        raise BadSampleError(source, "unsupported_format", f"cannot convert mode {image.mode} to RGB: {err}") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _read_file(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadSampleError(source, "missing_file") from None
    except IsADirectoryError:
        raise BadSampleError(source, "missing_file", "a folder, not a file") from None
    except OSError as err:
        raise BadSampleError(source, "missing_file", _describe(err)) from None


def _check_riff_length(data: bytes, source: str) -> None:
    """WebP (a RIFF container) states its length; Pillow's WebP decoder cannot tell short from bad."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        if len(data) < declared:
            raise BadSampleError(source, "truncated_image", f"WebP declares {declared} bytes, file has {len(data)}")


def _unidentified(data: bytes, source: str) -> BadSampleError:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return BadSampleError(source, "corrupt_image", f"{name} header cannot be read")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return BadSampleError(source, "corrupt_image", "WebP header cannot be read")
    return BadSampleError(source, "unsupported_format", "not a recognised image format")


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
