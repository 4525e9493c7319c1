"""Student towers against full-size references at the same input: ExecuTorch XNNPACK latency at batch 1, fp32 and int8.

    python bench/student_towers.py --default-only --before   # dc_clip's and the family's default students, both graphs
    python bench/student_towers.py                            # those and every member of the default search spaces
    python bench/student_towers.py --precisions int8 --image-size 256 --rounds 30 --out runs/bench-students

Every tower is exported with `torch.export` at a static shape, lowered with the XNNPACK delegate and
written as a `.pte` (the path the bundles use): fp32, and int8 with the bundle's schemes (static
PT2E for images, calibrated on random pixels; dynamic for text). Image students run at
`--image-size` (224 by default), the reference's own resolution. `--before` also lowers each
student with its modules' native forwards (`students.export_blocks.native_export_blocks`), the
graph before the export rewrite, whose norms and attention masking ran on portable kernels.
All programs are then loaded into one ExecuTorch runtime and timed round-robin, one run of each
per round after warm-up, so load on a shared machine falls on every tower alike; the table shows
each tower's median, its speed-up over the reference of its modality at the same precision, and
the speed-up of the export form over the native graph. The references have random weights
(nothing is downloaded): timm's `vit_base_patch16_clip_224` (CLIP ViT-B/16's image tower) and
transformers' XLMRobertaModel with xlm-roberta-base's configuration (250k-piece vocabulary), fed the
student's text length; both with explicit (non-fused) attention, and with the students' export
forms wherever their blocks are the same classes (`nn.LayerNorm`, timm's `Attention`): ViT-B/16's
layer norms (timm's own `LayerNorm` class) and the broadcast copies of transformers' attention
stay on portable kernels. `report.json` in --out keeps every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from compress import quiet
from compress.console import make_console
from compress.recipes import load_config
from compress.search import build_tower, default_space_path, example_input, load_space, parse_space
from compress.search.measure import INT8_CPU_FEATURES, library_versions, machine_description
from compress.search.towers import text_ids
from students.bilingual import DEFAULT_CONFIG
from students.export_blocks import make_exportable, native_export_blocks
from targets.executorch_target import ExecuTorchTarget

FAMILIES = ("image", "text")
PRECISIONS = ("fp32", "int8")
INT8_SCHEMES = {"image": "static", "text": "dynamic"}  # the bundle's int8 schemes (compress.quant.pt2e)
TARGET_SPEEDUPS = {"image": 25.0, "text": 30.0}
CALIBRATION_IMAGES = 4
# xlm-roberta-base's config.json, so the random-weight model has the real one's size and shape.
XLMR_BASE = dict(
    vocab_size=250002,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)


class XLMRobertaTextTower(nn.Module):
    """XLM-R's encoder as a text tower: ids in (pad 1), the first token's final hidden state out.

    Attention is transformers' "eager" implementation (matmul, softmax, matmul), which XNNPACK
    takes whole; the default SDPA path exports with a masked "safe softmax" that stays on portable
    kernels and would make the reference look slower than it needs to be.
    """

    def __init__(self, **overrides):
        super().__init__()
        from transformers import XLMRobertaConfig, XLMRobertaModel

        config = XLMRobertaConfig(**{**XLMR_BASE, **overrides})
        config._attn_implementation = "eager"
        self.encoder = XLMRobertaModel(config, add_pooling_layer=False)
        self.pad_id = XLMR_BASE["pad_token_id"]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).long()
        # XLM-R's own position ids (pad + 1, pad + 2, ... over real tokens), computed here without an
        # integer-by-scalar op: PT2E's prepare turns such scalars into float constants, and the int8
        # calibration then fails on the model's own version.
        positions = torch.cumsum(mask, dim=1) * mask + torch.full_like(ids, self.pad_id)
        # The additive key mask given whole (as the student builds it): transformers' own mask builder
        # adds arange offsets that the same prepare step breaks.
        key_bias = ((1.0 - mask.float()) * torch.finfo(torch.float32).min).reshape(ids.shape[0], 1, 1, ids.shape[1])
        return self.encoder(
            input_ids=ids, attention_mask=key_bias, position_ids=positions, token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state[:, 0]


# --small-references: the references' architectures at a fraction of their size, for a quick check
# that the script runs end to end (the speed-ups it then prints mean nothing).
SMALL_VIT = dict(depth=1, embed_dim=64, num_heads=2)
SMALL_XLMR = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)


def clip_vit_b16_image_tower(**overrides) -> nn.Module:
    """timm's CLIP ViT-B/16 image tower (512-d output), with explicit attention for the same reason as above."""
    import timm
    from timm.layers import set_fused_attn, use_fused_attn

    fused = use_fused_attn()  # read when each attention layer is built
    set_fused_attn(False)
    try:
        return timm.create_model("vit_base_patch16_clip_224", pretrained=False, num_classes=512, **overrides)
    finally:
        set_fused_attn(fused)


