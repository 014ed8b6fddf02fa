"""The training loop, readable top to bottom (nanoGPT / StyleGAN2-ADA style).

    setup: device, DDP, data in memory, recipe (nets + optimizers + phases), EMA, run dir
    resume: weights, optimizer states, sampler and RNG states, step counter
    loop: for each step, run the recipe's phases; update EMA; every k steps log, draw a
          sample grid, check health, checkpoint
    finish: final checkpoint, grid, loss plot, report
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..config import TrainConfig
from ..console import info, warn
from ..data import DataRequest, Dataset, InfiniteSampler, load_training_set
from ..errors import ConfigError, GanforgeError, TrainingDiverged
from ..recipes import Recipe, StepContext, build_recipe, lr_factor
from ..text import Vocabulary, caption_tokens
from . import checkpoint as ck
from .distributed import DistInfo, average_gradients, broadcast_module, init_distributed, shutdown
from .ema import EMA
from .health import HealthMonitor, mean_pairwise_distance
from .logger import RunLogger, StatsAccumulator, read_log
from .progress import TrainProgress
from .report import write_report
from .rundir import RunLock, new_run_dir, write_run_files
from .visuals import save_loss_plot

GRID_SAMPLES = 64
HEALTH_SAMPLES = 64  # fixed latents whose spread is compared with real data's


def pick_device(name: str, dist: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but CUDA is not available on this machine; use --device cpu or auto")
        if name == "cuda":
            name = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(torch.device(name))
    return torch.device(name)


@dataclass
class TrainState:
    """Counters that make a resumed run continue exactly."""

    step: int = 0
    images_seen: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of this process (all threads), resumed time included
    peak_memory_mb: float = 0.0  # peak resident memory (CPU) or peak allocated CUDA memory, over all sessions
    lr_scale: float = 1.0  # lowered by each NaN rollback
    rollbacks: int = 0


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path | None = None, progress: bool = True) -> None:
        self.cfg = cfg
        self.dist = init_distributed("cuda" if cfg.device.startswith("cuda") or
                                     (cfg.device == "auto" and torch.cuda.is_available()) else "cpu")
        self.device = pick_device(cfg.device, self.dist)
        if cfg.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the {self.dist.world_size} processes")
        self.batch = cfg.batch_size // self.dist.world_size  # per process
        self.show_progress = progress and self.dist.is_main

        if cfg.threads:
            torch.set_num_threads(cfg.threads)  # process-wide; tiny nets lose more to thread sync than they gain
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.data: Dataset = load_training_set(cfg.data, self._data_request(), cfg.data_fraction, cfg.seed,
                                               held_out=False)[0]
        self.recipe: Recipe = build_recipe(cfg, self.data.spec())
        self.recipe.fit_data(self.data.to_model(self.data.x))
        for net in self.recipe.nets.values():
            net.to(self.device)
            if self.dist.enabled:
                broadcast_module(net)
        self.optimizers = self.recipe.build_optimizers()
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}
        self.phases = self.recipe.phases()
        G = self.recipe.nets[self.recipe.generator_name]
        if cfg.channels_last:
            for net in self.recipe.nets.values():
                net.to(memory_format=torch.channels_last)
        self.ema = EMA(G, cfg.ema) if cfg.ema.enabled else None
        if cfg.compile:  # after the EMA copy: the average (sampled from) stays a plain module
            for net in self.recipe.nets.values():
                net.compile()

        # Data lives on the device in model space; a batch is an index.
        self.x = self.data.to_model(self.data.x).to(self.device)
        if cfg.channels_last and self.x.dim() == 4:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = None if self.data.y is None else self.data.y.to(self.device)
        if self.data.captions is not None:  # captioned data: a batch's "labels" are its captions' token ids
            self.y = caption_tokens(self.data.captions, Vocabulary(self.data.spec().vocab)).to(self.device)
        # one global batch order and one noise stream on every rank; each rank takes its slice
        self.sampler = InfiniteSampler(len(self.data), cfg.batch_size, seed=cfg.seed * 1000)
        # translation: domain B, read at the same indices when paired, from a sampler of its own otherwise
        self.x_b = None if self.data.x_b is None else self.data.to_model(self.data.x_b).to(self.device)
        self.sampler_b = (InfiniteSampler(len(self.data.x_b), cfg.batch_size, seed=cfg.seed * 1000 + 1)
                          if self.x_b is not None and not self.data.paired else None)
        self.last_idx: torch.Tensor | None = None
        self.noise_gen = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + 7)
        grid_gen = torch.Generator(self.device).manual_seed(cfg.seed)
        self.grid_labels = self._grid_labels()
        self.grid_z_gen_state = grid_gen.get_state()

        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self.run_dir = run_dir or new_run_dir(cfg)
        self.stats = StatsAccumulator()
        self.logger = RunLogger(self.run_dir, enabled=self.dist.is_main)
        fixed = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(0))[:HEALTH_SAMPLES]
        self.fixed_idx = fixed.to(self.device)  # training images shown in pictures
        real = self.data.x[fixed] if self.x_b is None else self.data.x_b[fixed % len(self.data.x_b)]
        self.health = HealthMonitor(cfg.health, float(mean_pairwise_distance(real)))  # outputs vs their domain
        if self.recipe.translates:  # fixed inputs (and partners) for the pictures and the health check
            b = self.x if self.x_b is None else self.x_b  # super-resolution: one domain, the HR images
            self.grid_inputs = (self.x[fixed.to(self.device)], b[(fixed % len(b)).to(self.device)])
        self.health_checks = 0
        self.best_value: float | None = None
        self.last_eval: tuple[int, dict] | None = None  # (step, result) of the latest evaluate()
        self.stop_signal: str | None = None  # set by SIGTERM / SIGINT: checkpoint and exit cleanly
        self.lock = RunLock(self.run_dir)

    # ---------------------------------------------------------------- setup helpers
    def _data_request(self) -> DataRequest:
        cfg = self.cfg
        return DataRequest(cfg.resolution, cfg.channels, cfg.data_root, "train", cfg.seed)

    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.amp:
            return None
        if self.device.type == "cpu":  # bf16 autocast: oneDNN's bf16 kernels on CPUs with avx512_bf16 / AMX
            return torch.bfloat16
        if self.device.type != "cuda":
            raise ConfigError(f"amp=true is for CUDA and CPU devices, not {self.device.type}")
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _grid_labels(self) -> torch.Tensor | None:
        """One row per class for labelled data (used by conditional recipes)."""
        k = self.data.num_classes
        if not k:
            return None
        per = max(1, GRID_SAMPLES // k)
        return torch.arange(k, device=self.device).repeat_interleave(per)

    # ---------------------------------------------------------------- checkpoints
    def weights(self) -> dict[str, torch.Tensor]:
        sds = {name: net.state_dict() for name, net in self.recipe.nets.items()}
        if self.ema is not None:
            sds[f"{self.recipe.generator_name}_ema"] = self.ema.model.state_dict()
        return ck.join_weights(sds)

    def save(self) -> Path | None:
        if not self.dist.is_main:
            return None
        if not all(torch.isfinite(t).all() for t in self.weights().values() if t.is_floating_point()):
            raise TrainingDiverged(self._diverged_message("the weights"))
        state = {
            "counters": vars(self.state).copy(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            **({"sampler_b": self.sampler_b.state_dict()} if self.sampler_b is not None else {}),
            "noise_gen": self.noise_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "recipe": self.recipe.state_dict(),
        }
        return ck.save_checkpoint(self.run_dir, self.state.step, self.weights(), state, self.cfg.keep_checkpoints)

    def resume(self) -> None:
        if not list((self.run_dir / "checkpoints").glob("step-*")):  # killed before its first checkpoint
            info(f"{self.run_dir} has no checkpoint yet; starting it from step 0 with its saved config")
            return
        self.load(ck.latest_checkpoint(self.run_dir))
        self.logger.truncate_after(self.state.step)
        if (self.run_dir / "checkpoints" / "best.json").is_file():
            self.best_value = float(ck.load_state(ck.latest_checkpoint(self.run_dir, "best"))["value"])
        info(f"resumed {self.run_dir} at step {self.state.step}")

    def load(self, path: Path) -> None:
        """Restore every bit of training state from a checkpoint."""
        nets = ck.split_weights(ck.load_weights(path))
        for name, net in self.recipe.nets.items():
            ck.load_into(net, nets.get(name), name)
        if self.ema is not None:
            name = self.recipe.generator_name
            ck.load_into(self.ema.model, nets.get(f"{name}_ema", nets.get(name)), f"{name}_ema")
        state = ck.load_state(path)
        self.state = TrainState(**state["counters"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        if self.sampler_b is not None:
            self.sampler_b.load_state_dict(state["sampler_b"])
        self.noise_gen.set_state(state["noise_gen"])
        torch.set_rng_state(state["torch_rng"])
        self.recipe.load_state_dict(state.get("recipe", {}))

    def _diverged_message(self, what: str) -> str:
        try:
            kept = f"the last good checkpoint (step {ck.latest_checkpoint(self.run_dir).name[5:].lstrip('0') or 0})"
        except Exception:
            kept = "no checkpoint yet"
        return (f"training diverged: {what} became NaN/Inf near step {self.state.step}; kept {kept} in "
                f"{self.run_dir}; try lower learning rates (--set optim.lr_g=... optim.lr_d=...)")

    def rollback(self, error: TrainingDiverged) -> None:
        """NaN/Inf: reload the last good checkpoint with lower learning rates, or give up."""
        h = self.cfg.health
        if self.state.rollbacks >= h.nan_retries:
            raise TrainingDiverged(f"{error} (after {self.state.rollbacks} rollback(s) with lower learning rates)")
        rollbacks, scale, at = self.state.rollbacks + 1, self.state.lr_scale * h.nan_lr_factor, self.state.step
        self.load(ck.latest_checkpoint(self.run_dir))  # every rank reads it: the run dir must be shared
        self.state.rollbacks, self.state.lr_scale = rollbacks, scale
        self.stats.flush()
        self.health.rollbacks = rollbacks
        self.clock.last, self.clock.step = time.perf_counter(), self.state.step
        warn(f"NaN/Inf near step {at}: rolled back to step {self.state.step}, learning rates x{scale:g} "
             f"(retry {rollbacks}/{h.nan_retries})")
        self.logger.log(self.state.step, {"Health/rollback": float(rollbacks), "Health/lr_scale": scale})

    # ---------------------------------------------------------------- one step
    def _real(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        r = self.dist.rank
        idx = self.sampler.next()[r * self.batch : (r + 1) * self.batch].to(self.device)
        self.last_idx = idx
        return self.x[idx], None if self.y is None else self.y[idx]

    def _real_b(self) -> torch.Tensor:
        """Domain B: the partners of the last ``_real()`` batch (paired), or a batch of its own."""
        if self.sampler_b is None:
            return self.x_b[self.last_idx]
        r = self.dist.rank
        return self.x_b[self.sampler_b.next()[r * self.batch : (r + 1) * self.batch].to(self.device)]

    def train_step(self) -> None:
        step = self.state.step
        f = lr_factor(self.cfg, step) * self.state.lr_scale
        for k, o in self.optimizers.items():
            for g, base in zip(o.param_groups, self.base_lrs[k]):
                g["lr"] = base * f
        ctx = StepContext(step, self.batch, self._real, self.noise_gen, self.dist.rank, self.dist.world_size,
                          self._real_b if self.x_b is not None else None, self.ema.model if self.ema else None)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype
                    else contextlib.nullcontext())
        for phase in self.phases:
            if step % phase.every or (phase.active is not None and not phase.active(step)):
                continue
            wanted = phase.needs_grad()
            for name, net in self.recipe.nets.items():
                net.requires_grad_(name in wanted)
            net, opt = self.recipe.nets[phase.updates], self.optimizers[phase.updates]
            for _ in range(phase.repeats):
                opt.zero_grad(set_to_none=True)
                with autocast:
                    loss, stats = phase.run(ctx)
                self.scaler.scale(loss).backward()
                if self.dist.enabled:
                    average_gradients(net, self.dist.world_size)
                self.scaler.step(opt)
                self.scaler.update()
                self.stats.add(stats)
        if self.ema is not None:
            self.ema.update(self.recipe.nets[self.recipe.generator_name], self.state.images_seen, self.cfg.batch_size)
        self.state.step += 1
        self.state.images_seen += self.cfg.batch_size

    # ---------------------------------------------------------------- pictures
    @torch.no_grad()
    def sample_grid(self, n: int = GRID_SAMPLES) -> torch.Tensor:
        """Samples from fixed latents in data space (EMA generator when there is one)."""
        G = self.sampling_net()
        was_training = G.training
        G.eval()
        if self.recipe.translates:  # the translations of fixed training inputs
            x = self.recipe.translate(G, self.recipe.grid_source(self.grid_inputs[0][:n]))
        else:
            gen = torch.Generator(self.device)
            gen.set_state(self.grid_z_gen_state)
            labels = self.grid_labels if self.recipe.conditional else None
            n = len(labels) if labels is not None else n
            x = self.recipe.generate(G, self.recipe.latent(n, gen, self.device), labels=labels)
        G.train(was_training)
        return self.data.from_model(x.float())

    def sampling_net(self) -> torch.nn.Module:
        """The generator pictures and metrics are made with: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.recipe.nets[self.recipe.generator_name]

    @torch.no_grad()
    def translation_grid(self, k: int = 8) -> tuple[torch.Tensor, int]:
        """Rows of input | output | target (or reconstruction) for fixed training inputs, data space."""
        G = self.sampling_net()
        was_training = G.training
        columns = self.recipe.preview(G.eval(), self.grid_inputs[0][:k], self.grid_inputs[1][:k])
        G.train(was_training)
        c = max(col.shape[1] for col in columns)
        cells = torch.stack([self.data.from_model(col.float()).expand(-1, c, -1, -1) for col in columns], 1)
        return cells.flatten(0, 1), len(columns)

    def write_samples(self, final: bool = False) -> None:
        if not self.dist.is_main:
            return
        from ..provenance import provenance
        from .visuals import save_image_grid, save_points_plot

        tag = "final" if final else f"step-{self.state.step:07d}"
        path = self.run_dir / "samples" / f"{tag}.png"
        info = provenance(self.cfg.recipe, self.run_dir, seed=self.cfg.seed, step=self.state.step)
        if self.data.kind == "points":
            fake = self.sample_grid(2500)
            save_points_plot(fake, self.data.x[:2500], path, f"{self.cfg.data}, step {self.state.step}")
        elif self.recipe.translates:
            grid, columns = self.translation_grid()
            save_image_grid(grid, path, nrow=columns, info=info)
        else:
            by_class = self.recipe.conditional and self.grid_labels is not None  # one row per class
            nrow = len(self.grid_labels) // self.data.num_classes if by_class else None
            save_image_grid(self.sample_grid(), path, nrow=nrow, info=info)
            pairs = self.reconstruction_grid()
            if pairs is not None:
                save_image_grid(pairs, path.with_name(f"{tag}-reconstructions.png"), nrow=8, info=info)

    @torch.no_grad()
    def reconstruction_grid(self, k: int = 32) -> torch.Tensor | None:
        """Pairs of fixed training images and their reconstructions, data space (VAE); None otherwise."""
        G = self.sampling_net()
        was_training = G.training
        x = self.x[self.fixed_idx[:k]]
        recon = self.recipe.reconstructions(G.eval(), x)
        G.train(was_training)
        if recon is None:
            return None
        return self.data.from_model(torch.stack([x, recon.float()], 1).flatten(0, 1).float())

    # ---------------------------------------------------------------- the loop
    def fit(self) -> Path:
        """Train to ``cfg.steps``; SIGTERM or SIGINT (cluster pre-emption, Ctrl-C) stops at the next
        step boundary with a checkpoint and returns normally (every rank at the same step)."""
        if self.dist.is_main:
            self.lock.acquire()
        handlers = self._install_signal_handlers()
        try:
            return self._fit()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self.lock.release()

    def _install_signal_handlers(self) -> dict[int, object]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def request_stop(signum: int, frame: object) -> None:
            if self.stop_signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.stop_signal = signal.Signals(signum).name

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, request_stop)
        return previous

    def _stop_requested(self) -> bool:
        """True on every rank once any rank got a stop signal. Under DDP the ranks agree with one tiny
        all-reduce at each log interval, where the statistics already sync the device, never per step."""
        if not self.dist.enabled:
            return self.stop_signal is not None
        if self.state.step % self.cfg.log_every:
            return False
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.stop_signal else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and self.stop_signal is None:
            self.stop_signal = "a signal to another rank"
        return bool(flag.item())

    def _fit(self) -> Path:
        cfg = self.cfg
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_run_files(self.run_dir, cfg, self.data.spec(),
                            {"ganforge": __version__, "world_size": self.dist.world_size,
                             "device": str(self.device), "dataset_size": len(self.data)})
        for net in self.recipe.nets.values():
            net.train()
        if self.state.step == 0:
            self.save()  # a rollback target from the very start
        self.clock = Clock(time.perf_counter() - self.state.seconds, time.perf_counter(), self.state.step,
                           time.process_time() - self.state.cpu_seconds)
        progress = TrainProgress(cfg.steps, self.state.step, enabled=self.show_progress)
        try:
            with progress:
                while self.state.step < cfg.steps:
                    try:
                        self.train_step()
                        progress.advance()
                        self.after_step(progress)
                    except TrainingDiverged as e:
                        self.rollback(e)
                        progress.progress.update(progress.task, completed=self.state.step)
                    if self._stop_requested():
                        break
        except KeyboardInterrupt:
            warn(f"interrupted at step {self.state.step}; saving a checkpoint to resume from")
            self.update_costs()
            self._check_pending()
            self.save()
            raise
        if self.state.step < cfg.steps:  # stopped by a signal
            self.update_costs()
            self._check_pending()
            self.save()
            if self.dist.is_main:
                warn(f"stopped by {self.stop_signal} at step {self.state.step}; checkpoint saved, continue with: "
                     f"ganforge train --resume {self.run_dir}")
            self.logger.close()
            shutdown(self.dist)
            return self.run_dir
        self.update_costs()
        self.save()
        self.write_samples(final=True)
        final = self.final_metrics()  # every rank: feature extraction is split across ranks
        if self.dist.is_main:
            records = read_log(self.run_dir)
            save_loss_plot(records, self.run_dir / "losses.png")
            summary = self.health.summary(self.health_checks)
            info(summary)
            write_report(self.run_dir, cfg, self.state, records, self.data, self.dist.world_size, summary, final)
            self.write_pages(final)
        self.logger.close()
        shutdown(self.dist)
        return self.run_dir

    def write_pages(self, final: dict | None) -> None:
        """final_metrics.json, the finished run's counters in run.json, MODEL_CARD.md and report.html."""
        from ..io import write_json
        from .model_card import FINAL_FILE
        from .report_html import write_pages
        from .rundir import update_meta

        if final:
            write_json(self.run_dir / FINAL_FILE, final)
        s = self.state
        update_meta(self.run_dir, steps=s.step, counters={
            "seconds": s.seconds, "cpu_seconds": s.cpu_seconds, "peak_memory_mb": s.peak_memory_mb,
            "images_seen": s.images_seen})
        write_pages(self.run_dir)

    def update_costs(self) -> None:
        """Wall seconds, CPU seconds and peak memory of the run so far, into the saved counters."""
        self.state.seconds = time.perf_counter() - self.clock.start
        self.state.cpu_seconds = time.process_time() - self.clock.cpu_start
        self.state.peak_memory_mb = max(self.state.peak_memory_mb, peak_memory_mb(self.device))

    def after_step(self, progress: TrainProgress) -> None:
        """Every k steps: log (and check health), draw samples, checkpoint."""
        cfg, step = self.cfg, self.state.step
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            values = self.stats.flush(self.dist.world_size)
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                raise TrainingDiverged(self._diverged_message(bad[0]))
            values["Timing/img_per_s"] = (step - self.clock.step) * cfg.batch_size / max(now - self.clock.last, 1e-9)
            values["Progress/kimg"] = self.state.images_seen / 1000
            self.update_costs()
            values["Timing/seconds"] = self.state.seconds
            values.update(self.health.check(values, self.sample_grid(HEALTH_SAMPLES)))
            self.health_checks += 1
            self.logger.log(step, values)
            progress.show(values, self.health.messages(values))
            self.clock.last, self.clock.step = now, step
        if cfg.eval.every and (step % cfg.eval.every == 0 or step == cfg.steps):
            self.evaluate()
        if step % cfg.sample_every == 0 and step != cfg.steps:
            self.write_samples()
        if step % cfg.checkpoint_every == 0 and step != cfg.steps:
            self._check_pending()
            self.save()

    def measure(self, n: int, names: list[str]) -> dict | None:
        """Metrics of ``n`` samples of the (EMA) generator against the training data, logged as ``Metrics/*``.

        Called on every rank: under DDP each rank extracts the features of its share of the samples,
        rank 0 gathers them and computes the metrics (and returns them; other ranks get None).
        """
        from ..drawing import draw
        from ..metrics import evaluate_samples, sample_outputs

        G = self.sampling_net()
        if self.recipe.translates:
            return self.measure_translation(G)
        was_training = G.training
        fake, labels = draw(self.recipe, G.eval(), self.data.spec(), n, self.cfg.seed + 99)  # same on every rank
        G.train(was_training)
        precomputed = None
        if self.dist.enabled:
            import torch.distributed as dist

            mine = sample_outputs(torch.tensor_split(fake, self.dist.world_size)[self.dist.rank], self.data)
            shards: list = [None] * self.dist.world_size
            dist.all_gather_object(shards, mine)  # our own processes' tensors, not user files
            if not self.dist.is_main:
                return None
            precomputed = {k: _concat([s[k] for s in shards]) for k in mine}
        held_out = None
        if "memorization" in names:
            held_out = load_training_set(self.cfg.data, self._data_request(), self.cfg.data_fraction, self.cfg.seed)[1]
        result = evaluate_samples(fake, self.data, names, seed=self.cfg.seed,
                                  requested_labels=None if self.recipe.texts else labels,
                                  precomputed=precomputed, train_set=self.data, held_out=held_out)
        if self.recipe.texts:  # does the picture show what the caption says (seen and held-out captions)
            from ..metrics.text2image import text_metrics

            if held_out is None:
                held_out = load_training_set(self.cfg.data, self._data_request(), self.cfg.data_fraction,
                                             self.cfg.seed)[1]
            result.update(text_metrics(self.recipe, G.eval(), {"seen": self.data, "held_out": held_out},
                                       min(n, 500), self.cfg.seed))
            G.train(was_training)
        self.logger.log(self.state.step, {f"Metrics/{k}": float(v) for k, v in result.items()
                                          if isinstance(v, (int, float))})
        return result

    def measure_translation(self, G: torch.nn.Module) -> dict | None:
        """Translation metrics on the held-out pairs / images (rank 0; the others get None)."""
        if not self.dist.is_main:
            return None
        from ..metrics.translation import translation_metrics

        held_out = None if self.recipe.upscales else load_training_set(  # SR measures held-out images whole
            self.cfg.data, self._data_request(), self.cfg.data_fraction, self.cfg.seed)[1]
        was_training = G.training
        result = translation_metrics(self.recipe, G.eval(), self.data, held_out, self.cfg.seed)
        G.train(was_training)
        self.logger.log(self.state.step, {f"Metrics/{k}": float(v) for k, v in result.items()
                                          if isinstance(v, (int, float))})
        return result

    def final_metrics(self) -> dict | None:
        """Quality and diversity at the end of training, for the report: fd and precision / recall /
        density / coverage (and the classifier's view where the data has one; modes for mixtures)."""
        from ..metrics import default_metrics

        if self.last_eval is not None and self.last_eval[0] == self.state.step:  # eval.every just measured
            return self.last_eval[1]
        if not self.cfg.eval.final_n:
            return None
        if self.recipe.translates:
            return self.measure(self.cfg.eval.final_n, [])
        names = [m for m in default_metrics(self.data) if m != "kid"]
        if "modes" not in names and "prdc" not in names:
            names.append("prdc")
        return self.measure(self.cfg.eval.final_n, names)

    def evaluate(self) -> None:
        """Metrics of the (EMA) generator against the training data; keeps checkpoints/best."""
        from ..metrics import default_metrics, is_better

        e = self.cfg.eval
        names = [m for m in e.metrics.split(",") if m.strip()] or default_metrics(self.data)
        result = self.measure(e.n, names)
        self.last_eval = (self.state.step, result)
        if result is None:  # not rank 0
            return
        value = result.get(e.best)
        if value is not None and is_better(e.best, float(value), self.best_value):
            self.best_value = float(value)
            ck.save_checkpoint(self.run_dir, self.state.step, self.weights(), {"metric": e.best, "value": value,
                               "step": self.state.step}, keep=1, name="best")

    def _check_pending(self) -> None:
        """Before a checkpoint: make sure no statistic since the last log went NaN/Inf."""
        for k, v in self.stats.sums.items():
            if not torch.isfinite(v).all():
                raise TrainingDiverged(self._diverged_message(k))


