"""Data-parallel training across processes started by ``torchrun`` (nanoGPT style detection).

Networks are not wrapped in DistributedDataParallel: GAN phases freeze and unfreeze
networks, and a phase can backpropagate through a network it does not update, which DDP's
hooks do not allow. Instead, like Karras et al.'s code, each rank computes its gradients and the
updated network's gradients are averaged with one all-reduce before the optimizer step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group when launched by torchrun (RANK/WORLD_SIZE set)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device_kind != "cuda" and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
            # workers restarted by torchrun come up at different times, and gloo's eager connect gives up
            # after 3 quick retries (seen on 2 loaded cores): connect lazily, at the first collective
            os.environ.setdefault("TORCH_GLOO_LAZY_INIT", "1")
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return info


def broadcast_module(net: nn.Module) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    for t in list(net.parameters()) + list(net.buffers()):
        dist.broadcast(t.data, src=0)


def average_gradients(params: list[torch.Tensor], world_size: int) -> None:
    """All-reduce the mean gradient of ``params`` (what one optimizer steps) in one flat buffer."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()  # no rank tears its connections down while another still writes or gathers
        dist.destroy_process_group()