def clip_vit_b16_reference(**overrides) -> nn.Module:
    """The ViT-B/16 reference with the students' export forms, so both sides lower the same way."""
    return make_exportable(clip_vit_b16_image_tower(**overrides))


def xlmr_reference(**overrides) -> nn.Module:
    return make_exportable(XLMRobertaTextTower(**overrides))


@dataclass
class TowerSpec:
    family: str
    name: str
    build: Callable[[], nn.Module]
    example: Callable[[], torch.Tensor]
    reference: bool = False
    default: str | None = None  # "dc_clip" (the recipe's student) or "family" (students.bilingual's default)
    form: str = "export form"  # or "native": the modules' own forwards, the graph before the rewrite
    precision: str = "fp32"


def _candidate(family: str, options: dict):
    space = {"family": family, "embed_dim": DEFAULT_CONFIG["embed_dim"], "candidates": [options]}
    return parse_space(space).candidates[0]


def recipe_student_options(image_size: int) -> dict[str, dict]:
    """The towers `python -m compress recipe dc_clip` trains (its demo preset's student), image at `image_size`."""
    config = load_config("dc_clip")
    student = config.get("student") or {}
    image = {k: v for k, v in (student.get("image") or {}).items() if k not in ("checkpoint", "mean", "std", "resize")}
    text = {k: v for k, v in (student.get("text") or {}).items() if k != "dropout"}
    text.setdefault("vocab_size", config["tokenizer"]["vocab_size"])  # the size its tokenizer is trained to
    return {"image": {**image, "image_size": image_size}, "text": text}


def _spec(family: str, candidate, note: str, default: str | None) -> TowerSpec:
    return TowerSpec(
        family,
        candidate.name + note,
        lambda c=candidate: build_tower(c),
        lambda c=candidate: example_input(c),
        default=default,
    )


def student_towers(default_only: bool, image_size: int, families: Sequence[str]) -> list[TowerSpec]:
    """The dc_clip recipe's student and the family default (the targets' subjects), and unless
    `default_only` every other member of the default search spaces; image towers at `image_size`."""
    recipe = recipe_student_options(image_size)
    family_default = {
        "image": {"model": DEFAULT_CONFIG["image"]["model"], "image_size": image_size},
        "text": {k: v for k, v in DEFAULT_CONFIG["text"].items() if k not in ("vocab_size", "dropout")},
    }
    out = []
    for family in FAMILIES:
        if family not in families:
            continue
        chosen = {"dc_clip": _candidate(family, recipe[family]), "family": _candidate(family, family_default[family])}
        notes = {"dc_clip": " (dc_clip student)", "family": " (family default)"}
        seen: list[dict] = []  # architectures already listed (the family default may be the recipe's)
        for label, candidate in chosen.items():
            if candidate.architecture not in seen:
                seen.append(candidate.architecture)
                out.append(_spec(family, candidate, notes[label], label))
        if default_only:
            continue
        for candidate in load_space(default_space_path(family)).candidates:
            if family == "image":
                candidate = _candidate("image", {**candidate.options, "image_size": image_size})
            if candidate.architecture not in seen:
                seen.append(candidate.architecture)
                out.append(_spec(family, candidate, "", None))
    return out


def reference_towers(small: bool, image_size: int, families: Sequence[str]) -> list[TowerSpec]:
    vit = dict(SMALL_VIT) if small else {}
    xlmr = dict(SMALL_XLMR) if small else {}
    text_length = DEFAULT_CONFIG["text"]["max_length"]
    out = []
    if "image" in families:
        size = dict(img_size=image_size) if image_size != 224 else {}
        out.append(
            TowerSpec(
                "image",
                f"CLIP ViT-B/16 @{image_size}" + (" (small)" if vit else ""),
                lambda: clip_vit_b16_reference(**vit, **size),
                lambda: torch.randn(1, 3, image_size, image_size),
                reference=True,
            )
        )
    if "text" in families:
        out.append(
            TowerSpec(
                "text",
                f"XLM-R-base (T{text_length})" + (" (small)" if xlmr else ""),
                lambda: xlmr_reference(**xlmr),
                lambda: _xlmr_ids(text_length, xlmr.get("vocab_size", XLMR_BASE["vocab_size"])),
                reference=True,
            )
        )
    return out


