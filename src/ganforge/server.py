"""``ganforge serve`` (an HTTP API) and ``ganforge demo`` (the same API and a web page) for a trained run.

Endpoints (JSON bodies; errors are ``{"error": "..."}`` with a 4xx status, never a stack trace):

- ``GET /health`` -> ``{"status": "ok"}`` (with the micro-batcher's counts for samplers);
  ``GET /info`` -> the model card (recipe, data, inputs, limits, MODEL_CARD.md's text);
- samplers: ``POST /generate {"n", "seed", "label", "prompt", "truncation", "format": "png" | "json"}`` -> a PNG grid
  at the images' own size (or ``{"images": [n][C][H][W], "labels", "seed"}``); ``POST /interpolate
  {"seeds": [a, b, ...], "frames", "truncation", "label"}`` -> a PNG strip;
- translators: ``POST /translate?direction=AtoB`` with an image file as the body -> PNG;
- upscalers: ``POST /upscale?blend=1`` with an image file as the body -> PNG.

Concurrent ``/generate`` requests are micro-batched: one worker thread runs the generator, and each
pass takes every request waiting at that moment (up to :data:`MAX_BATCH_IMAGES` images), so the
network runs once for many requests with no added wait. Each request's images depend only on its
seed (:func:`ganforge.inference.drawing.latents`), never on what it was batched with. Every PNG carries
provenance metadata, and the watermark when it is large enough (:mod:`ganforge.runs.provenance`).
"""
from __future__ import annotations

import asyncio
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import GanforgeError

MAX_N = 64  # images per /generate request
MAX_FRAMES = 32  # frames per /interpolate segment
MAX_SEEDS = 8
MAX_BATCH_IMAGES = 256  # images per generator pass across batched requests
MAX_BODY_BYTES = 16 << 20  # an uploaded image file
MAX_TRANSLATE_PIXELS = 4_000_000  # input pixels for /translate
MAX_UPSCALE_PIXELS = 1_000_000  # input pixels for /upscale (the output has scale^2 times more)


class BadRequest(Exception):
    """A client error: its message goes back with the status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    z: torch.Tensor
    labels: torch.Tensor | None
    truncation: float | None
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Runs queued generation jobs together: a pass takes every job waiting, up to ``max_images``."""

    def __init__(self, model: Any, executor: ThreadPoolExecutor, max_images: int = MAX_BATCH_IMAGES) -> None:
        self.model, self.executor, self.max_images = model, executor, max_images
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.passes = self.batched_jobs = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def submit(self, z: torch.Tensor, labels: torch.Tensor | None, truncation: float | None) -> torch.Tensor:
        job = Job(z, labels, truncation, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    def _run(self, jobs: list[Job]) -> list[torch.Tensor]:
        """One generator pass per truncation value among ``jobs`` (usually one); results in job order."""
        from .inference.drawing import synthesize

        m, out = self.model, {}
        for psi in dict.fromkeys(j.truncation for j in jobs):
            group = [j for j in jobs if j.truncation == psi]
            z = torch.cat([j.z for j in group])
            labels = None if group[0].labels is None else torch.cat([j.labels for j in group])
            x = synthesize(m.recipe, m.net, m.spec, z.to(m.device), labels, truncation=psi)
            for j, part in zip(group, torch.split(x, [len(j.z) for j in group])):
                out[id(j)] = part
        return [out[id(j)] for j in jobs]

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            images = len(jobs[0].z)
            while not self.queue.empty() and images < self.max_images:
                jobs.append(self.queue.get_nowait())
                images += len(jobs[-1].z)
            try:
                results = await loop.run_in_executor(self.executor, self._run, jobs)
            except Exception as e:  # noqa: BLE001 - handed to each request, which answers 500 without details
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self.passes += 1
            self.batched_jobs += len(jobs)
            for j, r in zip(jobs, results):
                if not j.future.done():
                    j.future.set_result(r)


# --------------------------------------------------------------------------- request parsing
def _int(body: dict, key: str, default: int | None, lo: int, hi: int) -> int | None:
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadRequest(f"{key!r} must be an integer from {lo} to {hi}; got {json.dumps(v)[:40]}")
    return v


def _float(body: dict, key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"{key!r} must be a number; got {json.dumps(v)[:40]}")
    return float(v)


def _check_keys(body: Any, allowed: tuple[str, ...]) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}")
    return body


def _image_of(data: bytes, max_pixels: int):
    from PIL import Image

    if not data:
        raise BadRequest("the body must be an image file (PNG, JPEG, WebP, ...)")
    try:
        img = Image.open(io.BytesIO(data))
        if img.size[0] * img.size[1] > max_pixels:
            raise BadRequest(f"the image has {img.size[0]} x {img.size[1]} px; at most {max_pixels:,} pixels are "
                             "allowed here", 413)
        img.load()
    except BadRequest:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise BadRequest("the body is not a readable image (PNG, JPEG, WebP, ...)") from None
    return img


