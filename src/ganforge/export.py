"""``ganforge export``: a run's (EMA) generator as one ONNX or TorchScript file, and its contract.

The file takes what the generator needs and gives images in [0, 1], so it runs without ganforge:

- samplers (GANs, an autoencoder's decoder): ``z`` float32 [N, Z] drawn from
  N(0, 1) (an InfoGAN-style one-hot code first when the run has one), and for conditional runs
  ``labels`` int64 [N] -> ``images`` float32 [N, C, H, W] (points [N, D] for 2D runs);
- translators: ``images`` float32 [N, C, H, W] in [0, 1] at the trained size,
  one direction per file -> ``translated`` [N, C', H, W];
- upscalers: ``images`` [N, 3, H, W] in [0, 1], any H and W -> ``upscaled``
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
from .extras import require
from .io import atomic_path, write_json

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARITY_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.02  # int8 files: the mean |diff| from PyTorch in [0, 1] image units that is kept
CALIBRATION_BATCHES, CALIBRATION_SIZE = 8, 64
OPSET = 18


def refusal(model: Any) -> str | None:
    """Why a loaded run cannot be exported yet (None: it can)."""
    r = model.recipe
    if r.sampler_name is not None:
        return (f"a {r.cfg.recipe} run samples with {r.sampler_name}: one file would have to hold the network "
                "and its sampling loop, which export does not do yet; use ganforge sample, or export a one-pass "
                "generator (a GAN, an autoencoder's decoder)")
    return None


def usage(contract: dict, file: str) -> str:
    """Three lines that run the exported file with onnxruntime, without ganforge."""
    dims = ", ".join(str(s if isinstance(s, int) else 64) for s in contract["inputs"][0]["shape"][1:])
    feeds = {"z": f"np.random.randn(16, {dims}).astype('float32')", "labels": "np.full(16, 3, dtype='int64')",
             "images": f"np.random.rand(1, {dims}).astype('float32')"}
    args = ", ".join(f"'{d['name']}': {feeds[d['name']]}" for d in contract["inputs"])
    return (f"import numpy as np, onnxruntime as ort\nsess = ort.InferenceSession('{file}')\n"
            f"out = sess.run(None, {{{args}}})[0]  # {contract['outputs'][0]['shape']} in [0, 1]")


def _check(path: Path, fmt: str, net: nn.Module, inputs: tuple, names: list[str]) -> tuple[float, float]:
    """Max and mean |exported - PyTorch| on ``inputs`` (a batch size other than the export's, to test the dynamic
    axis)."""
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
    return float(np.abs(got - want).max()), float(np.abs(got - want).mean())


def _calibration(model: Any, names: list[str], direction: str, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Inputs that set the int8 activation ranges, drawn as the file will be fed: the run's own latents and
    uniform labels, or the run's training images as the exported direction takes them (an upscaler's degraded
    low-resolution patches)."""
    gen = torch.Generator().manual_seed(seed)
    if "images" in names:
        from .data.run_data import RunData

        data = RunData.of(model.recipe.cfg).train
        pool = data.x_b if direction == "BtoA" and data.x_b is not None else data.x
    batches = []
    for _ in range(CALIBRATION_BATCHES):
        feed = {}
        if "z" in names:
            feed["z"] = model.recipe.latent(CALIBRATION_SIZE, gen, torch.device("cpu")).numpy()
        if "labels" in names:
            feed["labels"] = torch.randint(model.spec.num_classes, (CALIBRATION_SIZE,), generator=gen).numpy()
        if "images" in names:
            x = data.to_model(pool[torch.randint(len(pool), (CALIBRATION_SIZE,), generator=gen)])
            x = model.recipe.grid_source(x) if direction == "AtoB" else x
            feed["images"] = data.from_model(x).float().numpy()
        batches.append(feed)
    return batches