def towers(
    default_only: bool,
    small_references: bool = False,
    image_size: int = 224,
    precisions: Sequence[str] = PRECISIONS,
    before: bool = False,
    families: Sequence[str] = FAMILIES,
) -> list[TowerSpec]:
    """Every (tower, form, precision) to lower: students in their export form (and, with `before`,
    in the modules' native form), and the references, each at every precision."""
    out = []
    for spec in student_towers(default_only, image_size, families) + reference_towers(small_references, image_size, families):
        forms = ["native", "export form"] if before and not spec.reference else [spec.form]
        for precision in precisions:
            for form in forms:
                out.append(replace(spec, form=form, precision=precision))
    return out


def _xlmr_ids(length: int, vocab_size: int) -> torch.Tensor:
    ids = text_ids(length, vocab_size, torch.Generator().manual_seed(0))
    ids[ids == 0] = XLMR_BASE["pad_token_id"]  # XLM-R pads with 1 and starts with 0
    ids[0, 0] = XLMR_BASE["bos_token_id"]
    return ids


def _calibration(spec: TowerSpec, example: torch.Tensor) -> list[torch.Tensor]:
    """Random normalised pixels for the static int8 image scheme (random weights: no real images to match)."""
    if spec.family != "image":
        return [example]
    generator = torch.Generator().manual_seed(1)
    return [torch.randn((CALIBRATION_IMAGES, *example.shape[1:]), generator=generator)]


def lower_all(specs: list[TowerSpec], folder: Path, console: Console) -> list[dict]:
    rows = []
    target = ExecuTorchTarget()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("lowering", total=len(specs), current="")
        for spec in specs:
            progress.update(task, current=f"{spec.name} {spec.form} {spec.precision}")
            torch.manual_seed(0)
            module, example = spec.build().eval(), spec.example()
            quantize = INT8_SCHEMES[spec.family] if spec.precision == "int8" else None
            calibration = _calibration(spec, example) if quantize else None
            started = time.perf_counter()
            with native_export_blocks() if spec.form == "native" else nullcontext():
                written = target.export_program(module, example, folder / f"{spec.family}-{len(rows)}.pte", quantize, calibration)
            rows.append(
                {
                    "family": spec.family,
                    "name": spec.name,
                    "form": spec.form,
                    "precision": spec.precision,
                    "scheme": quantize,
                    "reference": spec.reference,
                    "default": spec.default,
                    "params": sum(p.numel() for p in module.parameters()),
                    "pte_bytes": written.bytes,
                    "pte": str(written.path),
                    "input": list(example.shape),
                    "example": example,
                    "delegated": round(written.delegation.fraction, 3),
                    "not_delegated": written.delegation.non_delegated_ops,
                    "lower_seconds": round(time.perf_counter() - started, 1),
                }
            )
            del module
            progress.advance(task)
    return rows


