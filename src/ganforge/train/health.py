"""The training health monitor: cheap signals of collapse and divergence, on in every run.

Every ``health.every`` steps it looks at what the trainer already aggregated (no extra
host syncs) plus one small generator forward:

- ``Health/d_pinned``: the discriminator's accuracy is pinned near 1 (it wins outright, G
  gets no signal) or near 0 (it has given up).
- ``Health/g_runaway``: the generator loss is above ``health.g_loss_max``.
- ``Health/diversity``: mean pairwise distance of a fixed batch of samples, relative to the
  same statistic on real data; below ``health.diversity_min`` means mode collapse.

Before step ``health.start`` nothing is flagged: a young generator is not yet judged. Each warning
comes with what it means and what to try (``ADVICE``), at the end of training and in the reports.

NaN/Inf is handled by the trainer (rollback to the last good checkpoint with lower learning
rates); the monitor only counts and reports warnings.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from ..config import HealthConfig

WARNINGS = {
    "d_pinned": "discriminator accuracy pinned near {value:.2f}: one player is winning outright",
    "g_runaway": "generator loss {value:.1f} is running away",
    "collapse": "sample diversity fell to {value:.2f} of the real data's: mode collapse",
}
# What each warning means and what to try, with the config keys (in the log, report.md and report.html).
ADVICE = {
    "d_pinned": ("D tells real from fake (almost) perfectly, or has given up, so G gets little to learn from",
                 "a slower D (--set optim.lr_d=1e-4), a gradient penalty on D (--set reg.r1=1), augmentation D "
                 "sees (--set augment=ada, or translation,cutout), spectral norm (--set reg.spectral_norm=true)"),
    "g_runaway": ("G's loss keeps growing: D wins by more every step and training may diverge",
                  "lower learning rates (--set optim.lr_g=1e-4 --set optim.lr_d=1e-4), a bounded loss "
                  "(--set loss=hinge or lsgan), a gradient penalty on D (--set reg.r1=1)"),
    "collapse": ("G draws too few distinct outputs: it covers a few modes of the data, not all",
                 "minibatch stddev (--set reg.mbstd=4), PacGAN (--set reg.pack=2), a discrete code "
                 "(--set net.z_discrete=10 --set reg.info=1), a class-conditional recipe on labelled data, "
                 "or more steps if the run is young"),
}


def advice_lines(flagged: list[str]) -> list[str]:
    """``name: what it means; try ...`` for each flagged warning."""
    return [f"{k}: {ADVICE[k][0]}; try {ADVICE[k][1]}" for k in ADVICE if k in flagged]


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between distinct rows of x.flatten(1)."""
    f = x.flatten(1).float()
    d = torch.cdist(f, f)
    n = len(f)
    return d.sum() / max(n * (n - 1), 1)


@dataclass
class HealthMonitor:
    cfg: HealthConfig
    real_diversity: float
    counts: Counter = field(default_factory=Counter)
    rollbacks: int = 0

    def check(self, values: dict[str, float], samples: torch.Tensor | None, step: int | None = None
              ) -> dict[str, float]:
        """Health stats for the log (``Health/*``) from aggregated values and a fixed sample batch; before
        ``health.start`` the values are logged but no warning is raised (too early to judge)."""
        c = self.cfg
        out: dict[str, float] = {}
        acc = values.get("D/accuracy")
        if acc is not None:
            out["Health/d_pinned"] = float(acc > c.d_accuracy_max or acc < 1 - c.d_accuracy_max)
        g = values.get("Loss/G")
        if g is not None:
            out["Health/g_runaway"] = float(g > c.g_loss_max)
        if samples is not None and self.real_diversity > 0:
            div = float(mean_pairwise_distance(samples)) / self.real_diversity
            out["Health/diversity"] = div
            out["Health/collapse"] = float(div < c.diversity_min)
        if step is not None and step < c.start:
            out = {k: v for k, v in out.items() if k == "Health/diversity"}
        for key in ("d_pinned", "g_runaway", "collapse"):
            if out.get(f"Health/{key}"):
                self.counts[key] += 1
        return out

    @staticmethod
    def messages(values: dict[str, float]) -> list[str]:
        """Readable warnings for the flagged signals in one set of ``Health/*`` values."""
        shown = {"d_pinned": values.get("D/accuracy", 0.0), "g_runaway": values.get("Loss/G", 0.0),
                 "collapse": values.get("Health/diversity", 0.0)}
        return [WARNINGS[k].format(value=shown[k]) for k in WARNINGS if values.get(f"Health/{k}")]

    @staticmethod
    def flagged(values: dict[str, float]) -> list[str]:
        """The short names of the flagged signals (``collapse``, ``d_pinned``, ``g_runaway``)."""
        return [k for k in WARNINGS if values.get(f"Health/{k}")]

    def summary(self, checks: int) -> str:
        if not self.counts and not self.rollbacks:
            return f"health: no warnings in {checks} checks"
        parts = [f"{k} in {n}/{checks} checks" for k, n in self.counts.items()]
        if self.rollbacks:
            parts.append(f"{self.rollbacks} NaN rollback(s)")
        return "\n".join(["health: " + ", ".join(parts), *(f"  {a}" for a in advice_lines(list(self.counts)))])
