"""The two-player adversarial game shared by every unconditional G/D recipe.

Phase ``D`` (``reg.n_critic`` times): draw real x and z, make G(z) once, minimise the
discriminator loss on (x, G(z).detach()), plus the WGAN-GP / R1 / R2 penalties when they run
every step. Phase ``Dreg`` (every ``reg.lazy_every`` steps, only when that is > 1): R1 / R2 alone
with gamma scaled by the interval (StyleGAN2's lazy regularization). Phase ``G``: minimise the
generator loss on D(G(z)), reusing the fake batch the D phase made, since G has not changed in
between - one generator forward per step.

Options of ``cfg.reg`` that change D itself (spectral norm, minibatch stddev, PacGAN packing) are
applied here and in :meth:`build_nets`, so every recipe built on this class gets them.

The latent is ``[one_hot(c) | z]``: ``net.z_discrete`` categories drawn uniformly (none by
default) beside ``net.z_dim`` normal dimensions. A discrete code lets G cover separated modes
without a continuous path between them - a continuous map of a connected latent must put
some mass on the way from one mode to the next (cf. DeLiGAN; InfoGAN's categorical code).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from ..ada import AdaptiveAugment
from ..augment import ADAPTIVE, diff_augment, parse_policy
from ..errors import ConfigError
from ..losses import get_loss, gradient_penalty, r1_penalty, r2_penalty
from ..models.conditional import ClassHeadDiscriminator
from ..nn.anticollapse import pack, packed_shape, spectral_norm_layers
from .base import Phase, Recipe, Stats, StepContext, Tensor, truncated_normal

Critic = Callable[[Tensor], Tensor]  # a batch -> D's logits


class GANRecipe(Recipe):
    """Subclasses implement :meth:`build_nets`, returning ``{"G": ..., "D": ...}``."""

    def __post_init__(self) -> None:
        cfg, reg = self.cfg, self.cfg.reg
        self.loss = get_loss(cfg.loss)
        self.augment = parse_policy(cfg.augment)
        self.ada = AdaptiveAugment(cfg.ada, cfg.batch_size) if self.augment == [ADAPTIVE] else None
        if self.augment and self.data.kind != "image":
            raise ConfigError(f"augment={cfg.augment!r} needs image data; {self.data.name!r} is 2D points")
        if cfg.batch_size % reg.pack:
            raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by reg.pack={reg.pack}")
        if reg.info and self.conditional:
            raise ConfigError(f"reg.info={reg.info} (InfoGAN's code head) is for unconditional recipes (dcgan, "
                              f"vanilla); {cfg.recipe} is conditioned on labels already: set reg.info=0")
        if reg.info and cfg.net.z_discrete < 2:
            raise ConfigError(f"reg.info={reg.info} needs a categorical code: set net.z_discrete >= 2")
        if (reg.info or self.conditional) and (reg.pack > 1 or reg.unroll):
            raise ConfigError("class labels and codes (conditional recipes, reg.info) do not combine with "
                              "reg.pack > 1 or reg.unroll")
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.nets = self.build_nets()
        if reg.info:  # InfoGAN: D gets a head Q that recovers the categorical code
            self.nets["D"] = ClassHeadDiscriminator(self.nets["D"], cfg.net.z_discrete)
        if reg.spectral_norm:
            spectral_norm_layers(self.nets["D"])

    def build_nets(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"ada": self.ada.state_dict()} if self.ada is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])

    @property
    def latent_dim(self) -> int:
        """Width of G's input: the one-hot code and the normal part."""
        return self.cfg.net.z_discrete + self.cfg.net.z_dim

    @property
    def d_shape(self) -> tuple[int, ...]:
        """The shape of one input of D: a sample, or ``reg.pack`` of them concatenated."""
        return packed_shape(self.data.shape, self.cfg.reg.pack)

    def d_outputs(self, x: Tensor, ctx: StepContext, labels: Tensor | None = None,
                  D: Critic | None = None) -> tuple[Tensor, Tensor | None]:
        """D's view of a batch ``[N, ...]`` (augmented when configured, then packed): logits
        ``[N / pack]`` and, for a D with a class head (AC-GAN, InfoGAN), class logits ``[N, K]``."""
        if self.ada is not None:
            x = ctx.local(self.ada(ctx.globalize(x), ctx.gen))
        elif self.augment:
            x = ctx.local(diff_augment(ctx.globalize(x), self.augment, ctx.gen))
        D = self.nets["D"] if D is None else D
        out = D(x, labels) if self.conditional else D(pack(x, self.cfg.reg.pack))
        return out if isinstance(out, tuple) else (out, None)

    def discriminate(self, x: Tensor, ctx: StepContext, D: Critic | None = None,
                     labels: Tensor | None = None) -> Tensor:
        """D's logits for a batch ``[N, ...]`` -> ``[N / pack]``."""
        return self.d_outputs(x, ctx, labels, D)[0]

    def class_targets(self, z: Tensor, real_labels: Tensor | None,
                      fake_labels: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """What D's class head should predict for the real and the fake batch: InfoGAN's
        categorical code for fakes (nothing for reals); AC-GAN overrides this with the labels."""
        if not self.cfg.reg.info:
            return None, None
        return None, z[:, : self.cfg.net.z_discrete].argmax(1)

    def class_weight(self) -> float:
        return self.cfg.reg.info

    def class_loss(self, logits: Tensor | None, target: Tensor | None) -> Tensor:
        """Cross-entropy of D's class head (0 when there is no head or no target)."""
        if logits is None or target is None:
            return torch.zeros((), device=target.device if target is not None else "cpu")
        return F.cross_entropy(logits.float(), target)

    def penalty_coords(self) -> tuple[Tensor, Tensor] | None:
        """``(center, scale)`` of standardized coordinates D works in, if any (points, see models/mlp.py).

        Gradient penalties are measured in them, so a gamma means the same on any data scale.
        """
        return None

    def critic(self, ctx: StepContext, labels: Tensor | None = None) -> tuple[Critic, Callable[[Tensor], Tensor]]:
        """D as a function of the coordinates penalties are measured in, and the map from samples into them."""
        def D(x: Tensor) -> Tensor:
            return self.discriminate(x, ctx, labels=labels)

        coords = self.penalty_coords()
        if coords is None:
            return D, lambda x: x
        c, s = coords
        return (lambda u: D(u * s + c)), (lambda x: (x - c) / s)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.cfg.optim
        self.optimizers = {  # kept: the unrolled G step reads D's Adam state
            "G": torch.optim.Adam(self.nets["G"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2), foreach=True),
            "D": torch.optim.Adam(self.nets["D"].parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), foreach=True),
        }
        return self.optimizers

    def phases(self) -> list[Phase]:
        reg = self.cfg.reg
        phases = [Phase("D", self.d_step, updates="D", grads=("D", "G"), repeats=reg.n_critic)]  # G keeps its graph
        if reg.lazy_every > 1 and (reg.r1 or reg.r2):
            phases.append(Phase("Dreg", self.d_reg_step, updates="D", every=reg.lazy_every))
        phases.append(Phase("G", self.g_step, updates="G"))
        return phases

    # ------------------------------------------------------------------ latents
    def _latent(self, n: int, gen: torch.Generator | None, device: torch.device,
                truncation: float | None = None) -> Tensor:
        z = truncated_normal((n, self.cfg.net.z_dim), truncation, gen, device)  # [n, z_dim]
        k = self.cfg.net.z_discrete
        if not k:
            return z
        code = torch.randint(k, (n,), generator=gen, device=device)
        # scaled by sqrt(k): every latent entry has second moment 1, as the normal ones do, so at
        # initialisation the code moves G's output as much as z does instead of 1/sqrt(k) as much
        return torch.cat([F.one_hot(code, k).to(z.dtype) * k**0.5, z], 1)  # [n, k + z_dim]

    @property
    def one_hot_code(self) -> int:
        return self.cfg.net.z_discrete

    def train_latent(self, ctx: StepContext, n: int) -> Tensor:
        return ctx.local(self._latent(n * ctx.world_size, ctx.gen, ctx.gen.device))

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        return self._latent(n, gen, device, truncation)

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        return G(z, labels) if self.conditional else G(z)  # truncation acts on z, in latent()

    def train_fake(self, ctx: StepContext, z: Tensor, labels: Tensor | None) -> Tensor:
        """The live generator's batch for a training step (StyleGAN2 adds style mixing and noise here)."""
        return self.generate(self.nets["G"], z, labels)

    # ------------------------------------------------------------------ phases
    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        reg = self.cfg.reg
        real, labels = ctx.real()  # [N, *shape], [N] or None
        fake_labels = labels if self.conditional else None  # fakes follow the data's class mix
        z = self.train_latent(ctx, len(real))
        fake = self.train_fake(ctx, z, fake_labels)
        real_target, fake_target = self.class_targets(z, labels, fake_labels)
        ctx.cache.update(fake=fake, real=real, real_labels=labels, fake_labels=fake_labels, fake_target=fake_target)
        real_logits, real_cls = self.d_outputs(real, ctx, labels)
        fake_logits, fake_cls = self.d_outputs(fake.detach(), ctx, fake_labels)
        if self.ada is not None:
            self.ada.observe(real_logits, ctx.step)
        loss = self.loss.d(real_logits, fake_logits)
        b = self.loss.boundary
        acc = 0.5 * ((real_logits > b).float().mean() + (fake_logits < b).float().mean())
        stats = {"Loss/D": loss.detach(), "D/real": real_logits.detach().mean(),
                 "D/fake": fake_logits.detach().mean(), "D/accuracy": acc.detach()}
        adv = loss.detach()
        if fake_cls is not None:
            cls = self.class_loss(real_cls, real_target) + self.class_loss(fake_cls, fake_target)
            loss = loss + self.class_weight() * cls
            stats["Loss/D/class"] = cls.detach()
        D, coords = self.critic(ctx, labels)
        if reg.gp:
            eps = ctx.local(torch.rand(len(real) * ctx.world_size, generator=ctx.gen, device=ctx.gen.device))
            gp = gradient_penalty(D, coords(real), coords(fake), eps)
            loss = loss + reg.gp * gp
            stats["Loss/D/gp"] = gp.detach()
        if reg.lazy_every == 1:
            loss = loss + self._r1_r2(D, coords(real), coords(fake), 1, stats)
        if len(stats) > 4:  # penalties were added: Loss/D is the total, Loss/D/adv the game alone
            stats["Loss/D"], stats["Loss/D/adv"] = loss.detach(), adv
        if self.ada is not None:
            stats.update(self.ada.stats())
        return loss, stats

    def _r1_r2(self, D: Critic, real: Tensor, fake: Tensor | None, scale: int, stats: Stats) -> Tensor:
        reg, loss = self.cfg.reg, torch.zeros((), device=real.device)
        if reg.r1:
            r1 = r1_penalty(D, real)
            loss = loss + reg.r1 / 2 * scale * r1
            stats["Loss/D/r1"] = r1.detach()
        if reg.r2:
            r2 = r2_penalty(D, fake)
            loss = loss + reg.r2 / 2 * scale * r2
            stats["Loss/D/r2"] = r2.detach()
        return loss

    def d_reg_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        """Lazy R1/R2 (Karras et al. 2020): every k steps, with gamma * k so the average pull is the same."""
        real, labels = ctx.cache.get("real"), ctx.cache.get("real_labels")
        if real is None:
            real, labels = ctx.real()
        fake = ctx.cache.get("fake")  # made for the same labels as the real batch
        if fake is None and self.cfg.reg.r2:
            with torch.no_grad():
                fake = self.train_fake(ctx, self.train_latent(ctx, len(real)), labels)
        stats: Stats = {}
        D, coords = self.critic(ctx, labels)
        loss = self._r1_r2(D, coords(real), None if fake is None else coords(fake), self.cfg.reg.lazy_every, stats)
        return loss, stats

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        if "fake" not in ctx.cache:  # no D phase ran this step: make the fake batch here
            _, labels = ctx.real()
            fake_labels = labels if self.conditional else None
            z = self.train_latent(ctx, ctx.batch_size)
            ctx.cache.update(fake=self.train_fake(ctx, z, fake_labels), fake_labels=fake_labels,
                             fake_target=self.class_targets(z, labels, fake_labels)[1])
        fake, fake_labels, target = ctx.cache.pop("fake"), ctx.cache.get("fake_labels"), ctx.cache.get("fake_target")
        D: Critic | None = None
        if self.cfg.reg.unroll:
            D = _functional(self.nets["D"], *self.unrolled_d(ctx, fake.detach()))
        fake_logits, fake_cls = self.d_outputs(fake, ctx, fake_labels, D)
        if self.loss.g_uses_real:  # relativistic: G's loss also moves with D's view of real data
            real, real_labels = ctx.cache.pop("real", None), ctx.cache.get("real_labels")
            if real is None:
                real, real_labels = ctx.real()
            with torch.no_grad():
                real_logits = self.discriminate(real, ctx, D, real_labels)
            loss = self.loss.g(fake_logits, real_logits)
        else:
            loss = self.loss.g(fake_logits)
        stats = {"Loss/G": loss.detach()}
        if fake_cls is not None and target is not None:
            cls = self.class_loss(fake_cls, target)
            loss = loss + self.class_weight() * cls
            stats["Loss/G/class"] = cls.detach()
        return loss, stats

    def unrolled_d(self, ctx: StepContext, fake: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """D's parameters after ``reg.unroll`` Adam steps from its current weights and Adam state,
        on fresh real batches against this (detached) fake batch (Metz et al. 2017).

        A first-order surrogate: G's gradient is taken at the unrolled D with the unrolled
        parameters treated as constants, without differentiating through the D updates (the
        second-order terms of the paper). The live D, its optimizer and buffers are untouched.
        """
        D, opt = self.nets["D"], self.optimizers.get("D")
        group = opt.param_groups[0] if opt else {"lr": self.cfg.optim.lr_d, "betas": (0.5, 0.999), "eps": 1e-8}
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        names, live = zip(*D.named_parameters())
        params = [p.detach().clone() for p in live]
        state = [opt.state.get(p, {}) if opt else {} for p in live]
        m = [s["exp_avg"].clone() if "exp_avg" in s else torch.zeros_like(p) for s, p in zip(state, params)]
        v = [s["exp_avg_sq"].clone() if "exp_avg_sq" in s else torch.zeros_like(p) for s, p in zip(state, params)]
        t = int(state[0]["step"]) if "step" in state[0] else 0
        buffers = {n: b.clone() for n, b in D.named_buffers()}  # BN / SN statistics move on the copy only
        for _ in range(self.cfg.reg.unroll):
            real, _ = ctx.real()
            params = [p.requires_grad_(True) for p in params]
            Dk = _functional(D, dict(zip(names, params)), buffers)
            with torch.enable_grad():
                loss = self.loss.d(self.discriminate(real, ctx, Dk), self.discriminate(fake, ctx, Dk))
                grads = torch.autograd.grad(loss, params)
            t += 1
            with torch.no_grad():  # Adam (Kingma & Ba 2015), bias-corrected
                for mi, vi, g in zip(m, v, grads):
                    mi.mul_(b1).add_(g, alpha=1 - b1)
                    vi.mul_(b2).addcmul_(g, g, value=1 - b2)
                step = lr / (1 - b1**t)
                params = [p - step * mi / ((vi / (1 - b2**t)).sqrt() + eps) for p, mi, vi in zip(params, m, v)]
        return dict(zip(names, params)), buffers


def _functional(module: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor]) -> Critic:
    """``module`` evaluated with other parameters and buffers (torch.func.functional_call)."""
    tensors = {**params, **buffers}
    return lambda x: functional_call(module, tensors, (x,))
