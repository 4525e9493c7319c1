"""Export benchmark: ExecuTorch fp32 vs int8 (size, latency, cosine) and Core ML package sizes per compression.

    python bench/export.py                           # the default student, random weights
    python bench/export.py --checkpoint runs/dc_clip # a trained run or student folder
    python bench/export.py --skip-coreml --json bench_export.json

Latency is the median of batch-1 calls through the ExecuTorch runtime (XNNPACK) on this machine's
CPU; cosines compare int8 with fp32 embeddings of real demo-world test pictures and captions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compress import quant, quiet  # noqa: E402  (quant's members import torchao when first used, after quiet.install)
from compress.api import build_student  # noqa: E402
from compress.bundle.modules import ImageEncoderForExport, TextEncoderForExport  # noqa: E402
from compress.bundle.preprocess import image_input  # noqa: E402
from compress.commands.export import resolve_checkpoint  # noqa: E402
from compress.demo_world import open_demo  # noqa: E402
from targets.coreml_target import COMPRESSIONS, CoreMLTarget  # noqa: E402
from targets.executorch_target import ExecuTorchTarget, PteModule  # noqa: E402


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="run folder or student folder (default: the default student, random weights)")
    parser.add_argument("--calibration", type=int, default=32, help="demo training pictures for static int8 calibration")
    parser.add_argument("--samples", type=int, default=32, help="demo test pictures and captions for the cosines")
    parser.add_argument("--iterations", type=int, default=30, help="timed calls per model")
    parser.add_argument("--skip-coreml", action="store_true")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args()
    console = Console()
    torch.manual_seed(0)
    student = build_student(resolve_checkpoint(args.checkpoint)[0] if args.checkpoint else None).eval()
    rule = student.describe()["image"]
    manifest_image = {"size": rule["image_size"], "resize": rule["resize"]}
    models = {
        "image": ImageEncoderForExport(student.image_tower, rule["mean"], rule["std"]).eval(),
        "text": TextEncoderForExport(student.text_tower).eval(),
    }
    train, test = open_demo("train", size=args.calibration), open_demo("test", size=args.samples)
    inputs = {
        "image": [torch.from_numpy(image_input(test[i].image, manifest_image)) for i in range(len(test))],
        "text": [student.tokenize([test[i].caption]) for i in range(len(test))],
    }
    calibration = {
        "image": [torch.from_numpy(image_input(train[i].image, manifest_image)) for i in range(len(train))],
        "text": [student.tokenize([train[i].caption]) for i in range(len(train))],
    }
    rows, coreml_rows, timings = [], [], {}
    with tempfile.TemporaryDirectory() as folder, Progress(console=console) as progress, torch.no_grad():
        folder = Path(folder)
        task = progress.add_task("ExecuTorch", total=4)
        outputs = {}
        for tower in ("image", "text"):
            model, example = models[tower], inputs[tower][0]
            eager = torch.cat([model(x) for x in inputs[tower]])
            for precision, scheme in (("fp32", None), ("int8", quant.DEFAULT_SCHEMES[tower])):
                progress.update(task, description=f"ExecuTorch {tower} {precision}")
                start = time.perf_counter()
                result = ExecuTorchTarget().export_program(
                    model, example, folder / f"{tower}.{precision}.pte", quantize=scheme, calibration=calibration[tower]
                )
                timings[f"executorch {tower} {precision} export s"] = round(time.perf_counter() - start, 1)
                runtime = PteModule(result.path)
                out = torch.cat([runtime(x) for x in inputs[tower]])
                outputs[(tower, precision)] = out
                rows.append(
                    {
                        "tower": tower,
                        "mode": f"ExecuTorch {precision}" + (f" ({scheme})" if scheme else ""),
                        "bytes": result.bytes,
                        "latency_ms": quant.latency_ms(runtime, example, warmup=3, iterations=args.iterations),
                        "cosine": quant.embedding_cosine(eager if precision == "fp32" else outputs[(tower, "fp32")], out),
                        "delegated": result.delegation.fraction,
                    }
                )
                progress.advance(task)
            quantized = quant.quantize_torchao(model)
            for mode, module in (("PyTorch eager fp32", model), ("PyTorch torchao int8", quantized)):
                rows.append(
                    {
                        "tower": tower,
                        "mode": mode,
                        "bytes": quant.state_dict_bytes(module),
                        "latency_ms": quant.latency_ms(module, example, warmup=3, iterations=args.iterations),
                        "cosine": quant.embedding_cosine(eager, torch.cat([module(x) for x in inputs[tower]])),
                        "delegated": None,
                    }
                )
        if not args.skip_coreml:
            task = progress.add_task("Core ML", total=2 * len(COMPRESSIONS))
            target = CoreMLTarget()
            for tower, kind in (("image", "image"), ("text", "tensor")):
                example = inputs[tower][0] if tower == "image" else inputs[tower][0].to(torch.int32)
                start = time.perf_counter()
                converted = target.convert(models[tower], example, input_kind=kind)
                timings[f"coreml {tower} convert s"] = round(time.perf_counter() - start, 1)
                for mode in COMPRESSIONS:
                    progress.update(task, description=f"Core ML {tower} {mode}")
                    path = target.save(target.compress(converted, mode), folder / f"{tower}.{mode}.mlpackage")
                    coreml_rows.append({"tower": tower, "mode": mode, "bytes": _size(path)})
                    progress.advance(task)

    table = Table(
        title=f"ExecuTorch / PyTorch, batch 1, {torch.get_num_threads()} threads (size and speed-up vs ExecuTorch fp32)"
    )
    for column in ("tower", "mode", "size MB", "smaller", "latency ms", "speed-up", "cosine vs fp32", "delegated"):
        table.add_column(column, justify="left" if column in ("tower", "mode") else "right")
    for row in rows:
        base = next(r for r in rows if r["tower"] == row["tower"] and r["mode"] == "ExecuTorch fp32")
        table.add_row(
            row["tower"],
            row["mode"],
            f"{row['bytes'] / 1e6:.2f}",
            f"{base['bytes'] / row['bytes']:.2f}x",
            f"{row['latency_ms']:.2f}",
            f"{base['latency_ms'] / row['latency_ms']:.2f}x",
            f"{row['cosine']:.4f}",
            "-" if row["delegated"] is None else f"{row['delegated']:.0%}",
        )
    console.print(table)
    if coreml_rows:
        coreml = Table(title="Core ML .mlpackage sizes (ratio vs fp16)")
        for column in ("tower", "compression", "size MB", "smaller"):
            coreml.add_column(column, justify="left" if column in ("tower", "compression") else "right")
        for row in coreml_rows:
            base = next(r for r in coreml_rows if r["tower"] == row["tower"] and r["mode"] == "fp16")
            coreml.add_row(row["tower"], row["mode"], f"{row['bytes'] / 1e6:.2f}", f"{base['bytes'] / row['bytes']:.2f}x")
        console.print(coreml)
    console.print("export wall times (s): " + ", ".join(f"{k.removesuffix(' s')} {v}" for k, v in timings.items()))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"executorch": rows, "coreml": coreml_rows, "timings_s": timings}, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        sys.exit(main())
