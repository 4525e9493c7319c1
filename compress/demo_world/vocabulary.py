"""What the demo world can show: shapes, colours, sizes and positions, named in English and Chinese."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One value of a scene attribute with its English and Chinese names."""

    key: str
    en: str
    zh: str

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Colour(Term):
    rgb: tuple[int, int, int] = (0, 0, 0)


SHAPES: tuple[Term, ...] = (
    Term("circle", "circle", "圆形"),
    Term("square", "square", "正方形"),
    Term("triangle", "triangle", "三角形"),
    Term("star", "star", "星形"),
    Term("cross", "cross", "十字形"),
    Term("diamond", "diamond", "菱形"),
    Term("ring", "ring", "圆环"),
    Term("heart", "heart", "心形"),
)

# Saturated hues plus white and black; backgrounds stay low in saturation and mid in brightness
# so every object colour stands out from every background.
COLORS: tuple[Colour, ...] = (
    Colour("red", "red", "红色", (220, 30, 30)),
    Colour("orange", "orange", "橙色", (245, 140, 20)),
    Colour("yellow", "yellow", "黄色", (240, 225, 30)),
    Colour("green", "green", "绿色", (30, 170, 50)),
    Colour("blue", "blue", "蓝色", (30, 70, 225)),
    Colour("purple", "purple", "紫色", (140, 40, 190)),
    Colour("white", "white", "白色", (248, 248, 248)),
    Colour("black", "black", "黑色", (15, 15, 15)),
)

SIZES: tuple[Term, ...] = (
    Term("small", "small", "小"),
    Term("large", "large", "大"),
)

# English names are the phrase a caption uses after the object ("on the left").
POSITIONS: tuple[Term, ...] = (
    Term("left", "on the left", "左边"),
    Term("right", "on the right", "右边"),
    Term("top", "at the top", "上面"),
    Term("bottom", "at the bottom", "下面"),
    Term("center", "in the center", "中间"),
)

# Object centre (x, y) as a fraction of the image side, and half-extent of each size class.
POSITION_CENTRES: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
SIZE_RADII: dict[str, float] = {"small": 0.145, "large": 0.22}

# Two objects share a scene only in these position pairs, so they never overlap.
TWO_OBJECT_LAYOUTS: tuple[tuple[str, str], ...] = (("left", "right"), ("top", "bottom"))


def by_key(terms: tuple[Term, ...], key: str) -> Term:
    for term in terms:
        if term.key == key:
            return term
    raise KeyError(key)
