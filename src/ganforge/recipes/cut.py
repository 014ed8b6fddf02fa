"""Contrastive Unpaired Translation (Park et al. 2020) and FastCUT, on the translation engine.

One generator per direction and no inverse: instead of cycle consistency, the PatchNCE loss
(:mod:`ganforge.models.cut`) asks every patch of the translation G(x) to be recognisable, in G's own
encoder features, as the patch of x at the same place, among the other patches of x. Content is kept
patch by patch, so the translation cannot swap what the image shows for something else that a reverse
generator could swap back (CycleGAN's failure on digits).

Phase ``D``: the PatchGAN judges target-domain images against translations (LSGAN, no history pool,
as the reference). Phase ``G`` (the generator and the projection heads ``F``, one optimizer): the
adversarial loss ``cut.gan`` x (the papers' MSE, see recipes/translation.py) plus ``cut.nce`` x PatchNCE
on the layers ``cut.layers``, averaged with the identity PatchNCE between a target-domain image and its
translation when ``cut.nce_idt`` (CUT; FastCUT turns it off, raises ``nce`` to 10 and adds flip
equivariance: the input is mirrored at random and the query features mirrored back).

``cut.directions``: ``AtoB`` (the paper), ``BtoA``, or ``both``: two independent CUTs trained side by
side in one run (their own generator, judge and heads; no cycle between them), so one run translates
both ways. Presets: ``--recipe cut`` (CUT), ``--recipe fastcut``; the reference's antialiased
down/upsampling is not used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import config_section
from ..data import Dataset
from ..data.images import set_channels
from ..models.cut import PatchSampler, encoder_layers, nce_between
from ..models.translation import PatchDiscriminator, ResnetGenerator, TwoWay
from .base import GRID_SAMPLES, RECIPES, Phase, PictureInputs, Stats, StepContext, Tensor
from .translation import TranslationRecipe

CUT_CHECKS = {
    "gan": (lambda v: v >= 0, "a number >= 0"),
    "nce": (lambda v: v >= 0, "a number >= 0"),
    "patches": (lambda v: v >= 1, "an integer >= 1"),
    "tau": (lambda v: v > 0, "a number > 0"),
    "head": (lambda v: v >= 1, "an integer >= 1"),
    "directions": (lambda v: v in ("AtoB", "BtoA", "both"), "AtoB, BtoA or both"),
}
WAYS = {"AtoB": ("AtoB",), "BtoA": ("BtoA",), "both": ("AtoB", "BtoA")}


@config_section("cut", CUT_CHECKS)
@dataclass
class CutConfig:
    """Contrastive unpaired translation: CUT and FastCUT (recipes/cut.py)."""

    gan: float = 1.0  # lambda_GAN: weight of the adversarial loss
    nce: float = 1.0  # lambda_NCE: weight of PatchNCE (CUT 1, FastCUT 10)
    nce_idt: bool = True  # also PatchNCE between a target-domain image and its translation (CUT; FastCUT off)
    layers: str = "auto"  # generator layers compared: 'auto' (pixels, downsamplings, two blocks) or '0,4,8'
    patches: int = 256  # positions sampled per layer and image
    tau: float = 0.07  # temperature
    head: int = 256  # width of the projection heads
    flip_equivariance: bool = False  # FastCUT: mirror inputs at random, mirror the query features back
    directions: str = "AtoB"  # AtoB | BtoA | both (two CUTs side by side)


@RECIPES.register("cut")
class CUT(TranslationRecipe):
    """CUT (Park et al. 2020): ResNet G, PatchGAN D, LSGAN + PatchNCE (+ identity PatchNCE); unpaired data."""

    default_data = "digits2typeset"
    needs_pairs = False

    @property
    def directions(self) -> tuple[str, ...]:  # type: ignore[override]
        return WAYS[self.cfg.cut.directions]

    def source_channels(self, direction: str) -> int:
        ca, cb = self.channels
        return ca if direction == "AtoB" else cb

    def build_nets(self) -> dict[str, nn.Module]:
        cfg, t, c = self.cfg, self.cfg.translate, self.cfg.cut
        self.layers = encoder_layers(t.down, t.blocks, c.layers)
        gens, judges, heads = {}, {}, {}
        for d in self.directions:
            cin, cout = self.source_channels(d), self.channels[1] if d == "AtoB" else self.channels[0]
            g = ResnetGenerator(cin, cout, cfg.net.generator_width, t.blocks, t.down, t.norm, cfg.net.max_channels)
            gens[d] = g
            heads[d] = PatchSampler.for_generator(g, cin, self.layers, c.head)
            judges[d] = PatchDiscriminator(cout, cfg.net.width, self.patch_layers(), t.norm, cfg.net.max_channels)
        G = TwoWay(gens["AtoB"], gens["BtoA"]) if len(gens) == 2 else gens[self.directions[0]]
        return {"G": G, "D": nn.ModuleDict(judges), "F": nn.ModuleDict(heads)}

    def generator(self, G: nn.Module, direction: str) -> nn.Module:
        """The network of one direction inside ``G`` (live or loaded)."""
        if isinstance(G, TwoWay):
            return G.ab if direction == "AtoB" else G.ba
        return G

    def as_source(self, x: Tensor, direction: str) -> Tensor:
        """Target-domain images in the source domain's channels (the encoder's input)."""
        return set_channels(x, self.source_channels(direction))

    # ------------------------------------------------------------------ training
    def phases(self) -> list[Phase]:
        return [Phase("D", self.d_step, updates="D", grads=("D", "G")),
                Phase("G", self.g_step, updates="G", grads=("G", "F"))]

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        a, _ = ctx.real()
        (a,), (b,) = self.augment([a], ctx), self.augment([ctx.real_b()], ctx)
        flips = torch.rand(len(self.directions), generator=ctx.gen, device=ctx.gen.device) < 0.5  # drawn always
        loss, pairs = 0.0, []
        for d, flip in zip(self.directions, flips.tolist()):
            src, tgt = (a, b) if d == "AtoB" else (b, a)
            flipped = self.cfg.cut.flip_equivariance and flip
            fake = self.generator(self.nets["G"], d)(src.flip(-1) if flipped else src)
            ctx.cache[d] = (src, tgt, fake, flipped)
            real_logits, fake_logits = self.nets["D"][d](tgt), self.nets["D"][d](fake.detach())
            loss = loss + self.loss.d(real_logits, fake_logits)
            pairs.append((real_logits, fake_logits))
        return loss, {"Loss/D": loss.detach(), "D/accuracy": self.accuracy(pairs)}

    def nce(self, d: str, src: Tensor, out: Tensor, flipped: bool, gen: torch.Generator) -> Tensor:
        """PatchNCE between a source batch and its translation (``flipped``: made from the mirrored source)."""
        c = self.cfg.cut
        return nce_between(self.generator(self.nets["G"], d), self.nets["F"][d], src, self.as_source(out, d),
                           self.layers, c.patches, c.tau, gen, flipped)

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        c = self.cfg.cut
        adv = nce = idt = torch.zeros((), device=ctx.gen.device)
        for d in self.directions:
            src, tgt, fake, flipped = ctx.cache.pop(d)
            adv = adv + self.g_adv(self.nets["D"][d](fake))
            nce = nce + self.nce(d, src, fake, flipped, ctx.gen)
            if c.nce_idt:
                same = self.as_source(tgt, d)
                idt = idt + self.nce(d, same, self.generator(self.nets["G"], d)(same), False, ctx.gen)
        both = (nce + idt) / 2 if c.nce_idt else nce
        loss = c.gan * adv + c.nce * both
        stats = {"Loss/G": adv.detach(), "Loss/G/nce": nce.detach(), "Loss/G/total": loss.detach()}
        if c.nce_idt:
            stats["Loss/G/nce_idt"] = idt.detach()
        return loss, stats

    # ------------------------------------------------------------------ the sampling face
    def translate(self, G: nn.Module, x: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        return self.generator(G, direction)(x)

    def sources(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """Each direction's source images among domain A's ``a`` and domain B's ``b``."""
        return {d: a if d == "AtoB" else b for d in self.directions}

    def same_inputs(self, ctx: StepContext) -> Callable[[nn.Module], Tensor]:
        sources = self.sources(ctx.real()[0], ctx.real_b())
        return lambda G: torch.cat([self.translate(G, x, d).flatten(1) for d, x in sources.items()], 1)

    def columns(self, G: nn.Module, a: Tensor, b: Tensor) -> list[Tensor]:
        """Per direction: source | translation."""
        return [t for d, x in self.sources(a, b).items() for t in (x, self.translate(G, x, d))]

    def preview(self, G: nn.Module, pics: PictureInputs, n: int = GRID_SAMPLES) -> Tensor:
        d, x = next(iter(self.sources(*self.fixed_pairs(pics, n)).items()))
        return pics.data.from_model(self.translate(G, x, d).float())

    def outputs_domain(self, data: Dataset) -> Tensor:
        return data.x if self.directions[0] == "BtoA" else super().outputs_domain(data)


@RECIPES.register("fastcut")
class FastCUT(CUT):
    """FastCUT (Park et al. 2020): CUT without the identity PatchNCE, lambda_NCE 10, flip equivariance."""
