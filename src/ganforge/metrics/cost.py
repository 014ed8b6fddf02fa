"""What a generator costs to run: parameters, multiply-accumulates per output (counted by PyTorch's own
``torch.utils.flop_counter`` on a real forward pass, not estimated by hand) and CPU time."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

Run = Callable[[nn.Module], torch.Tensor]  # generator -> its outputs on fixed inputs (recipes.base.example_inputs)


def parameters(G: nn.Module) -> int:
    return sum(p.numel() for p in G.parameters())


def macs(G: nn.Module, run: Run, n: int) -> float:
    """Multiply-accumulates per output of ``run`` (which draws ``n`` outputs): the counted FLOPs / 2 / n."""
    wanted = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)  # with parameters that want gradients the counter's module tracker trips on StyleGAN2
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            run(G)
    finally:
        for p, w in zip(G.parameters(), wanted):
            p.requires_grad_(w)
    return counter.get_total_flops() / 2 / n


def seconds(call: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median wall-clock seconds of one ``call()`` (without gradients), after ``warmup`` calls."""
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            t = time.perf_counter()
            call()
            if i >= warmup:
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def cost(G: nn.Module, run: Run, n: int) -> dict[str, float]:
    """``params`` and ``macs`` (per output) of generator ``G``."""
    return {"params": float(parameters(G)), "macs": macs(G, run, n)}