def quantize_int8(source: Path, target: Path, calibration: list[dict[str, np.ndarray]]) -> None:
    """Static int8 quantization with onnxruntime (QDQ format, per-channel int8 weights, uint8 activations whose
    ranges come from the ``calibration`` inputs)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    prepared = source.with_name(source.stem + "-prepared.onnx")
    try:  # symbolic shapes: an upscaler's dynamic height and width are beyond onnxruntime's inference
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    except Exception as e:  # one line, not onnxruntime's traceback
        raise GanforgeError(f"cannot quantize this generator to int8: {str(e).strip().splitlines()[0][:200]}") from None
    finally:
        prepared.unlink(missing_ok=True)


def export(model: Any, fmt: str, target: Path, direction: str = "AtoB", truncation: float | None = None,
           blend: float = 1.0, int8: bool = False) -> dict:
    """Write the file and its contract (``target`` with ``.json``); returns the contract, parity included.
    ``int8``: ONNX only, statically quantized (:func:`quantize_int8`), its parity reported as max and mean |diff|
    on inputs drawn as the calibration's are (random images would be far outside an upscaler's calibrated
    ranges)."""
    from .runs.provenance import run_id
    from .version import __version__

    if fmt not in FORMATS:
        raise GanforgeError(f"--format {fmt!r} is not allowed; expected {' or '.join(FORMATS)}")
    target = Path(target).expanduser()
    if target.suffix.lower() != FORMATS[fmt]:
        raise GanforgeError(f"--out {str(target)!r}: a {fmt} file ends in {FORMATS[fmt]}")
    why = refusal(model)
    if why:
        raise GanforgeError(f"cannot export: {why}")
    if int8 and fmt != "onnx":
        raise GanforgeError(f"--int8 is for --format onnx (onnxruntime quantizes it), not {fmt}")
    if fmt == "onnx":
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module, "ONNX export")
    graph = model.export_graph(direction, truncation, blend)  # the pipeline's module, inputs and contract
    net, example, in_names, axes = graph.net, graph.example, graph.inputs, graph.axes
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, torch.no_grad():
        try:
            if fmt == "onnx":
                torch.onnx.export(net, example, str(tmp), input_names=in_names, output_names=graph.outputs,
                                  dynamic_axes=axes, opset_version=OPSET, dynamo=False, external_data=False)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream but still what C++ and mobile load
                    warnings.simplefilter("ignore", FutureWarning)
                    torch.jit.trace(net, example, check_trace=False).save(str(tmp))
        except Exception as e:  # an operator the exporter cannot express: one line, not its traceback
            raise GanforgeError(f"cannot export this {model.recipe.cfg.recipe} generator to {fmt}: "
                                f"{str(e).strip().splitlines()[0][:200]}") from None
        probe = graph.probe  # another batch size (and image size for upscalers) than the export's example
        diff, mean_diff = _check(tmp, fmt, net, probe, in_names)
        if not diff <= PARITY_TOLERANCE:
            raise GanforgeError(f"the {fmt} file differs from PyTorch by {diff:.3g} (> {PARITY_TOLERANCE}); "
                                "the export is not kept")
        if int8:
            floats = tmp.with_name(tmp.stem + "-float.onnx")
            tmp.replace(floats)
            try:
                quantize_int8(floats, tmp, _calibration(model, in_names, direction))
            finally:
                floats.unlink(missing_ok=True)
            unseen = _calibration(model, in_names, direction, seed=1)[0]  # fed like the calibration, not in it
            diff, mean_diff = _check(tmp, fmt, net, tuple(torch.from_numpy(unseen[n]) for n in in_names), in_names)
            if not mean_diff <= INT8_TOLERANCE:
                raise GanforgeError(f"the int8 file differs from PyTorch by {mean_diff:.3g} on average (> "
                                    f"{INT8_TOLERANCE}); the export is not kept")
    contract = {"format": fmt, "file": target.name, "ganforge": __version__, "recipe": model.recipe.cfg.recipe,
                "run": str(model.run_dir), "run_id": run_id(model.run_dir), **graph.contract,
                "opset": OPSET if fmt == "onnx" else None, "dynamic_axes": axes,
                "parity": {"max_abs_diff": diff, "mean_abs_diff": mean_diff,
                           "batch": CALIBRATION_SIZE if int8 else len(probe[0]),
                           "against": "PyTorch, float32, CPU"},
                "precision": "int8 weights and activations (static, QDQ)" if int8 else "float32",
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