def _concat(parts: list):
    """Concatenate per-rank shards: tensors, or tuples of tensors."""
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


@dataclass
class Clock:
    start: float  # perf_counter at the (virtual) start of the run, resumed time included
    last: float  # perf_counter at the last log
    step: int  # step at the last log
    cpu_start: float = 0.0  # process_time at the (virtual) start of the run


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory on a GPU; this process's peak resident set size on a CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def train(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True,
          resignal: bool = False) -> Path:
    """Train ``cfg`` (or continue the run in ``resume``) and return the run directory.

    A SIGTERM / SIGINT stops training at a step boundary with a checkpoint. Then the CLI exits 0;
    with ``resignal`` (the Python API) the signal is raised again under the caller's own handler,
    so a script calling ``ganforge.train`` ends (or handles it) as it would have without ganforge.
    """
    trainer = Trainer(cfg, Path(resume).expanduser() if resume else None, progress)
    try:
        if resume:
            if trainer.dist.is_main:
                trainer.lock.acquire()  # before the log is truncated: a live run keeps its log
            trainer.resume()
        run_dir = trainer.fit()
        if resignal and trainer.stop_signal in ("SIGTERM", "SIGINT"):
            signal.raise_signal(getattr(signal, trainer.stop_signal))
        return run_dir
    except OSError as e:  # disk full, read-only or vanished run directory while writing logs or pictures
        where = e.filename or trainer.run_dir
        raise GanforgeError(f"cannot write {where}: {e.strerror or e}; the last complete checkpoint in "
                            f"{trainer.run_dir} is kept (resume with --resume once the disk has room)") from None
