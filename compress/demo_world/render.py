"""Drawing a scene into an RGB image of any size (PIL ImageDraw for shapes, numpy for noise)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from compress.demo_world.scene import Background, Scene, SceneObject
from compress.demo_world.vocabulary import COLORS, POSITION_CENTRES, SIZE_RADII, by_key

SUPERSAMPLE = 4  # shapes are drawn this many times larger, then downsampled, for smooth edges


def _regular_polygon(sides: int, radius: float = 1.0, phase: float = -90.0) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(math.radians(phase + 360.0 * k / sides)), radius * math.sin(math.radians(phase + 360.0 * k / sides)))
        for k in range(sides)
    ]


def _star() -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = 1.0 if k % 2 == 0 else 0.42
        angle = math.radians(-90.0 + 36.0 * k)
        points.append((radius * math.cos(angle), radius * math.sin(angle)))
    return points


def _cross(arm: float = 0.32) -> list[tuple[float, float]]:
    a, b = arm, 0.92
    return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]


def _heart(points: int = 48) -> list[tuple[float, float]]:
    outline = []
    for k in range(points):
        t = 2.0 * math.pi * k / points
        x = 16.0 * math.sin(t) ** 3
        y = 13.0 * math.cos(t) - 5.0 * math.cos(2 * t) - 2.0 * math.cos(3 * t) - math.cos(4 * t)
        outline.append((x / 17.0, -(y + 2.5) / 15.0))
    return outline


# Each shape is an outline followed by any holes cut out of it, in a unit box centred on the
# origin, y pointing down.
SHAPE_OUTLINES: dict[str, list[list[tuple[float, float]]]] = {
    "circle": [_regular_polygon(48, 0.92)],
    "square": [[(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]],
    "triangle": [[(0.0, -0.95), (0.95, 0.7), (-0.95, 0.7)]],
    "star": [_star()],
    "cross": [_cross()],
    "diamond": [[(0.0, -1.0), (0.72, 0.0), (0.0, 1.0), (-0.72, 0.0)]],
    "ring": [_regular_polygon(48, 0.95), _regular_polygon(48, 0.5)],
    "heart": [_heart()],
}


def render_scene(scene: Scene, image_size: int) -> Image.Image:
    """The scene as an RGB image `image_size` pixels square; the same scene always gives the same pixels."""
    image = _background(scene.background, image_size)
    big = image_size * SUPERSAMPLE
    for obj in scene.objects:
        # Each shape is drawn as a large mask and averaged down: anti-aliased edges at any size.
        mask = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(mask)
        outline, *holes = _object_polygons(obj, big)
        draw.polygon(outline, fill=255)
        for hole in holes:
            draw.polygon(hole, fill=0)
        image.paste(_object_colour(obj), (0, 0), mask.resize((image_size, image_size), Image.Resampling.BOX))
    return _add_noise(image, scene.noise_std, scene.seed)


def _object_polygons(obj: SceneObject, side: int) -> list[list[tuple[float, float]]]:
    """The object's outline and holes in pixels of a `side`-pixel canvas."""
    cx, cy = POSITION_CENTRES[obj.position]
    cx, cy = (cx + obj.offset[0]) * side, (cy + obj.offset[1]) * side
    radius = SIZE_RADII[obj.size] * obj.scale * side
    cos, sin = math.cos(math.radians(obj.rotation)), math.sin(math.radians(obj.rotation))
    return [
        [(cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos)) for x, y in polygon]
        for polygon in SHAPE_OUTLINES[obj.shape]
    ]


def _object_colour(obj: SceneObject) -> tuple[int, int, int]:
    base = by_key(COLORS, obj.color).rgb
    return tuple(int(min(255, max(0, c + t))) for c, t in zip(base, obj.tint))


def _background(background: Background, side: int) -> Image.Image:
    first, second = (np.array(c, dtype=np.float32) for c in background.colors)
    if background.kind == "flat":
        return Image.new("RGB", (side, side), tuple(int(v) for v in first))
    coords = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5
    xs, ys = coords[None, :], coords[:, None]
    if background.kind == "linear":
        angle = math.radians(background.angle)
        weight = np.clip(xs * math.cos(angle) + ys * math.sin(angle) + 0.5, 0.0, 1.0)
    else:  # radial
        weight = np.clip(np.sqrt(xs**2 + ys**2) / 0.71, 0.0, 1.0)
    pixels = first * (1.0 - weight[..., None]) + second * weight[..., None]
    return Image.fromarray(pixels.round().astype(np.uint8), "RGB")


def _add_noise(image: Image.Image, std: float, seed: int) -> Image.Image:
    """Uniform pixel noise of standard deviation `std` (a uniform draw costs far less than a Gaussian)."""
    half = max(1, round(std * math.sqrt(3.0)))
    rng = np.random.default_rng([seed, image.width])
    noise = rng.integers(-half, half + 1, size=(image.height, image.width, 3), dtype=np.int16)
    pixels = np.asarray(image, dtype=np.int16) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
