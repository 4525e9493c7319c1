"""Texts and pictures for checking the Android core against the Python reference client.

Pictures are written as files; those the JVM decodes exactly (8-bit RGB PNG) go to the core as
files, the others are decoded here into what an Android decoder hands the core: ARGB pixels not
yet turned, plus the EXIF orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compress.demo_world import open_demo

ADVERSARIAL = {
    "en": [
        "",
        " ",
        "   ",
        "  leading spaces",
        "trailing spaces   ",
        "tab\tinside",
        "new\nline and\r\nreturn",
        "ALL CAPS and lower case",
        "<s> control </s> <pad> <unk> pieces",
        "<0x41> looks like a byte piece",
        "emoji 🐱🐶🚀✨",
        "a flamingo 🦩 and a family 👨‍👩‍👧",
        "digits 0123456789 and 3.14159",
        "punctuation !?.,;:'\"()[]{}<>/\\|@#$%^&*_+=~`",
        "non\u00a0breaking\u2009thin spaces",
        "combining e\u0301 and precomposed é café",
        "Ελληνικά, русский и English",
        "العربية من اليمين",
        "zero\u200bwidth\ufeffjoiners",
        "a very long caption " * 12,
        "x",
        "A",
        "red",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ],
    "zh": [
        "",
        "\u3000全角空格",
        "一只猫",
        "罕见字：龘靐齉",
        "猫🐱和狗🐶",
        "中文English混合mixed",
        "２０２６年全角数字１２３",
        "繁體中文與簡體中文",
        "标点：，。！？【】《》「」",
        "一个红色的大圆形在左边，" * 8,
        "日本語のテキスト",
        "한국어 텍스트",
        "表情符号👍🏽🇨🇳",
        "换行\n和\t制表符",
        " 前面有空格",
        "后面有空格 ",
        "〇一二三四五六七八九十",
        "龍鳳呈祥",
        "𠀀𠀁 扩展B区",
        "圆",
        "红色的三角形 and a blue square",
    ],
}


def texts_per_language(per_language: int = 60) -> dict[str, list[str]]:
    """Demo test captions plus adversarial texts, at least `per_language` in each language."""
    captions: dict[str, list[str]] = {"en": [], "zh": []}
    for caption, lang in open_demo("test", size=400).captions():
        captions[lang].append(caption)
    out = {}
    for lang, adversarial in ADVERSARIAL.items():
        demo = list(dict.fromkeys(captions[lang]))[: max(0, per_language - len(adversarial))]
        out[lang] = adversarial + demo
    return out


def _pattern(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB picture with gradients, hard edges and noise, the hard cases for a resampler."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1)).astype(np.uint8)
    g = (y * 255 // max(1, height - 1)).astype(np.uint8)
    b = np.where(((x // 7) + (y // 5)) % 2 == 0, 230, 20).astype(np.uint8)
    noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    rgb = np.stack([r, g, b], axis=-1)
    return np.where(rng.random((height, width, 1)) < 0.25, noise, rgb).astype(np.uint8)


SIZES = [
    (64, 64),
    (1, 1),
    (3, 300),
    (300, 3),
    (17, 23),
    (65, 64),
    (127, 64),
    (640, 480),
    (480, 640),
    (1000, 999),
    (100, 31),
    (129, 257),
]


def write_pictures(folder: Path) -> list[dict]:
    """Write the pictures; returns for each {"path", "kind", "request"} where `request` is the core's input."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures = []

    def add(kind: str, path: Path, decode_here: bool) -> None:
        request = _decoded_request(path, folder) if decode_here else {"file": path.name, "orientation": 1}
        pictures.append({"path": path, "kind": kind, "request": request})

    for i, (w, h) in enumerate(SIZES):
        path = folder / f"size_{w}x{h}.png"
        Image.fromarray(_pattern(w, h, i)).save(path)
        add(f"RGB {w}x{h}", path, decode_here=False)
    base = Image.fromarray(_pattern(90, 60, 100))
    for orientation in range(1, 9):
        path = folder / f"orientation_{orientation}.jpg"
        exif = Image.Exif()
        exif[0x0112] = orientation
        base.save(path, quality=95, exif=exif)
        add(f"JPEG EXIF orientation {orientation}", path, decode_here=True)
        path = folder / f"orientation_{orientation}.png"
        base.save(path, exif=exif)
        add(f"PNG EXIF orientation {orientation}", path, decode_here=True)
    rgb = _pattern(96, 80, 200)
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (80, 1))
    modes = {
        "RGBA": Image.fromarray(np.dstack([rgb, alpha]), "RGBA"),
        "LA": Image.fromarray(np.dstack([rgb[..., 0], alpha]), "LA"),
        "L": Image.fromarray(rgb[..., 1], "L"),
        "P": Image.fromarray(rgb).quantize(64),
        "1": Image.fromarray(rgb[..., 2]).convert("1"),
    }
    for mode, image in modes.items():
        path = folder / f"mode_{mode}.png"
        image.save(path)
        add(f"mode {mode}", path, decode_here=True)
    palette = Image.fromarray(rgb).quantize(32)
    path = folder / "mode_P_transparent.png"
    palette.save(path, transparency=5)
    add("mode P with transparency", path, decode_here=True)
    path = folder / "mode_CMYK.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    add("mode CMYK (JPEG)", path, decode_here=True)
    path = folder / "mode_I16.png"
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257 // 300).astype(np.uint16)).save(path)
    add("16-bit grey (I;16)", path, decode_here=True)
    path = folder / "mode_RGB_oriented_large.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_pattern(400, 300, 300)).save(path, quality=90, exif=exif)
    add("large JPEG EXIF orientation 6", path, decode_here=True)
    return pictures


def _decoded_request(path: Path, folder: Path) -> dict:
    """What an Android decoder would give the core: ARGB of the stored (unturned) picture, and its EXIF orientation."""
    image = Image.open(path)
    orientation = int(image.getexif().get(0x0112, 1))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    rgba = np.asarray(image.convert("RGBA") if has_alpha else image.convert("RGB").convert("RGBA"))
    argb = np.ascontiguousarray(rgba[..., [3, 0, 1, 2]])
    raw = folder / f"{path.stem}.{path.suffix[1:]}.argb"
    raw.write_bytes(argb.tobytes())
    return {"argb": raw.name, "width": image.width, "height": image.height, "orientation": orientation}


def demo_images(folder: Path, count: int) -> list[Path]:
    """`count` demo test pictures as PNG files (8-bit RGB, decoded exactly by the JVM)."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset = open_demo("test", size=count)
    paths = []
    for index in range(count):
        path = folder / f"demo_{index:04d}.png"
        dataset[index].image.convert("RGB").save(path)
        paths.append(path)
    return paths
