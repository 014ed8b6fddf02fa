"""Text-to-image: a GAN that draws what a caption says (GAN-INT-CLS, Reed et al. 2016; StackGAN's
conditioning augmentation, Zhang et al. 2017), on captioned data (``shapes``, ``captions:DIR``).

Two stages in one run of ``steps``:

1. ``align`` (the first ``text.pretrain`` steps): the sentence encoder and an image encoder learn a
   shared space CLIP-style (symmetric InfoNCE over the batch). Afterwards both are frozen.
2. ``D`` / ``G``: the adversarial game conditioned on the frozen sentence embedding. The
   discriminator is matching-aware: besides generated pictures, real pictures shown with another
   image's caption are negatives (a ``text.mismatch`` share of its fake term), so it must check
   that picture and caption agree, not only that the picture looks real. G's loss adds the KL term
   of conditioning augmentation.

"Labels" in the sampling API are token ids ``[N, L]``; :meth:`prompt_tokens` makes them from
prompts (``ganforge sample RUN --prompt "..."``), refusing unknown words.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
from torch.func import functional_call

from ..config import config_section
from ..data import Dataset
from ..data.run_data import RunData
from ..errors import ConfigError, GanforgeError
from ..losses import r1_penalty
from ..models.text2image import TextDiscriminator, TextToImageGenerator, contrastive_loss
from ..text import Vocabulary, WordSwaps, caption_tokens
from .base import RECIPES, Phase, Picture, PictureInputs, Shards, Stats, StepContext, Tensor, truncated_normal
from .gan import GANRecipe

TEXT_CHECKS = {
    "pretrain": (lambda v: v >= 0, "an integer >= 0 (0: no alignment stage; encoders stay random)"),
    "lr": (lambda v: v > 0, "a number > 0"),
    "embed_dim": (lambda v: v >= 8, "an integer >= 8"),
    "code_dim": (lambda v: v >= 1, "an integer >= 1"),
    "kl": (lambda v: v >= 0, "a number >= 0"),
    "mismatch": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "match": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "hard": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "swapped": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
}


@config_section("text", TEXT_CHECKS)
@dataclass
class TextConfig:
    """Text-to-image (recipes/text2image.py): sentence and image encoders, then a text-conditioned GAN."""

    pretrain: int = 1500  # steps aligning the encoders (CLIP-style) before the GAN stage (part of `steps`)
    lr: float = 1e-3  # the encoders' learning rate in the alignment stage
    embed_dim: int = 64  # the shared text-image embedding
    code_dim: int = 32  # conditioning augmentation: the text code G sees
    kl: float = 1.0  # weight of conditioning augmentation's KL term (StackGAN)
    mismatch: float = 0.5  # share of D's negatives that are real images with another image's caption (GAN-CLS)
    hard: int = 0  # alignment: hard negatives per caption, the caption with a word swapped (text.WordSwaps)
    swapped: float = 0.0  # share of D's mismatched captions that are the image's own with a word swapped
    match: float = 0.0  # weight of G's image-text matching loss through the frozen encoders (AttnGAN's DAMSM)
    encoder: str = ""  # a text2image RUN whose aligned encoders to start from (word by word); with pretrain=0, as is

GRID_PROMPTS = 8


@RECIPES.register("text2image")
class TextToImage(GANRecipe):
    """Text-to-image: a sentence encoder aligned CLIP-style with an image encoder, then a matching-aware GAN."""
    texts: ClassVar[bool] = True
    default_data: ClassVar[str | None] = "shapes"
    default_for: ClassVar[tuple[str, ...]] = ("shapes", "captions")

    def __post_init__(self) -> None:
        if not self.data.captioned:
            raise ConfigError(f"recipe text2image needs captioned data; {self.data.name!r} has no captions "
                              "(use shapes, or captions:DIR for a folder of images with captions)")
        cfg = self.cfg
        if cfg.augment:
            raise ConfigError(f"augment={cfg.augment!r} is not allowed with text2image: flips and shifts change "
                              "what a caption says (left of, above); set augment to ''")
        if cfg.reg.n_critic != 1 or cfg.reg.gp or cfg.reg.r2 or cfg.reg.pack > 1 or \
                cfg.reg.unroll or cfg.reg.info or cfg.net.z_discrete:
            raise ConfigError("text2image takes reg.r1 (and reg.lazy_every) among the regularizers; n_critic, gp, r2, "
                              "pack, unroll, info and net.z_discrete are for the image-only recipes")
        if self.data.kind != "image":
            raise ConfigError("text2image draws images; the data must be images with captions")
        self.vocab = Vocabulary(self.data.vocab)
        super().__post_init__()
        if self.loss.g_uses_real:
            raise ConfigError(f"loss={cfg.loss} (relativistic) is not supported by text2image; use "
                              "non_saturating, hinge, lsgan or wgan")
        if cfg.text.encoder:
            load_encoders(self.nets["G"], self.vocab, tuple(self.data.shape), cfg.text.encoder)
        self._examples = self.vocab.encode(self.data.prompts)  # prompts when none are given: the data's captions
        self._grid = self._examples[:GRID_PROMPTS]  # training grids: one column per caption

    def build_nets(self) -> dict[str, nn.Module]:
        c, r, _ = self.data.shape
        n, t = self.cfg.net, self.cfg.text
        G = TextToImageGenerator(len(self.vocab), r, c, n.z_dim, t.embed_dim, t.code_dim, n.generator_width,
                                 n.max_channels, n.upsample)
        return {"G": G, "D": TextDiscriminator(r, c, t.embed_dim, n.width, n.max_channels, self.cfg.reg.mbstd)}

    def fit_data(self, data: Dataset) -> None:
        """Which words of the training captions may be swapped for which (hard negatives; text.WordSwaps)."""
        self.swaps = WordSwaps.of(caption_tokens(data.captions, self.vocab), len(self.vocab))

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o, t, G = self.cfg.optim, self.cfg.text, self.nets["G"]
        self.optimizers = {
            "G": torch.optim.Adam([{"params": G.encoder_parameters(), "lr": t.lr, "betas": (0.9, 0.999)},
                                   {"params": G.generator_parameters(), "lr": o.lr_g, "betas": (o.beta1, o.beta2)}],
                                  foreach=True),
            "D": torch.optim.Adam(self.nets["D"].parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), foreach=True),
        }
        return self.optimizers

    def check_steps(self, steps: int) -> None:
        k = self.cfg.text.pretrain
        if steps <= k:
            raise ConfigError(f"steps={steps} ends inside the text-alignment stage (text.pretrain={k}): the image "
                              f"generator would never train; give --steps more than {k}, or a shorter stage with "
                              f"--set text.pretrain=N (N < {steps}; 0 with --set text.encoder=RUN)")

    def phases(self) -> list[Phase]:
        k = self.cfg.text.pretrain

        def gan(step: int) -> bool:
            return step >= k

        lazy = self.cfg.reg.lazy_every
        phases = [Phase("align", self.align_step, updates="G", active=lambda step: step < k),
                  Phase("D", self.d_step, updates="D", grads=("D", "G"), active=gan)]
        if lazy > 1 and self.cfg.reg.r1:
            phases.append(Phase("Dreg", self.d_reg_step, updates="D", every=lazy, active=gan))
        return [*phases, Phase("G", self.g_step, updates="G", active=gan)]

    # ------------------------------------------------------------------ captions
    def pick_captions(self, ctx: StepContext, tokens: Tensor) -> Tensor:
        """One of each image's captions ``[N, K, L]`` -> ``[N, L]``, drawn afresh every step."""
        k = ctx.local(torch.randint(tokens.shape[1], (len(tokens) * ctx.world_size,), generator=ctx.gen,
                                    device=ctx.gen.device))
        return tokens[torch.arange(len(tokens), device=tokens.device), k]

    def prompt_tokens(self, n: int, prompts: str | list[str] | Tensor | None, gen: torch.Generator | None,
                      device: torch.device) -> Tensor:
        """Token ids ``[n, L]``: of one prompt for all n, of k prompts in turn (each for n/k images in a row),
        given ids as they are, or the data's example captions at random when None."""
        if torch.is_tensor(prompts):
            if prompts.dim() != 2 or len(prompts) != n:
                raise GanforgeError(f"token ids of shape {tuple(prompts.shape)} are not allowed; expected [{n}, L]")
            return prompts.to(device).long()
        if isinstance(prompts, int):
            raise GanforgeError("this text2image generator draws captions: give --prompt \"...\", not --label")
        if prompts is None:
            pick = torch.randint(len(self._examples), (n,), generator=gen, device=gen.device if gen else "cpu")
            return self._examples.to(device)[pick.to(device)]
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        tokens = self.vocab.encode(prompts).to(device)
        per = -(-n // len(prompts))
        return tokens.repeat_interleave(per, 0)[:n]

    # ------------------------------------------------------------------ sampling
    def latent(self, n: int, gen: torch.Generator | None, device: torch.device,
               truncation: float | None = None) -> Tensor:
        return truncated_normal((n, self.cfg.net.z_dim), truncation, gen, device)

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None,
                 truncation: float | None = None) -> Tensor:
        if labels is None:  # the training grid: the data's example captions, in turn
            labels = self._grid.to(z.device).repeat(-(-len(z) // len(self._grid)), 1)[: len(z)]
        return G(z, labels)

    def pictures(self, G: nn.Module, pics: PictureInputs) -> list[Picture]:
        """The sample grid and, for data whose pictures a parser reads (``shapes``), the data's fixed example prompts,
        seen and held out, each picture with what the parser reads in it (``-prompts``)."""
        out = super().pictures(G, pics)
        examples = pics.data.info.get("prompt_examples")
        if examples:
            from ..metrics.scenes import describe, parse
            from ..runs.visuals import captioned_sheet

            prompts = [(kind, p) for kind, ps in examples.items() for p in ps]
            z = self.latent(len(prompts), torch.Generator(pics.device).manual_seed(pics.seed), pics.device)
            tokens = self.prompt_tokens(len(prompts), [p for _, p in prompts], None, pics.device)
            images = pics.data.from_model(self.generate(G, z, tokens).float()).cpu()
            captions = [f'{kind}: "{p}"\nreads: {describe(parse(x))}' for (kind, p), x in zip(prompts, images)]
            out.append(Picture(captioned_sheet(images, captions)[None], 1, "-prompts"))
        return out

    # ------------------------------------------------------------------ phases
    def measure(self, G: nn.Module, data: RunData, names: list[str], n: int, seed: int, *,
                draw_seed: int | None = None, features: str | None = None, inception_weights: str | None = None,
                shards: Shards | None = None) -> dict | None:
        """The image measures of every sampler, and whether the picture shows what the caption says, for seen
        and held-out captions (:mod:`ganforge.metrics.text2image`)."""
        from ..metrics.text2image import text_metrics

        result = super().measure(G, data, names, n, seed, draw_seed=draw_seed, features=features,
                                 inception_weights=inception_weights, shards=shards)
        if result is not None:
            result.update(text_metrics(self, G, {"seen": data.train, "held_out": data.held_out()}, min(n, 500), seed))
        return result

    def swapped_captions(self, ctx: StepContext, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Captions ``[N, L]`` with a word swapped (text.WordSwaps), drawn from the run's generator, and whether
        each is plausible (made of word pairs the training captions use): only those serve as negatives."""
        def uniform(*shape: int) -> Tensor:
            return ctx.local(torch.rand((shape[0] * ctx.world_size, *shape[1:]), generator=ctx.gen,
                                        device=ctx.gen.device)).to(tokens.device)

        swapped = self.swaps.swap(tokens, uniform)
        return swapped, self.swaps.plausible(swapped) & (swapped != tokens).any(1)

    def align_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        G, hard = self.nets["G"], self.cfg.text.hard
        real, tokens = ctx.real()
        captions = self.pick_captions(ctx, tokens)
        negatives, usable = zip(*[self.swapped_captions(ctx, captions) for _ in range(hard)]) if hard else ((), ())
        texts = G.text(torch.cat([captions, *negatives]))
        loss, acc = contrastive_loss(G.image(real), texts[: len(real)], G.logit_scale,
                                     texts[len(real):].view(hard, len(real), -1) if hard else None,
                                     torch.stack(usable) if hard else None)
        return loss, {"Loss/align": loss.detach(), "align/accuracy": acc.detach()}

    def d_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        G, D, t = self.nets["G"], self.nets["D"], self.cfg.text
        real, tokens = ctx.real()
        captions = self.pick_captions(ctx, tokens)
        with torch.no_grad():
            e = G.text(captions)  # frozen after the alignment stage
        noise = ctx.local(ctx.noise((len(real) * ctx.world_size, G.code_dim)))
        code, mu, logvar = G.code(e, noise)
        fake = G.synthesize(self.train_latent(ctx, len(real)), code)
        ctx.cache.update(fake=fake, e=e, mu=mu, logvar=logvar)
        real_logits, fake_logits = D(real, e), D(fake.detach(), e)
        wrong = e.roll(1, 0)  # each real picture with its neighbour's caption, or its own with a word swapped
        if t.swapped:
            swapped, usable = self.swapped_captions(ctx, captions)
            with torch.no_grad():
                e_swapped = G.text(swapped)
            pick = ctx.local(torch.rand(len(real) * ctx.world_size, generator=ctx.gen, device=ctx.gen.device))
            wrong = torch.where(((pick.to(e.device) < t.swapped) & usable)[:, None], e_swapped, wrong)
        wrong_logits = D(real, wrong)
        loss = (1 - t.mismatch) * self.loss.d(real_logits, fake_logits) + t.mismatch * self.loss.d(real_logits,
                                                                                                    wrong_logits)
        b = self.loss.boundary
        stats = {"Loss/D": loss.detach(), "D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean(),
                 "D/mismatched": wrong_logits.detach().mean(),
                 "D/accuracy": 0.5 * ((real_logits > b).float().mean() + (fake_logits < b).float().mean()).detach()}
        if self.cfg.reg.r1 and self.cfg.reg.lazy_every == 1:
            loss = loss + self.r1(D, real, e, 1, stats)
        return loss, stats

    def d_reg_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        """R1 alone every ``reg.lazy_every`` steps, its weight scaled by the interval (lazy regularization)."""
        real, tokens = ctx.real()
        with torch.no_grad():
            e = self.nets["G"].text(self.pick_captions(ctx, tokens))
        stats: Stats = {}
        return self.r1(self.nets["D"], real, e, self.cfg.reg.lazy_every, stats), stats

    def r1(self, D: nn.Module, real: Tensor, e: Tensor, scale: int, stats: Stats) -> Tensor:
        """R1 on real pictures with their own captions (DF-GAN's matching-aware gradient penalty, image side)."""
        r1 = r1_penalty(lambda x: D(x, e), real)
        stats["Loss/D/r1"] = r1.detach()
        return self.cfg.reg.r1 / 2 * scale * r1

    def g_step(self, ctx: StepContext) -> tuple[Tensor, Stats]:
        fake, e, mu, logvar = (ctx.cache.pop(k) for k in ("fake", "e", "mu", "logvar"))
        t = self.cfg.text
        adv = self.loss.g(self.nets["D"](fake, e))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        loss, stats = adv + t.kl * kl, {"Loss/G": adv.detach(), "Loss/G/kl": kl.detach()}
        if t.match:
            match, acc = self.matching_loss(fake, e)
            loss = loss + t.match * match
            stats.update({"Loss/G/match": match.detach(), "G/match_accuracy": acc.detach()})
        return loss, stats

    def matching_loss(self, fake: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """AttnGAN's DAMSM idea with the aligned encoders: each picture should retrieve its own caption among the
        batch's. The image encoder is used with detached weights: the gradient moves G's pictures, not it."""
        G = self.nets["G"]
        frozen = {k: v.detach() for k, v in G.image.named_parameters()}
        image = functional_call(G.image, {**frozen, **dict(G.image.named_buffers())}, (fake,))
        return contrastive_loss(image, e, G.logit_scale.detach())


def load_encoders(G: nn.Module, vocab: Vocabulary, shape: tuple[int, ...], run: str) -> None:
    """Start G's sentence and image encoders from another text2image run's (its EMA weights): every word of
    ``vocab`` takes that run's embedding of the same word, so vocabularies may differ in order and extent,
    but each word here must be known there."""
    from ..runs import checkpoint as ck
    from ..runs.rundir import read_run

    run_dir, cfg, spec = read_run(run)
    if cfg.recipe != "text2image":
        raise ConfigError(f"text.encoder={run!r} is a {cfg.recipe} run; expected a text2image run")
    if cfg.text.embed_dim != G.text.out.out_features or tuple(spec.shape) != shape:
        raise ConfigError(f"text.encoder={run!r} has embed_dim {cfg.text.embed_dim} and images {list(spec.shape)}; "
                          f"this run needs embed_dim {G.text.out.out_features} and images {list(shape)}")
    theirs = Vocabulary(spec.vocab)
    unknown = [w for w in vocab.words[1:] if w not in theirs.index]
    if unknown:
        raise ConfigError(f"text.encoder={run!r} does not know {len(unknown)} word(s) of this data: "
                          f"{', '.join(unknown[:10])}")
    nets = ck.split_weights(ck.load_weights(ck.latest_checkpoint(run_dir)))
    weights = nets.get("G_ema") or nets["G"]
    with torch.no_grad():
        for prefix, module in (("text.", G.text), ("image.", G.image)):
            own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
            if prefix == "text.":
                rows = torch.tensor([theirs.index[w] for w in vocab.words])
                own["embed.weight"] = own["embed.weight"][rows]
            module.load_state_dict(own)
        G.logit_scale.copy_(weights["logit_scale"])
