"""English and Chinese captions of demo scenes, from several paraphrase templates per language.

Some templates name every attribute ("a photo of a large red circle on the left."); others name
only some ("a red circle."), as real captions do. Which template a scene gets is part of the scene.
Template i names the same attributes in both languages; `caption_claims` says which, so the
world can tell which captions are true of which pictures (`compress.demo_world.truth`).
"""

from __future__ import annotations

from compress.demo_world.scene import Scene, SceneObject
from compress.demo_world.vocabulary import COLORS, POSITIONS, SHAPES, SIZES, by_key
from compress.errors import CompressError

CAPTION_LANGUAGES = ("en", "zh")

SINGLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "a photo of {a_size} {color} {shape} {pos}.",
        "{a_size} {color} {shape} {pos}.",
        "{pos_cap}, there is {a_size} {color} {shape}.",
        "an image showing {a_color} {shape} of {size} size {pos}.",
        "{a_size} {shape} colored {color}, {pos}.",
        "{a_color} {shape}.",
        "a photo of {a_shape}.",
        "something {color} {pos}.",
        "{a_size} {shape} {pos}.",
        "there is {a_color} {shape} in the image.",
        "{a_shape}.",
    ),
    "zh": (
        "一个{color}的{size}{shape}在{pos}。",
        "{pos}有一个{size}的{color}{shape}。",
        "一张照片，{pos}是一个{color}的{size}{shape}。",
        "图片{pos}画着一个{color}{shape}，它是{size}的。",
        "{pos}有个{size}{shape}，颜色是{color}。",
        "一个{color}的{shape}。",
        "一张{shape}的照片。",
        "{pos}有一个{color}的东西。",
        "一个{size}{shape}在{pos}。",
        "图片里有一个{color}的{shape}。",
        "一个{shape}。",
    ),
}

ALL_ATTRIBUTES = ("shape", "color", "size", "position")
# The attributes each single-object template names, in template order (the same in both languages).
SINGLE_CLAIMS: tuple[tuple[str, ...], ...] = (
    ALL_ATTRIBUTES,
    ALL_ATTRIBUTES,
    ALL_ATTRIBUTES,
    ALL_ATTRIBUTES,
    ALL_ATTRIBUTES,
    ("color", "shape"),
    ("shape",),
    ("color", "position"),
    ("size", "shape", "position"),
    ("color", "shape"),
    ("shape",),
)

PAIR_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "a photo of {o1} {p1} and {o2} {p2}.",
        "{o1} {p1} and {o2} {p2}.",
        "two shapes: {o1} {p1}, {o2} {p2}.",
        "{o1} and {o2}.",
    ),
    "zh": (
        "{p1}是一个{o1}，{p2}是一个{o2}。",
        "一张照片：{p1}有一个{o1}，{p2}有一个{o2}。",
        "两个图形：{p1}的{o1}和{p2}的{o2}。",
        "一个{o1}和一个{o2}。",
    ),
}


# The attributes each two-object template names for each of the two objects.
PAIR_CLAIMS: tuple[tuple[str, ...], ...] = (ALL_ATTRIBUTES, ALL_ATTRIBUTES, ALL_ATTRIBUTES, ("shape", "color", "size"))


def templates_for(scene: Scene, lang: str) -> tuple[str, ...]:
    _check_lang(lang)
    return (SINGLE_TEMPLATES if len(scene.objects) == 1 else PAIR_TEMPLATES)[lang]


def caption(scene: Scene, lang: str, variant: int | None = None) -> str:
    """The scene described in `lang`; `variant` picks a template (default: the scene's own choice)."""
    templates = templates_for(scene, lang)
    if variant is None:
        variant = scene.caption_choice % len(templates)
    if not 0 <= variant < len(templates):
        raise CompressError(f"caption variant {variant} is out of range 0..{len(templates) - 1} for this {lang} scene")
    if len(scene.objects) == 1:
        text = templates[variant].format(**_single_fields(scene.objects[0], lang))
    else:
        first, second = scene.objects
        text = templates[variant].format(
            o1=_object_phrase(first, lang),
            p1=by_key(POSITIONS, first.position).name(lang),
            o2=_object_phrase(second, lang),
            p2=by_key(POSITIONS, second.position).name(lang),
        )
    return text[0].upper() + text[1:] if lang == "en" else text


def caption_claims(scene: Scene, variant: int) -> tuple[dict[str, str], ...]:
    """What caption `variant` of this scene states: per object, the attribute values it names."""
    table = SINGLE_CLAIMS if len(scene.objects) == 1 else PAIR_CLAIMS
    if not 0 <= variant < len(table):
        raise CompressError(f"caption variant {variant} is out of range 0..{len(table) - 1} for this scene")
    return tuple({name: getattr(obj, name) for name in table[variant]} for obj in scene.objects)


def _check_lang(lang: str) -> None:
    if lang not in CAPTION_LANGUAGES:
        raise CompressError(f"the demo world captions in {', '.join(CAPTION_LANGUAGES)}, not {lang!r}")


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _single_fields(obj: SceneObject, lang: str) -> dict[str, str]:
    shape = by_key(SHAPES, obj.shape).name(lang)
    color = by_key(COLORS, obj.color).name(lang)
    size = by_key(SIZES, obj.size).name(lang)
    pos = by_key(POSITIONS, obj.position).name(lang)
    return {
        "shape": shape,
        "color": color,
        "size": size,
        "pos": pos,
        "pos_cap": pos[0].upper() + pos[1:],
        "a_size": with_article(size),
        "a_color": with_article(color),
        "a_shape": with_article(shape),
    }


def _object_phrase(obj: SceneObject, lang: str) -> str:
    shape = by_key(SHAPES, obj.shape).name(lang)
    color = by_key(COLORS, obj.color).name(lang)
    size = by_key(SIZES, obj.size).name(lang)
    if lang == "en":
        return with_article(f"{size} {color} {shape}")
    return f"{color}的{size}{shape}"
