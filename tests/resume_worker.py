"""Runs the resume tests' training in its own process, slowly enough to be killed part-way.

python tests/resume_worker.py RUN_DIR SECONDS_PER_SAMPLE
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from distill_helpers import ColourPairs, resume_distiller  # noqa: E402

if __name__ == "__main__":
    run_dir, delay = sys.argv[1], float(sys.argv[2])
    torch.set_num_threads(1)
    resume_distiller(run_dir, data=ColourPairs(24, delay=delay)).fit("both")
