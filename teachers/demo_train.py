"""Training the demo teacher from scratch on the demo world: symmetric InfoNCE in both languages.

Two things make the few hundred steps count. The demo world knows which captions are true of which
pictures, so "a photo of a circle." is a positive for every single-circle picture of the batch,
not a negative for all but one (multi-positive InfoNCE). And half of each batch are shape twins
of the other half, so pictures that differ in shape alone meet in every batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from compress.demo_world import SHAPES, DemoWorld, Scene
from compress.demo_world.captions import caption_claims, templates_for
from compress.demo_world.truth import truth_matrix
from teachers.demo_model import CharTokenizer, DemoCLIP, ImagePreprocess

MAX_LOGIT_SCALE = 100.0
LANGUAGES = ("en", "zh")


def symmetric_info_nce(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, matches: torch.Tensor) -> torch.Tensor:
    """CLIP's loss with every true pair as a target: `matches[i, j]` says caption i is true of picture j.

    Image-to-text and text-to-image cross-entropies against the uniform distribution over true
    partners, averaged. With only the diagonal true this is the usual CLIP loss.
    """
    logits = logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * text @ image.T
    targets = matches.float()
    text_to_image = F.cross_entropy(logits, targets / targets.sum(dim=1, keepdim=True))
    image_to_text = F.cross_entropy(logits.T, targets.T / targets.T.sum(dim=1, keepdim=True))
    return (text_to_image + image_to_text) / 2


@dataclass
class TrainingBatch:
    images: list[Image.Image]
    captions: dict[str, list[str]]  # per language, caption i describes image i
    matches: dict[str, torch.Tensor]  # per language, [captions, images] booleans: which captions are true of which images


def shape_twin(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same scene with one object's shape changed: same place, colour, size, background, noise."""
    objects = list(scene.objects)
    which = int(rng.integers(len(objects)))
    others = [s.key for s in SHAPES if s.key != objects[which].shape]
    objects[which] = replace(objects[which], shape=others[int(rng.integers(len(others)))])
    return replace(scene, objects=tuple(objects))


def training_batch(world: DemoWorld, step: int, config: dict) -> TrainingBatch:
    """`batch_size` pictures, each with one English and one Chinese caption.

    The first half are train scenes step*H .. step*H+H-1 (H = half the batch); the second half are
    their shape twins. Captions that name colour, size and position tell most pictures of a batch
    apart without their shapes; a twin differs from its scene in shape alone, so every batch also
    asks for shape. Templates and twins are drawn from a generator seeded by (seed, step): the batch
    of a given step is the same in every run.
    """
    size = config["batch_size"]
    half = (size + 1) // 2
    rng = np.random.default_rng([config["seed"], step])
    scenes = [world.scene(index, "train") for index in range(step * half, (step + 1) * half)]
    scenes += [shape_twin(scene, rng) for scene in scenes[: size - half]]
    captions, matches = {}, {}
    for lang in LANGUAGES:
        variants = [int(rng.integers(len(templates_for(scene, lang)))) for scene in scenes]
        captions[lang] = [world.caption(scene, lang, v) for scene, v in zip(scenes, variants)]
        claims = [caption_claims(scene, v) for scene, v in zip(scenes, variants)]
        matches[lang] = torch.from_numpy(truth_matrix(claims, scenes))
    return TrainingBatch(images=[world.render(scene) for scene in scenes], captions=captions, matches=matches)


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices, kernels and embedding tables; none on biases, norm scales or the temperature."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} steps/s"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TextColumn("temp {task.fields[temperature]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train_demo_clip(config: dict, tokenizer: CharTokenizer, progress: bool = True, device: str = "cpu") -> tuple[DemoCLIP, dict]:
    """A `DemoCLIP` trained for `config["steps"]` steps, and a summary of the run."""
    torch.manual_seed(config["seed"])
    model = DemoCLIP(config, tokenizer.vocab_size).to(device).train()
    world = DemoWorld(image_size=config["image_size"], seed=config["world_seed"])
    preprocess = ImagePreprocess(config["image_size"])
    optimizer = torch.optim.AdamW(_parameter_groups(model, config["weight_decay"]), lr=config["lr"], betas=(0.9, 0.98))
    warmup = max(1, int(config["warmup_fraction"] * config["steps"]))
    schedule = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, config["steps"] - warmup), eta_min=config["lr"] * 0.01
            ),
        ],
        milestones=[warmup],
    )
    losses: list[float] = []
    start = time.perf_counter()
    with _progress(progress) as bar:
        task = bar.add_task(
            "training demo teacher", total=config["steps"], rate=0.0, loss=float("nan"), temperature=config["init_temperature"]
        )
        for step in range(config["steps"]):
            batch = training_batch(world, step, config)
            image_features = model.encode_pixels(preprocess(batch.images).to(device))
            loss = sum(
                symmetric_info_nce(
                    image_features,
                    model.encode_ids(tokenizer(batch.captions[lang]).to(device)),
                    model.logit_scale,
                    batch.matches[lang].to(device),
                )
                for lang in LANGUAGES
            ) / len(LANGUAGES)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(max=float(np.log(MAX_LOGIT_SCALE)))
            losses.append(loss.item())
            elapsed = time.perf_counter() - start
            bar.update(
                task,
                advance=1,
                rate=(step + 1) / elapsed,
                loss=losses[-1],
                temperature=float(1.0 / model.logit_scale.detach().exp()),
            )
    seconds = time.perf_counter() - start
    tail = losses[-min(20, len(losses)) :]
    summary = {
        "steps": config["steps"],
        "seconds": round(seconds, 2),
        "steps_per_second": round(config["steps"] / seconds, 3),
        "first_loss": round(losses[0], 4),
        "final_loss": round(float(np.mean(tail)), 4),
        "temperature": round(float(1.0 / model.logit_scale.detach().exp()), 5),
        "torch_threads": torch.get_num_threads(),
    }
    return model.eval(), summary
