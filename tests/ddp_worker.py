"""One rank of the data-parallel tests' training, started by torchrun.

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_worker.py RUN_DIR OUT_DIR

Each rank writes its final trainable weights to OUT_DIR/rank<r>.safetensors and its report to
OUT_DIR/rank<r>.json; the run folder itself is written by rank 0 only.
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))

from distill_helpers import ddp_distiller  # noqa: E402

if __name__ == "__main__":
    run_dir, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        distiller = ddp_distiller(run_dir)
        report = distiller.fit("both")
        rank = dist.get_rank()
        weights = {k: v.detach().cpu().contiguous() for k, v in distiller.trainable.state_dict().items()}
        save_file(weights, str(out / f"rank{rank}.safetensors"))
        (out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    finally:
        dist.destroy_process_group()
