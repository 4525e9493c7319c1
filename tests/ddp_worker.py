"""One rank of the data-parallel tests' training, started by torchrun.

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_worker.py RUN_DIR OUT_DIR \
        [--resume] [--crash-after N | --stall-after N]

Each rank writes its final trainable weights to OUT_DIR/rank<r>.safetensors and its report to
OUT_DIR/rank<r>.json; the run folder itself is written by rank 0 only. `--crash-after N` makes
every rank's data fail after N sample reads, like the job going down mid-run; `--stall-after N`
makes it hang there instead, for a test to kill the whole job.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))

from distill_helpers import ColourPairs, CrashAfter, StallAfter, ddp_distiller  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--crash-after", type=int)
    parser.add_argument("--stall-after", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        data = None
        if args.crash_after:
            data = CrashAfter(ColourPairs(24), args.crash_after)
        elif args.stall_after:
            data = StallAfter(ColourPairs(24), args.stall_after)
        distiller = ddp_distiller(args.run_dir, **({"data": data} if data is not None else {}))
        report = distiller.fit("both", resume=args.resume)
        rank = dist.get_rank()
        weights = {k: v.detach().cpu().contiguous() for k, v in distiller.trainable.state_dict().items()}
        save_file(weights, str(args.out / f"rank{rank}.safetensors"))
        (args.out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    finally:
        dist.destroy_process_group()
