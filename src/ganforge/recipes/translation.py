"""Image-to-image translation on the shared engine: pix2pix (paired) and CycleGAN (unpaired).

pix2pix (Isola et al. 2017). Phase ``D``: the conditional PatchGAN judges (input, target) against
(input, G(input)), both as channel-concatenated pairs. Phase ``G``: fool it, plus ``translate.l1``
times the L1 distance to the target (lambda 100), reusing the D phase's G(input).

CycleGAN (Zhu et al. 2017). Phase ``G`` (both generators, one optimizer): LSGAN losses against both
discriminators, cycle consistency ``|F(G(a)) - a| + |G(F(b)) - b|`` times ``translate.cycle``
(lambda 10) and identity ``|G(b) - b| + |F(a) - a|`` times ``identity * cycle`` (0.5 lambda); optionally
SimGAN's self-regularization ``|G(a) - a| + |F(b) - b|`` times ``translate.self_reg`` (Shrivastava et al.
2017: the translation stays near its input, which keeps what the image shows - for domains that
differ in style rather than layout); optionally CUT's PatchNCE between each input and its translation
times ``translate.nce``, with projection heads ``F`` and the ``cut.*`` settings (recipes/cut.py); optionally
DistanceGAN's distance preservation (Benaim & Wolf 2017) times ``translate.distance``: the L1 distance between
two inputs, standardised by the batch's distances in their domain, should equal their translations'.
Phase ``D`` (both discriminators): real images against fakes drawn from a history pool of the last
``translate.pool`` (50) generated images per domain. The learning rate is held, then decays
linearly to zero (``optim.decay_start``, 0.5 in the preset).

``Loss/G`` is the generator's adversarial loss alone (what the health monitor watches for a runaway
generator); the L1 / cycle / identity terms are logged beside it and ``Loss/G/total`` is the sum.

The papers' generator objective for LSGAN is ``E[(D(G(x)) - 1)^2]``; the engine's ``lsgan`` loss
is half of that, so the adversarial term is doubled here to keep the papers' balance with the
L1 terms. The papers also halve D's loss; under Adam a constant factor on one loss does not
change its updates, so the engine's D loss is used as it is.

Training inputs are enlarged by ``translate.jitter`` and randomly cropped back, and mirrored
(``translate.flip``), the same way for both images of a pair ("resize to 286, crop 256").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import config_section
from ..data import Dataset
from ..data.images import set_channels
from ..data.run_data import RunData
from ..errors import ConfigError, GanforgeError
from ..inference.pipelines import Translator
from ..losses import get_loss
from ..models.cut import PatchSampler, encoder_layers, nce_between
from ..models.translation import PatchDiscriminator, ResnetGenerator, TwoWay, UNetGenerator, patch_layers_for
from .base import GRID_SAMPLES, RECIPES, Phase, Picture, PictureInputs, Recipe, Shards, Stats, StepContext, Tensor

TRANSLATE_CHECKS = {
    "l1": (lambda v: v >= 0, "a number >= 0"),
    "cycle": (lambda v: v >= 0, "a number >= 0"),
    "identity": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "self_reg": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "nce": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "distance": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "pool": (lambda v: v >= 0, "an integer >= 0 (0: no history)"),
    "blocks": (lambda v: v >= 0, "an integer >= 0"),
    "down": (lambda v: 0 <= v <= 4, "an integer from 0 to 4"),
    "patch": (lambda v: v >= 0, "pixels >= 0 (0: the paper's 70 at 256 px, scaled to the resolution)"),
    "norm": (lambda v: v in ("instance", "batch"), "instance or batch"),
    "dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "jitter": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
}


@config_section("translate", TRANSLATE_CHECKS)
@dataclass
class TranslateConfig:
    """Image-to-image translation: pix2pix and CycleGAN (recipes/translation.py)."""

    l1: float = 100.0  # pix2pix: weight of the L1 distance to the target
    cycle: float = 10.0  # CycleGAN: lambda of the cycle-consistency L1 loss (both directions)
    identity: float = 0.5  # CycleGAN: identity-mapping loss weight, as a multiple of cycle; 0: off
    self_reg: float = 0.0  # CycleGAN: weight of |G(x) - x|, SimGAN's self-regularization (keeps content); 0: off
    nce: float = 0.0  # CycleGAN: weight of PatchNCE between each input and its translation (cut.* settings); 0: off
    distance: float = 0.0  # CycleGAN: weight of DistanceGAN's pairwise-distance preservation; 0: off
    pool: int = 50  # CycleGAN: generated images kept per domain to show the discriminators; 0: none
    blocks: int = 9  # CycleGAN: residual blocks of the ResNet generators (6 or 9 in the paper)
    down: int = 2  # CycleGAN: stride-2 downsamplings of the ResNet generators
    patch: int = 0  # PatchGAN receptive field in px (nearest of 10, 16, 34, 70, 142, ...); 0: 70 at 256 px, scaled
    norm: str = "instance"  # instance | batch
    dropout: float = 0.5  # pix2pix: U-Net decoder dropout (the paper's noise); 0: off
    jitter: float = 0.125  # training inputs are enlarged by this fraction, then randomly cropped back
    flip: bool = True  # random horizontal mirroring of training inputs
    keep_luminance: bool = False  # output luma = input luma: colourisation as predicting chroma

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as the data loaders convert colour to grey


class KeepLuminance(nn.Module):
    """Shifts an RGB output so its luma equals the input's (grey, or the luma of RGB): the network
    then only chooses colour. Luma is linear with weights summing to 1, so the shift is exact (up
    to clamping at the range's ends) in model space [-1, 1] as in [0, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        w = torch.tensor(LUMA, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
        y_in = x if x.shape[1] == 1 else (x * w).sum(1, keepdim=True)
        return (out + (y_in - (out * w).sum(1, keepdim=True))).clamp(-1, 1)


def jitter_flip(xs: list[Tensor], ctx: StepContext, jitter: float, flip: bool) -> list[Tensor]:
    """The same random enlarge-and-crop and mirror for each tensor of ``xs`` (a pair's images).

    Offsets and flips are drawn for the global batch from the step's generator (every rank alike,
    each keeps its slice), always, so the random stream does not depend on the options.
    """
    n, side = len(xs[0]), xs[0].shape[-1]
    big = int(round(side * (1 + jitter)))
    dev = ctx.gen.device
    offsets = ctx.local(torch.randint(big - side + 1, (n * ctx.world_size, 2), generator=ctx.gen, device=dev))
    mirror = ctx.local(torch.rand(n * ctx.world_size, generator=ctx.gen, device=dev) < 0.5)
    out = []
    for x in xs:
        if big > side:
            x = F.interpolate(x, size=(big, big), mode="bilinear", align_corners=False)
            span = torch.arange(side, device=x.device)
            rows = (offsets[:, 0:1] + span)[:, :, None]  # [n, side, 1]
            cols = (offsets[:, 1:2] + span)[:, None, :]  # [n, 1, side]
            x = x.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], rows, cols]  # [n, s, s, C]
            x = x.permute(0, 3, 1, 2).contiguous()
        if flip:
            x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
        out.append(x)
    return out


