"""What ``ganforge.load(run)`` returns: one pipeline class per kind of use after training.

A recipe names its pipeline (``Recipe.pipeline``); everything that uses a trained run - ``sample``,
``translate``, ``upscale``, ``serve``, the demo page, ``export`` and the model card - asks the pipeline
(its ``kind``, ``describe()``, ``export_graph()``) instead of branching on the recipe's name:

* :class:`Generator` (``sampler``): noise (and a label or a prompt) in, samples out;
* :class:`Translator` (``translator``): an image of one domain in, the other domain out;
* :class:`Upscaler` (``upscaler``): a low-resolution image in, a ``scale`` x larger one out.

A new kind of method (video, say) adds its pipeline class here or in a module of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn

from ..data import DataSpec
from ..errors import GanforgeError
from . import Recipe, control, drawing, inversion
from . import directions as found_directions


@dataclass
class ExportGraph:
    """What ``ganforge export`` writes for a pipeline: the module, its inputs and their contract."""

    net: nn.Module
    example: tuple[torch.Tensor, ...]  # inputs the file is traced with
    probe: tuple[torch.Tensor, ...]  # inputs of other sizes that check the dynamic axes and parity
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]
    contract: dict[str, Any]


class Pipeline:
    """A trained network with its recipe and data spec, ready to use."""

    kind: ClassVar[str] = ""
    route: ClassVar[str] = ""  # the HTTP route ``ganforge serve`` answers for this kind
    does: ClassVar[str] = ""  # what it does, for messages: "samples from noise"
    command: ClassVar[str] = ""  # the CLI command that uses it
    label: ClassVar[str] = ""  # "a {label} run"
    intended: ClassVar[str] = ""  # the model card's intended use ({fields} filled by the recipe)
    caveats: ClassVar[tuple[str, ...]] = ()  # the model card's limitations particular to this kind
    pictures: ClassVar[str] = ""  # what a run's training pictures show (report headings)
    example: ClassVar[str] = ""  # how to use a run of this kind: "{run}" is the run directory

    def __init__(self, recipe: Recipe, net: nn.Module, spec: DataSpec, run_dir: Path) -> None:
        self.recipe, self.net, self.spec, self.run_dir = recipe, net.eval(), spec, run_dir

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> Pipeline:
        self.net.to(device)
        return self

    def describe(self) -> dict[str, Any]:
        """What ``GET /info`` and the demo page say about this pipeline beyond the run's identity."""
        return {}

    def export_graph(self, direction: str = "AtoB", truncation: float | None = None,
                     blend: float = 1.0) -> ExportGraph:
        raise NotImplementedError

    def refuse(self, wanted: type[Pipeline], run_dir: Path | str) -> None:
        """One-line refusal when a command for another kind of pipeline gets this run."""
        if self.kind != wanted.kind:
            files = " --input PATH --out PATH" if self.command in ("translate", "upscale") else " --out PATH"
            raise GanforgeError(f"{run_dir} is a {self.recipe.cfg.recipe} run, not a {wanted.label} run: it "
                                f"{self.does}; use ganforge {self.command} {run_dir}{files}")


class SampleNet(nn.Module):
    """z [, labels] -> samples in data space, with a fixed truncation (the exported sampler)."""

    def __init__(self, recipe, G: nn.Module, spec, truncation: float | None) -> None:
        super().__init__()
        self.recipe, self.G, self.spec, self.truncation = recipe, G, spec, truncation

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.spec.from_model(self.recipe.generate(self.G, z, labels, self.truncation).float())


class ImageNet(nn.Module):
    """images in [0, 1] -> the recipe's translation (one direction) or upscaling, in [0, 1]."""

    def __init__(self, recipe, G: nn.Module, direction: str) -> None:
        super().__init__()
        self.recipe, self.G, self.direction = recipe, G, direction

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return ((self.recipe.translate(self.G, images * 2 - 1, self.direction).float() + 1) / 2).clamp(0, 1)


def _no_truncation(truncation: float | None, what: str) -> None:
    if truncation is not None:
        raise GanforgeError(f"--truncation is for samplers; {what} takes images")


