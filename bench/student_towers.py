"""Student towers against full-size references: ExecuTorch XNNPACK latency at batch 1, parameters, .pte size.

    python bench/student_towers.py                        # the default spaces' towers, CLIP ViT-B/16, XLM-R-base
    python bench/student_towers.py --default-only         # only the default student's two towers and the references
    python bench/student_towers.py --rounds 30 --out runs/bench-students

Every tower is exported with `torch.export` at a static shape, lowered with the XNNPACK delegate
and written as a `.pte` (the same path `compress search` and the bundles use). Then all programs are
loaded into the ExecuTorch runtime together and timed round-robin, one run of each per round after
warm-up, so load on a shared machine falls on every tower alike; the table shows each tower's median
and its speed-up over the reference of its modality. The references have random weights (nothing is
downloaded): timm's `vit_base_patch16_clip_224` (CLIP ViT-B/16's image tower) at 224 px, and
transformers' XLMRobertaModel with xlm-roberta-base's configuration (250k-piece vocabulary), fed the
student's text length; both with explicit (non-fused) attention, which XNNPACK runs whole.
`report.json` in --out keeps every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from compress.console import make_console
from compress.recipes import load_config
from compress.search import build_tower, default_space_path, example_input, load_space, parse_space
from compress.search.measure import library_versions, machine_description
from compress.search.towers import text_ids
from students.bilingual import DEFAULT_CONFIG
from targets.executorch_target import ExecuTorchTarget

TARGET_SPEEDUP = 10.0
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
        return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]


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


def towers(default_only: bool, small_references: bool = False):
    """(family, name, module, example, is_reference, is_default) for every tower to compare."""
    default_image = {k: DEFAULT_CONFIG["image"][k] for k in ("model", "image_size")}
    default_text = {k: v for k, v in DEFAULT_CONFIG["text"].items() if k not in ("vocab_size", "dropout")}
    text_length = DEFAULT_CONFIG["text"]["max_length"]
    out = []
    for family in ("image", "text"):
        for candidate in load_space(default_space_path(family)).candidates:
            resolved = candidate.resolved
            default = default_image if family == "image" else default_text
            is_default = all(resolved[k] == v for k, v in default.items())
            if default_only and not is_default:
                continue
            out.append(
                (
                    family,
                    candidate.name,
                    lambda c=candidate: build_tower(c),
                    lambda c=candidate: example_input(c),
                    False,
                    is_default,
                )
            )
    if not default_only:
        out += _extra_image_towers(default_image)
    vit = dict(SMALL_VIT) if small_references else {}
    xlmr = dict(SMALL_XLMR) if small_references else {}
    out.append(
        (
            "image",
            "CLIP ViT-B/16 @224" + (" (small)" if vit else ""),
            lambda: clip_vit_b16_image_tower(**vit),
            lambda: torch.randn(1, 3, 224, 224),
            True,
            False,
        )
    )
    ids = lambda: _xlmr_ids(text_length, xlmr.get("vocab_size", XLMR_BASE["vocab_size"]))  # noqa: E731
    out.append(
        (
            "text",
            f"XLM-R-base (T{text_length})" + (" (small)" if xlmr else ""),
            lambda: XLMRobertaTextTower(**xlmr),
            ids,
            True,
            False,
        )
    )
    return out


def _extra_image_towers(default_image: dict) -> list:
    out = []
    # The default student's image model at the reference's resolution: the fair like-for-like ratio,
    # since the default student runs at the demo world's 64 px.
    same_input = parse_space(
        {
            "family": "image",
            "embed_dim": DEFAULT_CONFIG["embed_dim"],
            "candidates": [{"model": default_image["model"], "image_size": 224}],
        }
    ).candidates[0]
    out.append(
        (
            "image",
            f"{same_input.name} (default model at 224 px)",
            lambda: build_tower(same_input),
            lambda: example_input(same_input),
            False,
            False,
        )
    )
    # The image tower the dc_clip recipe's demo preset trains (it learns shapes faster from scratch).
    preset = load_config("dc_clip").get("student", {}).get("image")
    if isinstance(preset, dict) and {k: preset.get(k) for k in default_image} != default_image:
        recipe_image = parse_space(
            {
                "family": "image",
                "embed_dim": DEFAULT_CONFIG["embed_dim"],
                "candidates": [{k: preset[k] for k in ("model", "image_size")}],
            }
        ).candidates[0]
        out.append(
            (
                "image",
                f"{recipe_image.name} (dc_clip demo preset)",
                lambda: build_tower(recipe_image),
                lambda: example_input(recipe_image),
                False,
                False,
            )
        )
    return out


def _xlmr_ids(length: int, vocab_size: int) -> torch.Tensor:
    ids = text_ids(length, vocab_size, torch.Generator().manual_seed(0))
    ids[ids == 0] = XLMR_BASE["pad_token_id"]  # XLM-R pads with 1 and starts with 0
    ids[0, 0] = XLMR_BASE["bos_token_id"]
    return ids


def lower_all(specs, folder: Path, console: Console) -> list[dict]:
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
        for family, name, make_module, make_example, reference, default in specs:
            progress.update(task, current=name)
            torch.manual_seed(0)
            module, example = make_module().eval(), make_example()
            started = time.perf_counter()
            written = target.export_program(module, example, folder / f"{family}-{len(rows)}.pte")
            rows.append(
                {
                    "family": family,
                    "name": name,
                    "reference": reference,
                    "default": default,
                    "params": sum(p.numel() for p in module.parameters()),
                    "pte_bytes": written.bytes,
                    "pte": str(written.path),
                    "input": list(example.shape),
                    "example": example,
                    "delegated": round(written.delegation.fraction, 3),
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


def results_table(rows: list[dict]) -> Table:
    table = Table(title="ExecuTorch XNNPACK fp32, batch 1: students against full-size towers (random weights)")
    for column in ("tower", "input", "params", ".pte MB", "latency ms", "speed-up vs reference", "delegated"):
        table.add_column(column, justify="left" if column in ("tower", "input") else "right")
    for family in ("image", "text"):
        reference = next(r for r in rows if r["family"] == family and r["reference"])
        for row in [r for r in rows if r["family"] == family]:
            speedup = reference["latency_ms"] / row["latency_ms"]
            label = row["name"] + (" (default student)" if row["default"] else "")
            table.add_row(
                f"{family}: {label}",
                "x".join(map(str, row["input"])),
                f"{row['params'] / 1e6:.2f}M",
                f"{row['pte_bytes'] / 1e6:.1f}",
                f"{row['latency_ms']:.2f}",
                "reference" if row["reference"] else f"{speedup:.1f}x",
                f"{100 * row['delegated']:.0f}%",
            )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-only", action="store_true", help="only the default student's towers")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20, help="timed runs of every tower, interleaved")
    parser.add_argument("--out", default="runs/bench-students")
    parser.add_argument(
        "--small-references",
        action="store_true",
        help="the references' architectures at a fraction of their size (checks the script runs; ratios mean nothing)",
    )
    args = parser.parse_args(argv)
    console = make_console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = lower_all(towers(args.default_only, args.small_references), out / "pte", console)
    time_round_robin(rows, args.warmup, args.rounds, console)
    console.print(results_table(rows))
    verdicts = {}
    for family in ("image", "text"):
        reference = next(r for r in rows if r["family"] == family and r["reference"])
        default = next(r for r in rows if r["family"] == family and r["default"])
        speedup = reference["latency_ms"] / default["latency_ms"]
        verdicts[family] = speedup
        mark = "[green]meets" if speedup >= TARGET_SPEEDUP else "[red]misses"
        console.print(
            f"{mark}[/] target: default {family} student {speedup:.1f}x faster than {reference['name']} "
            f"(target >= {TARGET_SPEEDUP:g}x)"
        )
    report = {
        "machine": machine_description(),
        **library_versions(),
        "warmup": args.warmup,
        "rounds": args.rounds,
        "speedup_of_default_student": verdicts,
        "towers": [{k: v for k, v in r.items() if k != "example"} for r in rows],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"report: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
