"""``ganforge export``: a run's (EMA) generator as one ONNX or TorchScript file, and its contract.

The file takes what the generator needs and gives images in [0, 1], so it runs without ganforge:

- samplers (vanilla, DCGAN, conditional, StyleGAN2, VAE decoder): ``z`` float32 [N, Z] drawn from
  N(0, 1) (an InfoGAN-style one-hot code first when the run has one), and for conditional runs
  ``labels`` int64 [N] -> ``images`` float32 [N, C, H, W] (points [N, D] for 2D runs);
- translators (pix2pix, CycleGAN): ``images`` float32 [N, C, H, W] in [0, 1] at the trained size,
  one direction per file -> ``translated`` [N, C', H, W];
- upscalers (SRGAN, ESRGAN): ``images`` [N, 3, H, W] in [0, 1], any H and W -> ``upscaled``
  [N, 3, sH, sW], at the chosen ``--blend``.

The batch axis is dynamic (and H, W for upscalers). ``FILE.onnx.json`` (or ``FILE.pt.json``) beside the file states the
contract (names, shapes, value ranges, labels, truncation) with a usage snippet; the export is
checked against PyTorch on random inputs (onnxruntime for ONNX) before it is kept.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .errors import GanforgeError
from .io import atomic_path, write_json

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARITY_TOLERANCE = 1e-4
OPSET = 18


class SampleNet(nn.Module):
    """z [, labels] -> samples in data space, with a fixed truncation."""

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


def refusal(model: Any) -> str | None:
    """Why a loaded run cannot be exported yet (None: it can)."""
    r = model.recipe
    if r.sampler_name is not None:
        return (f"a {r.cfg.recipe} run samples with {r.sampler_name}: one file would have to hold the network "
                "and its sampling loop, which export does not do yet; use ganforge sample, or export a one-pass "
                "generator (GAN, VAE)")
    return None


def build(model: Any, direction: str = "AtoB", truncation: float | None = None, blend: float = 1.0):
    """(module, example inputs, input names, output names, dynamic axes, contract) for a loaded run."""
    from .api import Translator, Upscaler

    why = refusal(model)
    if why:
        raise GanforgeError(f"cannot export: {why}")
    r, spec = model.recipe, model.spec
    if isinstance(model, Upscaler):
        if truncation is not None:
            raise GanforgeError("--truncation is for samplers; an upscaler takes images")
        net = ImageNet(r, model.network(blend), "AtoB").eval()
        example = (torch.rand(2, 3, 24, 20),)
        axes = {"images": {0: "N", 2: "H", 3: "W"}, "upscaled": {0: "N", 2: "sH", 3: "sW"}}
        contract = {"kind": "upscaler", "scale": model.scale, "blend": blend,
                    "inputs": [{"name": "images", "dtype": "float32", "shape": ["N", 3, "H", "W"], "range": [0, 1],
                                "notes": "RGB; grey or RGBA images: repeat or drop channels first"}],
                    "outputs": [{"name": "upscaled", "dtype": "float32",
                                 "shape": ["N", 3, f"{model.scale}*H", f"{model.scale}*W"], "range": [0, 1]}]}
        return net, example, ["images"], ["upscaled"], axes, contract
    if isinstance(model, Translator):
        if truncation is not None:
            raise GanforgeError("--truncation is for samplers; a translator takes images")
        r.check_direction(direction)
        from .translation import source_channels

        c, side = source_channels(spec, direction), spec.shape[-1]
        net = ImageNet(r, model.net, direction).eval()
        example = (torch.rand(2, c, side, side),)
        out_c = (spec.shape_b if direction == "AtoB" else spec.shape)[0]
        axes = {"images": {0: "N"}, "translated": {0: "N"}}
        contract = {"kind": "translator", "direction": direction,
                    "inputs": [{"name": "images", "dtype": "float32", "shape": ["N", c, side, side], "range": [0, 1]}],
                    "outputs": [{"name": "translated", "dtype": "float32", "shape": ["N", out_c, side, side],
                                 "range": [0, 1]}]}
        return net, example, ["images"], ["translated"], axes, contract
    net = SampleNet(r, model.net, spec, truncation).eval()
    gen = torch.Generator().manual_seed(0)
    z = r.latent(2, gen, torch.device("cpu"))
    z_desc = {"name": "z", "dtype": "float32", "shape": ["N", *z.shape[1:]], "distribution": "standard normal"}
    k = getattr(r.cfg.net, "z_discrete", 0) if r.cfg.recipe not in ("stylegan2", "vae") else 0
    if k:
        z_desc.update(distribution=f"the first {k} values one-hot (a categorical code), the rest standard normal",
                      one_hot=k)
    inputs, example, axes = [z_desc], [z], {"z": {0: "N"}}
    if r.conditional:
        names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
        inputs.append({"name": "labels", "dtype": "int64", "shape": ["N"], "values": f"0..{spec.num_classes - 1}",
                       "class_names": names})
        example.append(torch.arange(2) % spec.num_classes)
        axes["labels"] = {0: "N"}
    out_shape = ["N", *spec.shape]
    axes["samples"] = {0: "N"}
    contract = {"kind": "sampler", "truncation": truncation, "inputs": inputs,
                "outputs": [{"name": "samples", "dtype": "float32", "shape": out_shape,
                             "range": [0, 1] if spec.kind == "image" else "data units"}]}
    return net, tuple(example), [d["name"] for d in inputs], ["samples"], axes, contract


def usage(contract: dict, file: str) -> str:
    """Three lines that run the exported file with onnxruntime, without ganforge."""
    dims = ", ".join(str(s if isinstance(s, int) else 64) for s in contract["inputs"][0]["shape"][1:])
    feeds = {"z": f"np.random.randn(16, {dims}).astype('float32')", "labels": "np.full(16, 3, dtype='int64')",
             "images": f"np.random.rand(1, {dims}).astype('float32')"}
    args = ", ".join(f"'{d['name']}': {feeds[d['name']]}" for d in contract["inputs"])
    return (f"import numpy as np, onnxruntime as ort\nsess = ort.InferenceSession('{file}')\n"
            f"out = sess.run(None, {{{args}}})[0]  # {contract['outputs'][0]['shape']} in [0, 1]")


def _check(path: Path, fmt: str, net: nn.Module, inputs: tuple, names: list[str]) -> float:
    """Max |exported - PyTorch| on ``inputs`` (a batch size other than the export's, to test the dynamic axis)."""
    with torch.no_grad():
        want = net(*inputs).numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            got = torch.jit.load(str(path), map_location="cpu")(*inputs).detach().numpy()
    if got.shape != want.shape:
        raise GanforgeError(f"the exported file gives shape {got.shape} for a batch of {len(inputs[0])}, PyTorch "
                            f"{want.shape}; the export is not kept")
    return float(np.abs(got - want).max())


def probe_inputs(example: tuple, contract: dict) -> tuple:
    """Inputs of another batch size (and another image size for upscalers) than the export's example."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for x in example:
        if x.dtype == torch.int64:
            out.append(torch.randint(int(x.max()) + 1, (5,), generator=gen))
        elif contract["kind"] == "upscaler":
            out.append(torch.rand(5, 3, 17, 30, generator=gen))
        elif contract["kind"] == "sampler":
            out.append(torch.randn(5, *x.shape[1:], generator=gen))
        else:
            out.append(torch.rand(5, *x.shape[1:], generator=gen))
    k = contract["inputs"][0].get("one_hot", 0)
    if k:
        out[0][:, :k] = torch.nn.functional.one_hot(torch.arange(5) % k, k).float()
    return tuple(out)


def export(model: Any, fmt: str, target: Path, direction: str = "AtoB", truncation: float | None = None,
           blend: float = 1.0) -> dict:
    """Write the file and its contract (``target`` with ``.json``); returns the contract, parity included."""
    from .runs.provenance import run_id
    from .version import __version__

    if fmt not in FORMATS:
        raise GanforgeError(f"--format {fmt!r} is not allowed; expected {' or '.join(FORMATS)}")
    target = Path(target).expanduser()
    if target.suffix.lower() != FORMATS[fmt]:
        raise GanforgeError(f"--out {str(target)!r}: a {fmt} file ends in {FORMATS[fmt]}")
    net, example, in_names, out_names, axes, contract = build(model, direction, truncation, blend)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, torch.no_grad():
        try:
            if fmt == "onnx":
                torch.onnx.export(net, example, str(tmp), input_names=in_names, output_names=out_names,
                                  dynamic_axes=axes, opset_version=OPSET, dynamo=False, external_data=False)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream but still what C++ and mobile load
                    warnings.simplefilter("ignore", FutureWarning)
                    torch.jit.trace(net, example, check_trace=False).save(str(tmp))
        except Exception as e:  # an operator the exporter cannot express: one line, not its traceback
            raise GanforgeError(f"cannot export this {model.recipe.cfg.recipe} generator to {fmt}: "
                                f"{str(e).strip().splitlines()[0][:200]}") from None
        probe = probe_inputs(example, contract)
        diff = _check(tmp, fmt, net, probe, in_names)
        if not diff <= PARITY_TOLERANCE:
            raise GanforgeError(f"the {fmt} file differs from PyTorch by {diff:.3g} (> {PARITY_TOLERANCE}); "
                                "the export is not kept")
    contract = {"format": fmt, "file": target.name, "ganforge": __version__, "recipe": model.recipe.cfg.recipe,
                "run": str(model.run_dir), "run_id": run_id(model.run_dir), **contract,
                "opset": OPSET if fmt == "onnx" else None, "dynamic_axes": axes,
                "parity": {"max_abs_diff": diff, "batch": len(probe[0]), "against": "PyTorch, float32, CPU"},
                "provenance": "images made with this file are generated; disclose it (ganforge writes provenance "
                              "metadata and a watermark, this file does not)"}
    if fmt == "onnx":
        contract["usage"] = usage(contract, target.name)
    write_json(contract_path(target), contract)
    return contract


def contract_path(target: Path) -> Path:
    """Where the contract of an exported file goes: ``generator.onnx`` -> ``generator.onnx.json``."""
    return target.with_name(target.name + ".json")


def describe(contract: dict) -> str:
    ins = ", ".join(f"{d['name']} {d['dtype']} {d['shape']}" for d in contract["inputs"])
    outs = ", ".join(f"{d['name']} {d['dtype']} {d['shape']}" for d in contract["outputs"])
    return f"inputs: {ins}; outputs: {outs}"