class Generator(Pipeline):
    """A trained generator, ready to sample: ``ganforge.load(run_dir).sample(16)``."""

    kind, route, does, command, label = "sampler", "/generate", "samples from noise", "sample", "sampling"
    pictures = "Samples (fixed latents)"
    example = "sample with `ganforge sample {run} --n 64 --out grid.png`"
    intended = ("drawing new samples like the training data: research and teaching on generative models, synthetic "
                "data for augmentation (measure it on held-out real data before relying on it), latent-space "
                "exploration")

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes if self.recipe.conditional else 0

    def with_sampler(self, sampler: str | None = None, steps: int | None = None) -> Generator:
        """Diffusion runs: sample with ``sampler`` (one of the recipe's ``samplers``) in ``steps`` denoising
        steps from now on; one-pass generators refuse any choice. Returns self."""
        self.recipe.set_sampler(sampler, steps)
        return self

    def with_frames(self, frames: int | None) -> Generator:
        """Video runs draw clips ``frames`` long; other samplers refuse any length."""
        if frames is not None:
            raise GanforgeError(f"--frames is for video runs; a {self.recipe.cfg.recipe} run draws single images")
        return self

    def sample(self, n: int, seed: int | None = None, labels: torch.Tensor | int | None = None,
               truncation: float | None = None, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples in data space: images [n, C, H, W] in [0, 1] or points [n, D].

        ``seed`` makes the draw reproducible; ``labels`` (an int or [n] tensor) picks classes
        for conditional generators, which otherwise draw classes uniformly. Text-to-image generators
        take a prompt (or a list of prompts, each for n/k images in turn) as ``labels``.
        """
        return drawing.sample(self.recipe, self.net, self.spec, n, seed, labels, truncation, batch_size)

    def synthesize(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 500) -> torch.Tensor:
        """Samples in data space from given latents (for interpolation and latent exploration)."""
        return drawing.synthesize(self.recipe, self.net, self.spec, z, labels, batch_size)

    def draw(self, n: int, seed: int, label: torch.Tensor | int | None = None,
             truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples and the labels they were drawn for (None when unconditional)."""
        return drawing.draw(self.recipe, self.net, self.spec, n, seed, label, truncation)

    def w(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None) -> torch.Tensor:
        """A style-based generator's intermediate latents [N, w_dim] for z [N, z_dim] (truncated towards the mean w)."""
        return control.w_of(self.recipe, self.net, z.to(self.device), None if labels is None else
                            labels.to(self.device), truncation)

    def mix(self, row_seeds: list[int], col_seeds: list[int], layers: str | None = None,
            truncation: float | None = None, label: int | None = None) -> torch.Tensor:
        """The style-mixing grid ``[(R + 1) * (C + 1), C, H, W]`` (see :func:`ganforge.inference.control.style_mix`)."""
        return control.style_mix(self.recipe, self.net, self.spec, row_seeds, col_seeds, layers, truncation, label)

    def interpolate(self, seeds: list[int], frames: int = 16, truncation: float | None = None,
                    label: int | None = None) -> torch.Tensor:
        """A latent walk through ``seeds``: ``[(len(seeds) - 1) * frames + 1, C, H, W]`` in [0, 1]."""
        return control.interpolate(self.recipe, self.net, self.spec, seeds, frames, truncation, label)

    def text_walk(self, prompts: list[str], frames: int = 16, seed: int = 0,
                  truncation: float | None = None) -> torch.Tensor:
        """Prompt-conditioned runs: a walk between prompts' sentence embeddings at one latent,
        ``[(len(prompts) - 1) * frames + 1, C, H, W]`` in [0, 1]."""
        return control.text_walk(self.recipe, self.net, self.spec, prompts, frames, seed, truncation)

    # ------------------------------------------------------------ projection and editing
    def project(self, images: Any, space: str | None = None, steps: int = inversion.DEFAULT_STEPS,
                pixel: float = 0.0, noise: bool = True, seed: int = 0, frames: int = 16, progress=None,
                init: str = "mean") -> inversion.Projection | list[inversion.Projection]:
        """Project real images into the latent space (:mod:`ganforge.inference.inversion`): ``images`` as
        :meth:`fit_images` takes them. ``init="encoder"`` starts from a learned encoder's guess (trained
        on the generator's samples once, kept in the run directory). Returns a
        :class:`~ganforge.inference.inversion.Projection` (its ``latent``, ``image``, ``walk``, ``psnr`` ...)
        per image; one for one image."""
        fitted = self.fit_images(images)
        found = inversion.project(self.recipe, self.net, self.spec, fitted, space, steps, pixel, noise, seed, frames,
                                  progress=progress, init=init, run_dir=self.run_dir)
        single = not isinstance(images, (list, tuple)) and not (torch.is_tensor(images) and images.dim() == 4)
        return found[0] if single else found

    def fit_images(self, images: Any) -> torch.Tensor:
        """Images (a tensor [C, H, W] / [N, C, H, W] in [0, 1], a PIL image, an array, or a list of them, any
        sizes and channel counts) -> [N, C, R, R] at this generator's size and channels (centred square crop)."""
        from ..data.images import square
        from .tiling import as_tensor, prepare

        items = [img for item in images for img in as_tensor(item)] if isinstance(images, (list, tuple)) \
            else list(as_tensor(images))
        c, side = self.spec.shape[0], self.spec.shape[-1]
        return torch.stack([square(prepare(img, c), side) for img in items])

    def directions(self, seed: int = 0) -> list[found_directions.Direction]:
        """Class directions (where labels exist) and principal directions of the latent space
        (:mod:`ganforge.inference.directions`); the same for the same seed."""
        cached = getattr(self, "_directions", {})
        if seed not in cached:
            self._directions = cached = {seed: found_directions.find_directions(self.recipe, self.net, self.spec, seed)}
        return cached[seed]

    def seed_latent(self, seed: int, label: int | None = None) -> inversion.Projection:
        """The latent of ``sample --seed S --n 1`` in the space edits move in (w, or z), as a projection
        of itself: ``edit(ganforge.load(run).seed_latent(7), "pc0")`` edits that sample."""
        space = "w" if self.recipe.has_styles else "z"
        inversion.check_projectable(self.recipe, self.spec, space)
        z, labels = drawing.latents(self.recipe, self.spec, 1, seed, label, None, self.device)
        code = self.recipe.one_hot_code
        if space == "w":
            latent, cls = self.net.w(z, labels if self.recipe.conditional else None), labels
        else:
            latent, cls = z[:, code:], z[:, :code].argmax(1) if code else labels
        image = self.synthesize(z, labels)[0]
        return inversion.Projection(space, latent[0].detach().cpu() if space == "z" else latent.detach().cpu(),
                                    None if cls is None else int(cls[0]), None, image, image, image[None], float("inf"),
                                    0.0)

    def render(self, latents: torch.Tensor, space: str, label: int | None = None,
               noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Images [B, C, H, W] in [0, 1] of latents ``[B, ...]`` of ``space`` (w, w+ or z), with the class
        or categorical code ``label`` and a projection's noise maps where it has them."""
        inversion.check_projectable(self.recipe, self.spec, space)
        b, dev = len(latents), self.device
        labels = None if label is None else torch.full((b,), int(label), device=dev, dtype=torch.long)
        maps = None if noise is None else [m.to(dev).expand(b, -1, -1, -1) for m in noise]
        with torch.no_grad():
            x = inversion.render(self.recipe, self.net, space, latents.to(dev), labels, maps)
        return self.spec.from_model(x.float()).cpu()

    def edit(self, start: inversion.Projection, direction: str | found_directions.Direction, strengths: list[float],
             layers: str | None = None) -> torch.Tensor:
        """``start`` (a projection, or :meth:`seed_latent`) moved along a direction (one of :meth:`directions`,
        or its name) by each strength (in the direction's ``unit``): images [S, C, H, W] in [0, 1]."""
        d = direction if isinstance(direction, found_directions.Direction) else \
            found_directions.direction_named(self.directions(), direction)
        if (start.space == "z") != (d.space == "z"):
            raise GanforgeError(f"a latent in {start.space} cannot move along a direction in {d.space}; project with "
                                f"--space {d.space}")
        latent = start.latent if start.space == "z" else start.latent.view(-1, start.latent.shape[-1])
        moved = found_directions.edit_latents(self.net, latent, d, strengths, layers=layers)
        space = "z" if start.space == "z" else "w+" if moved.shape[1] > 1 else "w"
        return self.render(moved, space, start.label, start.noise)

    def labels_for(self, n: int, labels: torch.Tensor | int | None, gen: torch.Generator) -> torch.Tensor | None:
        """The labels a draw of ``n`` will use: as given, or uniform over classes; None if unconditional."""
        return drawing.labels_for(self.recipe, self.spec, n, labels, gen, self.device)

    def truncation_kind(self) -> str | None:
        """How the demo offers truncation: psi in [0, 1] in w (style-based), in z (> 0), None where it does not
        apply."""
        if self.recipe.sampler_name is not None or self.spec.kind != "image":
            return None
        return "w" if self.recipe.has_styles else "z"

    def describe(self) -> dict[str, Any]:
        return {"classes": list(self.spec.class_names) if self.num_classes else [],
                "truncation": self.truncation_kind(), "sampler": self.recipe.sampler_name,
                "prompts": self.recipe.texts}

    def export_graph(self, direction: str = "AtoB", truncation: float | None = None,
                     blend: float = 1.0) -> ExportGraph:
        r, spec = self.recipe, self.spec
        net = SampleNet(r, self.net, spec, truncation).eval()
        z = r.latent(2, torch.Generator().manual_seed(0), torch.device("cpu"))
        z_desc = {"name": "z", "dtype": "float32", "shape": ["N", *z.shape[1:]], "distribution": "standard normal"}
        k = r.one_hot_code
        if k:
            z_desc.update(distribution=f"the first {k} values one-hot (a categorical code), the rest standard normal",
                          one_hot=k)
        inputs, example, axes = [z_desc], [z], {"z": {0: "N"}}
        gen = torch.Generator().manual_seed(1)
        probe = [torch.randn(5, *z.shape[1:], generator=gen)]
        if k:
            probe[0][:, :k] = torch.nn.functional.one_hot(torch.arange(5) % k, k).float()
        if r.conditional:
            names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
            inputs.append({"name": "labels", "dtype": "int64", "shape": ["N"], "values": f"0..{spec.num_classes - 1}",
                           "class_names": names})
            example.append(torch.arange(2) % spec.num_classes)
            probe.append(torch.randint(spec.num_classes, (5,), generator=gen))
            axes["labels"] = {0: "N"}
        axes["samples"] = {0: "N"}
        contract = {"kind": self.kind, "truncation": truncation, "inputs": inputs,
                    "outputs": [{"name": "samples", "dtype": "float32", "shape": ["N", *spec.shape],
                                 "range": [0, 1] if spec.kind == "image" else "data units"}]}
        return ExportGraph(net, tuple(example), tuple(probe), [d["name"] for d in inputs], ["samples"], axes, contract)


class Translator(Pipeline):
    """A trained image-to-image model: ``ganforge.load(run_dir).translate(image)``."""

    kind, route, does, command, label = "translator", "/translate", "translates images", "translate", "translation"
    pictures = "Translations of fixed training inputs (input | output | target or reconstruction)"
    example = "translate with `ganforge translate {run} --input IMAGE_OR_FOLDER --out OUT.png`"
    intended = ("translating images of the source domain into the target domain at the trained resolution, "
                "for research and teaching")

    @property
    def directions(self) -> tuple[str, ...]:
        return self.recipe.directions

    def direction(self, asked: str | None = None) -> str:
        """``asked``, or by default the run's first direction (AtoB for two-way translators)."""
        return self.directions[0] if asked is None else asked

    def translate(self, x: Any, direction: str | None = None, fit: str | None = None) -> torch.Tensor:
        """Images of the source domain -> the other domain, in [0, 1]; ``direction`` AtoB or BtoA (default: the
        run's first, AtoB for two-way translators).

        ``x``: a tensor [C, H, W] or [N, C, H, W] in [0, 1], a PIL image, or a numpy array [H, W] /
        [H, W, C] (uint8, uint16 or float in [0, 1]); any channel count and size. ``fit``: ``resize``
        (to the trained size) or ``tile`` (at the image's own scale); default by how the model was
        trained (:mod:`ganforge.inference.tiling`). Returns [C', H', W'] for one image, [N, ...] for a batch.
        """
        from .tiling import as_tensor, translate_images

        batch = as_tensor(x)
        out = translate_images(self.recipe, self.net, self.spec, list(batch), self.direction(direction), fit)
        return torch.stack(out) if torch.is_tensor(x) and x.dim() == 4 else out[0]

    def describe(self) -> dict[str, Any]:
        return {"directions": list(self.directions)}

    def export_graph(self, direction: str = "AtoB", truncation: float | None = None,
                     blend: float = 1.0) -> ExportGraph:
        from .tiling import source_channels

        _no_truncation(truncation, "a translator")
        self.recipe.check_direction(direction)
        spec = self.spec
        c, side = source_channels(spec, direction), spec.shape[-1]
        out_c = (spec.shape_b if direction == "AtoB" else spec.shape)[0]
        contract = {"kind": self.kind, "direction": direction,
                    "inputs": [{"name": "images", "dtype": "float32", "shape": ["N", c, side, side], "range": [0, 1]}],
                    "outputs": [{"name": "translated", "dtype": "float32", "shape": ["N", out_c, side, side],
                                 "range": [0, 1]}]}
        probe = (torch.rand(5, c, side, side, generator=torch.Generator().manual_seed(1)),)
        return ExportGraph(ImageNet(self.recipe, self.net, direction).eval(), (torch.rand(2, c, side, side),), probe,
                           ["images"], ["translated"], {"images": {0: "N"}, "translated": {0: "N"}}, contract)


class Upscaler(Pipeline):
    """A trained super-resolution model: ``ganforge.load(run_dir).upscale(image)``."""

    kind, route, does, command, label = "upscaler", "/upscale", "upscales images", "upscale", "super-resolution"
    pictures = "Upscaled training patches (bicubic | model | original)"
    example = "upscale with `ganforge upscale {run} --input photo.jpg --out big.png`"
    intended = "enlarging photographs with plausible detail (x{scale}); use --blend 0 where fidelity matters more " \
               "than sharpness"
    caveats = ("The GAN stage invents plausible texture that was not in the input: never use upscaled images as "
               "evidence (forensics, medicine, identification).",)

    def __init__(self, recipe: Recipe, net: nn.Module, spec: DataSpec, run_dir: Path,
                 fidelity_net: nn.Module | None = None) -> None:
        super().__init__(recipe, net, spec, run_dir)
        self.psnr_net = (fidelity_net or net).eval()  # blend 0: the fidelity-oriented weights
        self._blends: dict[float, nn.Module] = {}

    @property
    def scale(self) -> int:
        return self.recipe.scale

    def to(self, device: str | torch.device) -> Upscaler:
        self.net.to(device)
        self.psnr_net.to(device)
        self._blends.clear()
        return self

    def network(self, blend: float = 1.0) -> nn.Module:
        """The generator for ``blend``: 0 the PSNR-oriented one, 1 the GAN one, between their interpolation."""
        from .upscaling import blended

        if blend not in self._blends:
            self._blends = {blend: blended(self.psnr_net, self.net, float(blend)).eval()}
        return self._blends[blend]

    def upscale(self, x: Any, blend: float = 1.0, tile: int = 256) -> Any:
        """An image ``scale`` x larger: a PIL image (any mode; the same mode back), or a tensor [C, H, W] /
        [N, C, H, W] in [0, 1] (1-4 channels; RGB [3, sH, sW] back, alpha composited on black)."""
        import numpy as np
        from PIL import Image

        from .tiling import as_tensor, prepare
        from .upscaling import upscale_pil, upscale_tiled

        G = self.network(blend)
        if isinstance(x, Image.Image):
            return upscale_pil(G, self.scale, x, tile)
        if not torch.is_tensor(x) and not isinstance(x, np.ndarray):
            raise GanforgeError(f"cannot upscale a {type(x).__name__}; expected a PIL image, a tensor or an array")
        batch = as_tensor(x)
        outs = []
        for img in batch:
            rgb = prepare(img, 3)
            out = torch.empty(rgb.shape[1] * self.scale, rgb.shape[2] * self.scale, 3)
            upscale_tiled(G, self.scale, rgb, out, tile)
            outs.append(out.permute(2, 0, 1))
        return torch.stack(outs) if torch.is_tensor(x) and x.dim() == 4 else outs[0]

    def describe(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def export_graph(self, direction: str = "AtoB", truncation: float | None = None,
                     blend: float = 1.0) -> ExportGraph:
        _no_truncation(truncation, "an upscaler")
        s = self.scale
        contract = {"kind": self.kind, "scale": s, "blend": blend,
                    "inputs": [{"name": "images", "dtype": "float32", "shape": ["N", 3, "H", "W"], "range": [0, 1],
                                "notes": "RGB; grey or RGBA images: repeat or drop channels first"}],
                    "outputs": [{"name": "upscaled", "dtype": "float32", "shape": ["N", 3, f"{s}*H", f"{s}*W"],
                                 "range": [0, 1]}]}
        axes = {"images": {0: "N", 2: "H", 3: "W"}, "upscaled": {0: "N", 2: "sH", 3: "sW"}}
        probe = (torch.rand(5, 3, 17, 30, generator=torch.Generator().manual_seed(1)),)
        return ExportGraph(ImageNet(self.recipe, self.network(blend), "AtoB").eval(), (torch.rand(2, 3, 24, 20),),
                           probe, ["images"], ["upscaled"], axes, contract)