def time_round_robin(rows: list[dict], warmup: int, rounds: int, console: Console) -> None:
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    loaded = []
    with quiet.native_stderr():  # the runtime's first load probes the CPU and logs what it cannot read
        for row in rows:
            program = runtime.load_program(Path(row["pte"]))
            loaded.append((row, program, program.load_method("forward")))
        for row, _, method in loaded:
            for _ in range(warmup):
                method.execute([row["example"]])
            row["runs_ms"] = []
    with Progress(
        TextColumn("[bold]timing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("timing", total=rounds)
        for _ in range(rounds):
            for row, _, method in loaded:
                start = time.perf_counter()
                method.execute([row["example"]])
                row["runs_ms"].append((time.perf_counter() - start) * 1000.0)
            progress.advance(task)
    for row in rows:
        row["latency_ms"] = statistics.median(row["runs_ms"])


def _reference_of(rows: list[dict], row: dict) -> dict:
    return next(r for r in rows if r["reference"] and r["family"] == row["family"] and r["precision"] == row["precision"])


def _native_of(rows: list[dict], row: dict) -> dict | None:
    if row["form"] != "export form" or row["reference"]:
        return None
    same = ("family", "name", "precision")
    return next((r for r in rows if r["form"] == "native" and all(r[k] == row[k] for k in same)), None)


def results_table(rows: list[dict]) -> Table:
    table = Table(title="ExecuTorch XNNPACK, batch 1: students against full-size towers (random weights)")
    columns = (
        "tower",
        "graph",
        "precision",
        "input",
        "params",
        ".pte MB",
        "latency ms",
        "speed-up vs reference",
        "vs native graph",
        "delegated",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("tower", "graph", "precision", "input") else "right")
    for family in FAMILIES:
        for precision in PRECISIONS:
            group = [r for r in rows if r["family"] == family and r["precision"] == precision]
            for row in group:
                reference, native = _reference_of(rows, row), _native_of(rows, row)
                table.add_row(
                    f"{family}: {row['name']}",
                    "reference" if row["reference"] else row["form"],
                    precision + (f" ({row['scheme']})" if row["scheme"] else ""),
                    "x".join(map(str, row["input"])),
                    f"{row['params'] / 1e6:.2f}M",
                    f"{row['pte_bytes'] / 1e6:.1f}",
                    f"{row['latency_ms']:.2f}",
                    "" if row["reference"] else f"{reference['latency_ms'] / row['latency_ms']:.1f}x",
                    f"{native['latency_ms'] / row['latency_ms']:.2f}x" if native else "",
                    f"{100 * row['delegated']:.0f}%",
                )
            if group:
                table.add_section()
    return table


def verdicts(rows: list[dict]) -> list[dict]:
    """The recipe's and the family's default students (export form) against the references, per family and precision."""
    out = []
    for row in rows:
        if row["default"] and row["form"] == "export form":
            reference = _reference_of(rows, row)
            speedup = reference["latency_ms"] / row["latency_ms"]
            target = TARGET_SPEEDUPS[row["family"]]
            out.append(
                {
                    "family": row["family"],
                    "student": row["default"],
                    "precision": row["precision"],
                    "tower": row["name"],
                    "reference": reference["name"],
                    "speedup": round(speedup, 2),
                    "target": target,
                    "meets": speedup >= target,
                }
            )
    return out


def _choices(text: str, allowed: Sequence[str], what: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"--{what}: choose from {', '.join(allowed)} (comma-separated), got {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--default-only", action="store_true", help="only the dc_clip recipe's student and the family default, not the spaces"
    )
    parser.add_argument(
        "--image-size", type=int, default=224, help="the one input side of every image tower, student and reference"
    )
    parser.add_argument("--precisions", default="fp32,int8", help="fp32, int8 or both")
    parser.add_argument("--families", default="image,text", help="image, text or both")
    parser.add_argument(
        "--before",
        action="store_true",
        help="also lower each student with its modules' native forwards (the graph before the export rewrite)",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20, help="timed runs of every tower, interleaved")
    parser.add_argument("--out", default="runs/bench-students")
    parser.add_argument(
        "--small-references",
        action="store_true",
        help="the references' architectures at a fraction of their size (checks the script runs; ratios mean nothing)",
    )
    args = parser.parse_args(argv)
    precisions = _choices(args.precisions, PRECISIONS, "precisions")
    families = _choices(args.families, FAMILIES, "families")
    console = make_console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = towers(args.default_only, args.small_references, args.image_size, precisions, args.before, families)
    rows = lower_all(specs, out / "pte", console)
    time_round_robin(rows, args.warmup, args.rounds, console)
    console.print(results_table(rows))
    machine = machine_description()
    features = ", ".join(machine["int8_features"]) or "none of " + ", ".join(INT8_CPU_FEATURES)
    console.print(
        f"machine: {machine['cpu']} ({machine['arch']}, {machine['cores']} cores); int8 CPU features: {features}. "
        "The int8 ratios depend on them (README, Students against full-size towers)."
    )
    results = verdicts(rows)
    for v in results:
        mark = "[green]meets" if v["meets"] else "[red]misses"
        console.print(
            f"{mark}[/] target: {v['student']} {v['family']} student {v['speedup']:.1f}x faster than {v['reference']} "
            f"in {v['precision']} (target >= {v['target']:g}x)"
        )
    report = {
        "machine": machine,
        **library_versions(),
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "rounds": args.rounds,
        "image_size": args.image_size,
        "default_student_speedups": results,
        "towers": [{k: v for k, v in r.items() if k != "example"} for r in rows],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"report: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
