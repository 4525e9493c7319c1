"""Builders of real image files, manifests and tar shards, good and bad, for the data tests.

Every image is made with Pillow and saved in the format and mode a real dataset could hold it in.
`GOOD_IMAGES` maps a name to (bytes builder, file suffix, pixel checks after RGB conversion);
`BAD_IMAGES` maps a name to (bytes builder, file suffix, reason it is skipped for at access time).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def encode(image: Image.Image, fmt: str, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_options)
    return buffer.getvalue()


def noise_png(size: int = 24, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def noise_jpeg(size: int = 24, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=90)


def noise_webp(size: int = 24, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "WEBP", quality=90)


# ---- images in every mode, and what their pixels must be after conversion ----


def rgb_png() -> bytes:
    return encode(Image.new("RGB", (4, 3), (10, 20, 30)), "PNG")


def cmyk_tiff() -> bytes:
    image = Image.new("CMYK", (3, 1), (0, 0, 0, 0))  # white
    image.putpixel((1, 0), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    image.putpixel((2, 0), (0, 0, 0, 255))  # full black
    return encode(image, "TIFF")


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (16, 16), (255, 255, 0, 0)), "JPEG", quality=95)  # cyan + magenta: blue


def rgba_png() -> bytes:
    image = Image.new("RGBA", (3, 1))
    image.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red: white
    image.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    image.putpixel((2, 0), (0, 0, 255, 128))  # half-transparent blue over white
    return encode(image, "PNG")


def la_png() -> bytes:
    image = Image.new("LA", (2, 1))
    image.putpixel((0, 0), (0, 0))  # transparent black: white
    image.putpixel((1, 0), (0, 255))  # opaque black
    return encode(image, "PNG")


def palette_png() -> bytes:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 0)  # palette entry 0 is the transparent one
    image.putpixel((1, 0), 1)
    return encode(image, "PNG", transparency=0)


def gray_png() -> bytes:
    return encode(Image.new("L", (2, 2), 100), "PNG")


def one_bit_png() -> bytes:
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    return encode(image, "PNG")


def sixteen_bit_png() -> bytes:
    image = Image.new("I;16", (3, 1), 0)
    image.putpixel((1, 0), 65535)
    image.putpixel((2, 0), 32896)  # 128 * 257
    return encode(image, "PNG")


def int32_tiff() -> bytes:
    image = Image.new("I", (2, 1), 0)
    image.putpixel((1, 0), 65535)
    return encode(image, "TIFF")


def float_tiff() -> bytes:
    image = Image.new("F", (2, 1), 0.0)
    image.putpixel((1, 0), 0.5)
    return encode(image, "TIFF")


def exif_rotated_jpeg() -> bytes:
    """32x16 as stored, red top-left 8x8 corner on blue, EXIF orientation 6 (rotate 90 clockwise)."""
    image = Image.new("RGB", (32, 16), BLUE)
    image.paste(RED, (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", quality=100, subsampling=0, exif=exif)


GOOD_IMAGES = {
    # name: (builder, suffix, {(x, y): expected RGB}, expected size or None, tolerance)
    "rgb": (rgb_png, ".png", {(0, 0): (10, 20, 30)}, (4, 3), 0),
    "cmyk": (cmyk_tiff, ".tif", {(0, 0): WHITE, (1, 0): RED, (2, 0): BLACK}, (3, 1), 0),
    "cmyk_jpeg": (cmyk_jpeg, ".jpg", {(8, 8): BLUE}, (16, 16), 6),
    "rgba": (rgba_png, ".png", {(0, 0): WHITE, (1, 0): RED, (2, 0): (127, 127, 255)}, (3, 1), 1),
    "la": (la_png, ".png", {(0, 0): WHITE, (1, 0): BLACK}, (2, 1), 0),
    "palette": (palette_png, ".png", {(0, 0): WHITE, (1, 0): GREEN}, (2, 1), 0),
    "gray": (gray_png, ".png", {(1, 1): (100, 100, 100)}, (2, 2), 0),
    "one_bit": (one_bit_png, ".png", {(0, 0): BLACK, (1, 0): WHITE}, (2, 1), 0),
    "sixteen_bit": (sixteen_bit_png, ".png", {(0, 0): BLACK, (1, 0): WHITE, (2, 0): (128, 128, 128)}, (3, 1), 0),
    "int32": (int32_tiff, ".tif", {(0, 0): BLACK, (1, 0): WHITE}, (2, 1), 0),
    "float": (float_tiff, ".tif", {(0, 0): BLACK, (1, 0): (128, 128, 128)}, (2, 1), 0),
    # after rotation: 16 wide, 32 tall, the red corner at the top right
    "exif_rotated": (exif_rotated_jpeg, ".jpg", {(12, 4): RED, (4, 4): BLUE, (12, 28): BLUE}, (16, 32), 40),
}


def assert_pixels(image: Image.Image, name: str) -> None:
    _, _, expected, size, tolerance = GOOD_IMAGES[name]
    assert image.mode == "RGB", name
    if size is not None:
        assert image.size == size, f"{name}: size {image.size}, expected {size}"
    for (x, y), colour in expected.items():
        got = image.getpixel((x, y))
        assert all(abs(a - b) <= tolerance for a, b in zip(got, colour, strict=True)), f"{name} at {(x, y)}: {got} != {colour}"


# ---- images that must be skipped when accessed ----


def broken_png_data() -> bytes:
    data = bytearray(noise_png(32))
    start = data.index(b"IDAT") + 40
    data[start : start + 40] = bytes(b ^ 0xFF for b in data[start : start + 40])
    return bytes(data)


def damaged_jpeg_header() -> bytes:
    return noise_jpeg()[:20]


def truncated_jpeg() -> bytes:
    data = noise_jpeg(32)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = noise_png(32)
    return data[: len(data) // 2]


def truncated_webp() -> bytes:
    data = noise_webp(32)
    return data[: len(data) - 40]


def text_named_jpeg() -> bytes:
    return b"this is a caption file saved under the wrong name\n"


def svg_image() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


BAD_IMAGES = {
    "broken_png": (broken_png_data, ".png", "corrupt_image"),
    "damaged_header": (damaged_jpeg_header, ".jpg", "corrupt_image"),
    "truncated_jpeg": (truncated_jpeg, ".jpg", "truncated_image"),
    "truncated_png": (truncated_png, ".png", "truncated_image"),
    "truncated_webp": (truncated_webp, ".webp", "truncated_image"),
    "text_as_jpeg": (text_named_jpeg, ".jpg", "unsupported_format"),
    "svg": (svg_image, ".svg", "unsupported_format"),
}


# ---- manifests and shards ----


def write_manifest(path: Path, records: list) -> Path:
    """One line per record: a dict is written as JSON, a str as the raw line."""
    lines = [record if isinstance(record, str) else json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def caption_json(caption, lang="en") -> bytes:
    record = {"caption": caption} if lang is None else {"caption": caption, "lang": lang}
    return json.dumps(record, ensure_ascii=False).encode()