# --------------------------------------------------------------------------- the app
def limits(kind: str, max_n: int) -> dict[str, int]:
    """What one request may ask of a pipeline of this kind."""
    if kind == "sampler":
        return {"n": max_n, "frames": MAX_FRAMES, "seeds": MAX_SEEDS}
    pixels = MAX_UPSCALE_PIXELS if kind == "upscaler" else MAX_TRANSLATE_PIXELS
    return {"pixels": pixels, "bytes": MAX_BODY_BYTES}


def info(model: Any, max_n: int) -> dict:
    """``GET /info``: what the model is, what it takes (the pipeline's own description), and its model card."""
    from .runs.provenance import run_id
    from .version import __version__

    card = Path(model.run_dir) / "MODEL_CARD.md"
    spec = model.spec
    return {"ganforge": __version__, "recipe": model.recipe.cfg.recipe, "run": str(model.run_dir),
            "run_id": run_id(model.run_dir), "kind": model.kind, "data": spec.name, "shape": list(spec.shape),
            "model_card": card.read_text() if card.is_file() and card.stat().st_size < 1 << 20 else None,
            **model.describe(), "limits": limits(model.kind, max_n)}


def clip_gif(x: torch.Tensor, info: dict, nrow: int | None = None) -> bytes:
    """Clips [N, T, C, H, W] in [0, 1] as one looping GIF of their grid."""
    from .sampling import clip_grid, gif_bytes, rgb_frames

    return gif_bytes(rgb_frames(clip_grid(x, nrow)), info)


