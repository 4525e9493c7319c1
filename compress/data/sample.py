"""The raw sample every data source yields; teacher and student apply their own transforms."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass
class Sample:
    image: Image.Image  # RGB, EXIF orientation applied
    caption: str
    lang: str  # "en" or "zh"
    key: str = ""  # a stable id within its source (file path, shard member, demo index)
