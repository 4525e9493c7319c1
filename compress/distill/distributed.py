"""Training across processes: the Distiller inside an initialised `torch.distributed` process group.

    torchrun --nproc-per-node 2 train.py     # train.py builds a Distiller after init_process_group

The global batch is the configured batch size, the same batches in the same order as one process
takes them (`compress.distill.batches.RankBatchStream` hands each rank a contiguous slice of each),
so a run may resume under another world size. Every rank gathers the student's embeddings and the
teacher targets of the whole global batch, keeping gradients (open_clip's `gather_with_grad`):
InfoNCE and affinity mimicking see every pair of the global batch, and each rank computes the same
loss. Under DistributedDataParallel's gradient averaging that gives the gradient one process gets
on the global batch: each rank's all_gather backward sums the world's identical gradients for its
slice (world size times the gradient), and DDP divides by the world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


@dataclass(frozen=True)
class World:
    """This process's rank and the number of processes training together (1 outside a process group)."""

    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Only rank 0 writes checkpoints, reports, plots and progress bars."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather_objects(self, value) -> list:
        """Every rank's `value`, in rank order (a small picklable object)."""
        if not self.distributed:
            return [value]
        out: list = [None] * self.size
        dist.all_gather_object(out, value)
        return out


def current_world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(rank=dist.get_rank(), size=dist.get_world_size())
    return World()


def join_from_env(device: str = "auto") -> tuple[World, bool]:
    """Join the process group torchrun describes (WORLD_SIZE > 1 in the environment), unless one exists.

    nccl when training on CUDA (each rank on cuda:LOCAL_RANK), gloo otherwise. Returns the world and
    whether this call created the group (its caller then destroys it at the end)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return current_world(), False
    from compress.device import resolve_device

    cuda = resolve_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return current_world(), True


def leave(created: bool) -> None:
    """Destroy the process group `join_from_env` created."""
    if created and dist.is_initialized():
        dist.destroy_process_group()


def gather_rows(tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """The rows of every rank's `tensor`, concatenated in rank order; gradients flow back to each rank's rows.

    `sizes` are the ranks' row counts (they may differ: skipped samples, a short last batch), so
    every tensor is padded to the largest before the collective and cut back after it.
    """
    largest = max(sizes)
    if tensor.shape[0] < largest:
        padding = tensor.new_zeros((largest - tensor.shape[0], *tensor.shape[1:]))
        tensor = torch.cat([tensor, padding])
    parts = dist_nn.all_gather(tensor)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])