def create_app(model: Any, demo: bool = False, max_n: int = MAX_N):
    """The Starlette app serving ``model`` (a loaded run); ``demo`` adds the web page at ``/``."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from .runs.provenance import info_of, png_bytes
    from .runs.visuals import grid_image

    kind = model.kind
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganforge-model")  # one model, one thread
    batcher = MicroBatcher(model, executor) if kind == "sampler" else None
    loop_of = asyncio.get_running_loop

    async def body_json(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > 64 << 10:
            raise BadRequest("the JSON body is over 64 KiB", 413)
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None

    async def image_body(request: Request, max_pixels: int):
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"the upload is {size:,} bytes; at most {MAX_BODY_BYTES:,} are allowed", 413)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY_BYTES:
                raise BadRequest(f"the upload is over {MAX_BODY_BYTES:,} bytes", 413)
        return _image_of(bytes(data), max_pixels)

    def png(image: torch.Tensor, **extra: Any) -> Response:
        return Response(png_bytes(image, info_of(model, **extra)), media_type="image/png")

    def need(what: str) -> None:
        if kind != what:
            use = model.route
            raise BadRequest(f"this {model.recipe.cfg.recipe} run is a {kind}, not {'an' if what[0] == 'u' else 'a'} "
                             f"{what}; use {use}", 404)

    async def generate(request: Request) -> Response:
        need("sampler")
        body = _check_keys(await body_json(request), ("n", "seed", "label", "prompt", "truncation", "format"))
        n = _int(body, "n", 16, 1, max_n)
        seed = _int(body, "seed", 0, 0, 2**63 - 1)
        label = _int(body, "label", None, 0, max(model.num_classes - 1, 0))
        prompt = body.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or not model.recipe.texts):
            raise BadRequest("'prompt' is a string, for text-to-image models" if model.recipe.texts
                             else f"'prompt' is for text-to-image models; this is a {model.recipe.cfg.recipe} model")
        truncation, fmt = _float(body, "truncation"), body.get("format", "png")
        if fmt not in ("png", "json"):
            raise BadRequest(f"'format' must be png or json; got {json.dumps(fmt)[:40]}")
        from .inference.drawing import latents

        cond = prompt if prompt is not None else label
        z, labels = latents(model.recipe, model.spec, n, seed, cond, truncation)  # validates label, prompt, truncation
        x = await batcher.submit(z, labels, truncation)
        if model.recipe.texts:
            labels = None  # token ids; the prompt is in the image's metadata
        if fmt == "json":
            return JSONResponse({"seed": seed, "shape": list(x.shape), "labels": None if labels is None else
                                 labels.tolist(), "images": x.round(decimals=4).tolist()})
        headers = {"X-Seed": str(seed)} | ({} if labels is None else {"X-Labels": ",".join(map(str, labels.tolist()))})
        meta = info_of(model, seed=seed, n=n, label=label, prompt=prompt, truncation=truncation)
        if x.dim() == 5:  # clips: one looping GIF of their grid
            body = await loop_of().run_in_executor(None, lambda: clip_gif(x, meta))
            return Response(body, media_type="image/gif", headers=headers)
        grid = await loop_of().run_in_executor(None, lambda: png_bytes(
            grid_image(x, math.ceil(math.sqrt(n)), enlarge=False), meta))
        return Response(grid, media_type="image/png", headers=headers)

    async def interpolate(request: Request) -> Response:
        need("sampler")
        body = _check_keys(await body_json(request), ("seeds", "frames", "truncation", "label"))
        seeds = body.get("seeds")
        if not isinstance(seeds, list) or not 2 <= len(seeds) <= MAX_SEEDS or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in seeds):
            raise BadRequest(f"'seeds' must be a list of 2 to {MAX_SEEDS} integers >= 0")
        frames = _int(body, "frames", 8, 2, MAX_FRAMES)
        label = _int(body, "label", None, 0, max(model.num_classes - 1, 0))
        truncation = _float(body, "truncation")
        x = await loop_of().run_in_executor(executor, model.interpolate, seeds, frames, truncation, label)
        if x.dim() == 5:  # a walk between clips' contents: the clips side by side, playing together
            meta = info_of(model, seeds=seeds, frames=frames, truncation=truncation)
            body = await loop_of().run_in_executor(None, lambda: clip_gif(x, meta, nrow=len(x)))
            return Response(body, media_type="image/gif")
        return png(grid_image(x, len(x), enlarge=False), seeds=seeds, frames=frames, truncation=truncation)

    async def translate(request: Request) -> Response:
        need("translator")
        direction = model.direction(request.query_params.get("direction"))
        if direction not in model.directions:
            raise BadRequest(f"direction {direction!r} is not allowed; allowed: {', '.join(model.directions)}")
        img = await image_body(request, MAX_TRANSLATE_PIXELS)
        out = await loop_of().run_in_executor(executor, model.translate, img, direction)
        return png(out, direction=direction)

    async def upscale(request: Request) -> Response:
        need("upscaler")
        try:
            blend = float(request.query_params.get("blend", "1"))
        except ValueError:
            blend = float("nan")
        if not 0 <= blend <= 1:
            raise BadRequest("blend must be a number in [0, 1] (0: the PSNR-oriented model, 1: the GAN model)")
        img = await image_body(request, MAX_UPSCALE_PIXELS)
        out = await loop_of().run_in_executor(executor, lambda: model.upscale(img, blend=blend))
        return png(out, blend=blend)

    async def health(request: Request) -> Response:
        stats = {} if batcher is None else {"generate_requests": batcher.batched_jobs,
                                            "generator_passes": batcher.passes}
        return JSONResponse({"status": "ok", **stats})

    async def card(request: Request) -> Response:
        return JSONResponse(info(model, max_n))

    async def page(request: Request) -> Response:
        from .demo_page import render

        return HTMLResponse(render(info(model, max_n)))

    def guarded(handler):
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except BadRequest as e:
                return JSONResponse({"error": str(e)}, status_code=e.status)
            except GanforgeError as e:  # the library's own one-line refusals (a label out of range, ...)
                return JSONResponse({"error": str(e)}, status_code=400)
            except Exception:  # noqa: BLE001 - never a stack trace to a client
                import logging

                logging.getLogger("ganforge.server").exception("request failed")
                return JSONResponse({"error": "internal error"}, status_code=500)
        return run

    @asynccontextmanager
    async def lifespan(app):
        if batcher is not None:
            batcher.start()
        yield
        if batcher is not None:
            await batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    routes = [Route("/health", guarded(health), methods=["GET"]), Route("/info", guarded(card), methods=["GET"]),
              Route("/generate", guarded(generate), methods=["POST"]),
              Route("/interpolate", guarded(interpolate), methods=["POST"]),
              Route("/translate", guarded(translate), methods=["POST"]),
              Route("/upscale", guarded(upscale), methods=["POST"])]
    if demo:
        routes.append(Route("/", guarded(page), methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.batcher = batcher
    return app


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, demo: bool = False,
          threads: int = 0, device: str = "cpu", max_n: int = MAX_N) -> None:
    """Load the run and serve it until interrupted."""
    import uvicorn

    from .api import load
    from .console import info as say

    if not 0 < port < 65536:
        raise GanforgeError(f"--port {port} is not allowed; expected 1-65535")
    if threads:
        torch.set_num_threads(threads)
    model = load(run_dir, device=device)
    app = create_app(model, demo=demo, max_n=max_n)
    shown = f"[{host}]" if ":" in host else host
    say(f"{'demo' if demo else 'serving'} {model.recipe.cfg.recipe} run {run_dir} at http://{shown}:{port}/"
        + ("" if demo else " (GET /info)"))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    except OSError as e:
        raise GanforgeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