def pairwise_l1(x: Tensor) -> Tensor:
    """Mean absolute difference between every two images of a batch: ``[n * (n - 1) / 2]``."""
    i, j = torch.triu_indices(len(x), len(x), 1, device=x.device)
    return (x[i] - x[j]).abs().flatten(1).mean(1)


def distance_change(x: Tensor, out: Tensor, target_real: Tensor) -> Tensor:
    """DistanceGAN (Benaim & Wolf 2017): how far the translations ``out`` of ``x`` are from keeping the inputs'
    pairwise distances, each standardised by the real images' distances in its domain (this batch's ``x`` and
    ``target_real``); 0 for batches under 3 images, whose distances have no spread."""
    if min(len(x), len(target_real)) < 3:
        return out.sum() * 0

    def standard(d: Tensor, ref: Tensor) -> Tensor:
        return (d - ref.mean()) / ref.std().clamp_min(1e-8)

    with torch.no_grad():
        ref_x, ref_t = pairwise_l1(x), pairwise_l1(target_real)
    return (standard(ref_x, ref_x) - standard(pairwise_l1(out), ref_t)).abs().mean()


class ImagePool:
    """Shrivastava et al. 2017 / CycleGAN: until full, every generated image is stored and shown;
    then each is, with probability 1/2, shown while a random stored one is swapped out and shown instead.

    The pool is training state: it is saved in checkpoints (``state_dict``) so resume is exact.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # [k <= size, C, H, W]

    def query(self, fake: Tensor, ctx: StepContext) -> Tensor:
        if self.size == 0:
            return fake
        n, dev = len(fake), ctx.gen.device
        coin = ctx.local(torch.rand(n * ctx.world_size, generator=ctx.gen, device=dev)).tolist()
        slot = ctx.local(torch.randint(self.size, (n * ctx.world_size,), generator=ctx.gen, device=dev)).tolist()
        shown = []
        for i in range(n):
            img = fake[i : i + 1].detach()
            k = 0 if self.images is None else len(self.images)
            if k < self.size:
                self.images = img.clone() if self.images is None else torch.cat([self.images, img])
                shown.append(img)
            elif coin[i] > 0.5:
                j = slot[i]
                shown.append(self.images[j : j + 1].clone())
                self.images[j] = img[0]
            else:
                shown.append(img)
        return torch.cat(shown)

    def state_dict(self) -> dict:
        return {} if self.images is None else {"images": self.images}

    def load_state_dict(self, state: dict) -> None:
        self.images = state["images"].clone() if "images" in state else None


class TranslationRecipe(Recipe):
    """Shared by pix2pix and CycleGAN: data checks, augmentation, optimizers, and the sampling face
    (``translate`` instead of ``latent``/``generate``)."""

    pipeline = Translator
    own_metrics: ClassVar[str | None] = "psnr, ssim, l1; cycle_l1, fd_ab, fd_ba, labels_kept_*"
    directions: ClassVar[tuple[str, ...]] = ("AtoB",)
    needs_pairs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        cfg, data = self.cfg, self.data
        if not data.translation:
            raise ConfigError(f"{cfg.recipe} translates images between two domains; --data {data.name!r} has one. "
                              "Use paired:DIR, unpaired:DIR_A,DIR_B, edges2photos, gray2color or digits2typeset")
        if self.needs_pairs and not data.paired:
            raise ConfigError(f"{cfg.recipe} learns from aligned pairs; {data.name!r} is unpaired: use --recipe "
                              "cyclegan, or paired data (paired:DIR, edges2photos, gray2color)")
        self.loss = get_loss(cfg.loss)
        self.adv_scale = 2.0 if cfg.loss == "lsgan" else 1.0  # the papers' MSE(D(G(x)), 1); see the module doc
        self.nets = self.build_nets()

    @property
    def channels(self) -> tuple[int, int]:
        return self.data.shape[0], self.data.shape_b[0]

    @property
    def resolution(self) -> int:
        return self.data.shape[-1]

    def patch_layers(self) -> int:
        return patch_layers_for(self.resolution, self.cfg.translate.patch)

    def build_nets(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam for G (with PatchNCE's projection heads ``F``, where a recipe has them) and for D."""
        o = self.cfg.optim
        g_params = [p for name in ("G", "F") if name in self.nets for p in self.nets[name].parameters()]
        return {"G": torch.optim.Adam(g_params, lr=o.lr_g, betas=(o.beta1, o.beta2), foreach=True),
                "D": torch.optim.Adam(self.nets["D"].parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), foreach=True)}

    def augment(self, xs: list[Tensor], ctx: StepContext) -> list[Tensor]:
        t = self.cfg.translate
        return jitter_flip(xs, ctx, t.jitter, t.flip)

    def accuracy(self, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
        """The share of D's patch decisions that are right, over (real, fake) logit maps."""
        b = self.loss.boundary
        return sum((r > b).float().mean() + (f < b).float().mean() for r, f in pairs).detach() / (2 * len(pairs))

    def g_adv(self, logits: Tensor) -> Tensor:
        return self.adv_scale * self.loss.g(logits)

    # ------------------------------------------------------------------ the sampling face
    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            only = " (one direction only)" if len(self.directions) == 1 else ""
            raise GanforgeError(f"--direction {direction} is not allowed for this {self.cfg.recipe} run{only}; "
                                f"allowed: {', '.join(self.directions)}")

    def translate(self, G: nn.Module, x: Tensor, direction: str = "AtoB") -> Tensor:
        """Model-space images of the source domain -> the other domain's (``G`` live or loaded)."""
        raise NotImplementedError

    def columns(self, G: nn.Module, a: Tensor, b: Tensor) -> list[Tensor]:
        """Columns of a training picture, model space: input | output | target (or reconstruction)."""
        raise NotImplementedError

    def same_inputs(self, ctx: StepContext) -> Callable[[nn.Module], Tensor]:
        """Every direction's translations of this step's training images (flattened side by side)."""
        sources = {"AtoB": self.grid_source(ctx.real()[0])}
        if "BtoA" in self.directions:
            sources["BtoA"] = ctx.real_b()
        return lambda G: torch.cat([self.translate(G, x, d).flatten(1) for d, x in sources.items()], 1)

    def grid_source(self, x: Tensor) -> Tensor:
        """What :meth:`translate` is given for training images ``x`` in pictures and health checks."""
        return x

    # ------------------------------------------------------------------ training pictures and measures
    def fixed_pairs(self, pics: PictureInputs, k: int) -> tuple[Tensor, Tensor]:
        """The first ``k`` fixed training inputs and their partners (domain B; the images themselves when the
        data has one domain, as super-resolution's)."""
        idx = pics.fixed_idx[:k]
        b = pics.x if pics.x_b is None else pics.x_b
        return pics.x[idx], b[idx % len(b)]

    def preview(self, G: nn.Module, pics: PictureInputs, n: int = GRID_SAMPLES) -> Tensor:
        """The translations of fixed training inputs."""
        return pics.data.from_model(self.translate(G, self.grid_source(self.fixed_pairs(pics, n)[0])).float())

    def pictures(self, G: nn.Module, pics: PictureInputs) -> list[Picture]:
        """Rows of input | output | target (or reconstruction) for 8 fixed training inputs."""
        columns = self.columns(G, *self.fixed_pairs(pics, 8))
        c = max(col.shape[1] for col in columns)
        cells = torch.stack([pics.data.from_model(col.float()).expand(-1, c, -1, -1) for col in columns], 1)
        return [Picture(cells.flatten(0, 1), len(columns))]

    def outputs_domain(self, data: Dataset) -> Tensor:
        return data.x if data.x_b is None else data.x_b

    def measure(self, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
                draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
                shards: Shards | None = None) -> dict | None:
        """PSNR / SSIM / L1 (paired) or cycle error, fd both ways and digits kept (unpaired) on held-out data,
        beside the trivial baselines (:mod:`ganforge.metrics.translation`); on rank 0 only."""
        from ..inference.tiling import translate_batch
        from ..metrics.translation import translation_metrics

        if shards is not None and not shards.is_main:
            return None
        return translation_metrics(lambda x, d: translate_batch(self, G, x, d), data.train, data.held_out(), seed,
                                   self.directions)

    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        raise GanforgeError(f"this {self.cfg.recipe} run translates images; it does not sample from noise: use "
                            "ganforge translate RUN --input PATH --out PATH")

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        return self.latent(len(z), None, z.device)


@RECIPES.register("pix2pix")
class Pix2Pix(TranslationRecipe):
    """pix2pix (Isola et al. 2017): U-Net G, conditional PatchGAN D, adversarial + L1 (paired data)."""
    default_data: ClassVar[str | None] = "edges2photos"

    def build_nets(self) -> dict[str, nn.Module]:
        cfg, t = self.cfg, self.cfg.translate
        ca, cb = self.channels
        G: nn.Module = UNetGenerator(ca, cb, self.resolution, cfg.net.generator_width, cfg.net.max_channels, t.norm,
                                     t.dropout)
        if t.keep_luminance:
            if cb != 3:
                raise ConfigError(f"translate.keep_luminance needs colour targets; {self.data.name!r} has {cb} "
                                  "channel(s) in domain B")
            G = KeepLuminance(G)
        D = PatchDiscriminator(ca + cb, cfg.net.width, self.patch_layers(), t.norm, cfg.net.max_channels)
        return {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        return [Phase("D", self.d_step, updates="D", grads=("D", "G")), Phase("G", self.g_step, updates="G")]

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        a, _ = ctx.real()
        a, b = self.augment([a, ctx.real_b()], ctx)
        fake = self.nets["G"](a)
        ctx.cache.update(a=a, b=b, fake=fake)
        D = self.nets["D"]
        real_logits, fake_logits = D(torch.cat([a, b], 1)), D(torch.cat([a, fake.detach()], 1))
        loss = self.loss.d(real_logits, fake_logits)
        acc = self.accuracy([(real_logits, fake_logits)])
        return loss, {"Loss/D": loss.detach(), "D/real": real_logits.detach().mean(),
                      "D/fake": fake_logits.detach().mean(), "D/accuracy": acc}

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        a, b, fake = ctx.cache.pop("a"), ctx.cache.pop("b"), ctx.cache.pop("fake")
        adv = self.g_adv(self.nets["D"](torch.cat([a, fake], 1)))
        l1 = (fake - b).abs().mean()
        loss = adv + self.cfg.translate.l1 * l1
        return loss, {"Loss/G": adv.detach(), "Loss/G/l1": l1.detach(), "Loss/G/total": loss.detach()}

    def translate(self, G: nn.Module, x: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        return G(x)

    def columns(self, G: nn.Module, a: Tensor, b: Tensor) -> list[Tensor]:
        return [a, G(a), b]


@RECIPES.register("cyclegan")
class CycleGAN(TranslationRecipe):
    """CycleGAN (Zhu et al. 2017): two ResNet generators, two PatchGANs, LSGAN + cycle + identity, image pools."""
    default_data: ClassVar[str | None] = "digits2typeset"

    directions: ClassVar[tuple[str, ...]] = ("AtoB", "BtoA")
    needs_pairs: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        t = self.cfg.translate
        ca, cb = self.channels
        for key in ("identity", "self_reg"):
            if getattr(t, key) and ca != cb:
                raise ConfigError(f"translate.{key}={getattr(t, key)} needs domains with the same channels; A has {ca} "
                                  f"and B {cb}: set translate.{key}=0")
        if self.resolution % 2**t.down:
            raise ConfigError(f"resolution {self.resolution} must be a multiple of 2^translate.down = {2**t.down}")
        self.pools = {"A": ImagePool(t.pool), "B": ImagePool(t.pool)}

    def build_nets(self) -> dict[str, nn.Module]:
        cfg, t = self.cfg, self.cfg.translate
        ca, cb = self.channels

        def gen(cin: int, cout: int) -> nn.Module:
            return ResnetGenerator(cin, cout, cfg.net.generator_width, t.blocks, t.down, t.norm, cfg.net.max_channels)

        def disc(c: int) -> nn.Module:
            return PatchDiscriminator(c, cfg.net.width, self.patch_layers(), t.norm, cfg.net.max_channels)

        nets = {"G": TwoWay(gen(ca, cb), gen(cb, ca)), "D": nn.ModuleDict({"A": disc(ca), "B": disc(cb)})}
        if t.nce:
            c = cfg.cut
            self.layers = encoder_layers(t.down, t.blocks, c.layers)
            nets["F"] = nn.ModuleDict({"AtoB": PatchSampler.for_generator(nets["G"].ab, ca, self.layers, c.head),
                                       "BtoA": PatchSampler.for_generator(nets["G"].ba, cb, self.layers, c.head)})
        return nets

    def state_dict(self) -> dict:
        return {f"pool_{k}": p.state_dict() for k, p in self.pools.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, p in self.pools.items():
            p.load_state_dict(state.get(f"pool_{k}", {}))

    def phases(self) -> list[Phase]:
        return [Phase("G", self.g_step, updates="G", grads=tuple(n for n in ("G", "F") if n in self.nets)),
                Phase("D", self.d_step, updates="D")]

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        t, G, D = self.cfg.translate, self.nets["G"], self.nets["D"]
        a, _ = ctx.real()
        (a,), (b,) = self.augment([a], ctx), self.augment([ctx.real_b()], ctx)
        fake_b, fake_a = G.ab(a), G.ba(b)
        adv = self.g_adv(D["A"](fake_a)) + self.g_adv(D["B"](fake_b))
        cycle = (G.ba(fake_b) - a).abs().mean() + (G.ab(fake_a) - b).abs().mean()
        loss = adv + t.cycle * cycle
        stats = {"Loss/G": adv.detach(), "Loss/G/cycle": cycle.detach()}
        if t.identity:
            idt = (G.ab(b) - b).abs().mean() + (G.ba(a) - a).abs().mean()
            loss = loss + t.identity * t.cycle * idt
            stats["Loss/G/identity"] = idt.detach()
        if t.self_reg:  # SimGAN: the translation stays near its input, so what it depicts survives
            reg = (fake_b - a).abs().mean() + (fake_a - b).abs().mean()
            loss = loss + t.self_reg * reg
            stats["Loss/G/self_reg"] = reg.detach()
        if t.nce:  # CUT's PatchNCE: each patch of a translation is recognisable as its input's patch
            c, (ca, cb) = self.cfg.cut, self.channels
            nce = (nce_between(G.ab, self.nets["F"]["AtoB"], a, set_channels(fake_b, ca), self.layers, c.patches,
                               c.tau, ctx.gen)
                   + nce_between(G.ba, self.nets["F"]["BtoA"], b, set_channels(fake_a, cb), self.layers, c.patches,
                                 c.tau, ctx.gen))
            loss = loss + t.nce * nce
            stats["Loss/G/nce"] = nce.detach()
        if t.distance:  # DistanceGAN: pairs of images keep their (standardised) distance through the translation
            dist = distance_change(a, fake_b, b) + distance_change(b, fake_a, a)
            loss = loss + t.distance * dist
            stats["Loss/G/distance"] = dist.detach()
        ctx.cache.update(a=a, b=b, fake_a=fake_a.detach(), fake_b=fake_b.detach())
        stats["Loss/G/total"] = loss.detach()
        return loss, stats

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        D = self.nets["D"]
        a, b = ctx.cache.pop("a"), ctx.cache.pop("b")
        fake_a = self.pools["A"].query(ctx.cache.pop("fake_a"), ctx)
        fake_b = self.pools["B"].query(ctx.cache.pop("fake_b"), ctx)
        ra, fa, rb, fb = D["A"](a), D["A"](fake_a), D["B"](b), D["B"](fake_b)
        loss_a, loss_b = self.loss.d(ra, fa), self.loss.d(rb, fb)
        acc = self.accuracy([(ra, fa), (rb, fb)])
        return loss_a + loss_b, {"Loss/D": (loss_a + loss_b).detach(), "Loss/D/A": loss_a.detach(),
                                 "Loss/D/B": loss_b.detach(), "D/accuracy": acc}

    def translate(self, G: nn.Module, x: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        return G(x, direction)

    def columns(self, G: nn.Module, a: Tensor, b: Tensor) -> list[Tensor]:
        """a | G(a) | F(G(a)) | b | F(b) | G(F(b))."""
        fake_b, fake_a = G.ab(a), G.ba(b)
        return [a, fake_b, G.ba(fake_b), b, fake_a, G.ab(fake_a)]
