"""The training loop, readable top to bottom (in the style of nanoGPT and Karras et al.'s code).

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

from ..config import TrainConfig
from ..console import info, warn
from ..data import Dataset
from ..data.batches import BatchSource
from ..data.run_data import RunData
from ..errors import ConfigError, GanforgeError, TrainingDiverged
from ..measure import final_names, measure
from ..recipes import Recipe, StepContext, build_recipe, lr_factor, recipe_class
from ..recipes.base import GRID_SAMPLES, PictureInputs, Shards
from ..runs import checkpoint as ck
from ..runs.rundir import RunLock, new_run_dir, read_meta, read_run, write_run_files
from ..runs.visuals import save_loss_plot
from ..version import __version__
from .distill import Distiller
from .distributed import DistInfo, average_gradients, broadcast_module, init_distributed, shutdown
from .ema import EMA
from .finetune import freeze_first_layers
from .health import HealthMonitor, mean_pairwise_distance
from .logger import RunLogger, StatsAccumulator, read_log
from .progress import TrainProgress
from .report import write_report

HEALTH_SAMPLES = GRID_SAMPLES  # fixed outputs whose spread is compared with real data's


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

        threads = cpu_threads(cfg.threads) if self.device.type == "cpu" else cfg.threads
        if threads:
            torch.set_num_threads(threads)  # process-wide
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.run_data = RunData.of(cfg)  # the held-out split and the reference are read when a measure needs them
        self.data: Dataset = recipe_class(cfg.recipe).prepare_data(cfg, self.run_data.train)
        self.recipe: Recipe = build_recipe(cfg, self.data.spec())
        self.recipe.check_steps(cfg.steps)
        self.recipe.fit_data(self.data)
        for net in self.recipe.nets.values():
            net.to(self.device)
        # distillation (ganforge distill): the teacher, and the student's feature adapters among the networks
        self.distiller = Distiller(cfg, self.recipe, self.data, self.device) if cfg.distill.teacher else None
        if self.dist.enabled:
            for net in self.recipe.nets.values():
                broadcast_module(net)
        self.optimizers = self.recipe.build_optimizers()
        if self.distiller is not None:
            self.distiller.extend(self.optimizers)
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}
        self.phases = self.recipe.phases()
        if self.distiller is not None:
            self.phases = self.distiller.wrap(self.phases)
        G = self.recipe.nets[self.recipe.generator_name]
        if cfg.channels_last:
            for net in self.recipe.nets.values():
                net.to(memory_format=torch.channels_last)
        self.ema = EMA(G, cfg.ema) if cfg.ema.enabled else None
        self.frozen = freeze_first_layers(self.recipe.nets, self.optimizers, cfg.freeze_d)
        if cfg.compile:  # after the EMA copy: the average (sampled from) stays a plain module
            for net in self.recipe.nets.values():
                net.compile()

        # one global batch order and one noise stream on every rank; each rank takes its slice
        self.batches = BatchSource(self.data, self.device, cfg.batch_size, cfg.seed, self.dist.rank,
                                   self.dist.world_size, cfg.channels_last)
        self.noise_gen = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + 7)

        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self.run_dir = run_dir or new_run_dir(cfg)
        fresh = not list((self.run_dir / "checkpoints").glob("step-*"))  # not a resume
        self.started_from = None  # fine-tuned from a run, or distilled from a teacher (fresh starts only)
        if fresh and cfg.init_from:
            self.started_from = {"init_from": self.init_from(cfg.init_from)}
        elif fresh and self.distiller is not None:
            self.started_from = {"distilled_from": self.distiller.start_from_teacher()}
            if self.ema is not None:  # the average starts where G now starts
                self.ema.model.load_state_dict(self.recipe.nets[self.recipe.generator_name].state_dict())
        self.stats = StatsAccumulator()
        self.logger = RunLogger(self.run_dir, enabled=self.dist.is_main)
        fixed = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(0))[:HEALTH_SAMPLES]
        self.pics = PictureInputs(self.data, self.batches.x, self.batches.x_b, fixed.to(self.device), cfg.seed)
        outputs = self.recipe.outputs_domain(self.data)  # what the generator's outputs should spread like
        self.health = HealthMonitor(cfg.health, float(mean_pairwise_distance(outputs[fixed % len(outputs)])))
        self.health_checks = 0
        self.best_value: float | None = None
        self.last_eval: tuple[int, dict] | None = None  # (step, result) of the latest evaluate()
        self.stop_signal: str | None = None  # set by SIGTERM / SIGINT: checkpoint and exit cleanly
        self.lock = RunLock(self.run_dir)

    # ---------------------------------------------------------------- setup helpers
    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.amp:
            return None
        if self.device.type == "cpu":  # bf16 autocast: oneDNN's bf16 kernels on CPUs with avx512_bf16 / AMX
            return torch.bfloat16
        if self.device.type != "cuda":
            raise ConfigError(f"amp=true is for CUDA and CPU devices, not {self.device.type}")
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

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
            **self.batches.state_dict(),
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
        self.batches.load_state_dict(state)
        self.noise_gen.set_state(state["noise_gen"])
        torch.set_rng_state(state["torch_rng"])
        self.recipe.load_state_dict(state.get("recipe", {}))

    def init_from(self, source: str) -> dict:
        """Fine-tuning: every network and the EMA start from another run's latest weights (not its optimizers,
        counters or data order); the first tensor that does not fit is refused in one line."""
        src, src_cfg, _ = read_run(source)
        ckpt = ck.latest_checkpoint(src)
        nets = ck.split_weights(ck.load_weights(ckpt))
        if src_cfg.recipe != self.cfg.recipe:
            raise ConfigError(f"--init-from {source} is a {src_cfg.recipe} run and this is {self.cfg.recipe}; "
                              f"fine-tuning needs the same networks (--recipe {src_cfg.recipe})")
        pairs = [(name, getattr(net, "_orig_mod", net), nets.get(name))  # compiled nets: their module
                 for name, net in self.recipe.nets.items()]
        if self.ema is not None:
            g = self.recipe.generator_name
            pairs.append((f"{g}_ema", self.ema.model, nets.get(f"{g}_ema", nets.get(g))))
        for name, net, weights in pairs:
            problem = "it has none" if weights is None else ck.first_mismatch(net, weights)
            if problem:
                raise ConfigError(f"--init-from {source}: {name} does not fit ({problem}); fine-tuning needs the "
                                  "same resolution, channels, net.* settings and number of classes")
        for _, net, weights in pairs:
            net.load_state_dict(weights)
        step = int(ckpt.name.partition("-")[2] or 0)  # step-0003000 (shipped runs keep no optimizer state)
        if self.show_progress:
            info(f"fine-tuning from {source} (step {step})"
                 + (f", D's first {self.cfg.freeze_d} weight layers frozen" if self.frozen else ""))
        return {"run": str(source), "step": step}

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
    def train_step(self) -> None:
        step = self.state.step
        f = lr_factor(self.cfg, step) * self.state.lr_scale
        for k, o in self.optimizers.items():
            for g, base in zip(o.param_groups, self.base_lrs[k]):
                g["lr"] = base * f
        b = self.batches
        ctx = StepContext(step, self.batch, b.real, self.noise_gen, self.dist.rank, self.dist.world_size,
                          b.real_b if b.two_domains else None, self.ema.model if self.ema else None)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype
                    else contextlib.nullcontext())
        for phase in self.phases:
            if step % phase.every or (phase.active is not None and not phase.active(step)):
                continue
            wanted = phase.needs_grad()
            for name, net in self.recipe.nets.items():
                net.requires_grad_(name in wanted)
            opt = self.optimizers[phase.updates]
            for _ in range(phase.repeats):
                opt.zero_grad(set_to_none=True)
                with autocast:
                    loss, stats = phase.run(ctx)
                self.scaler.scale(loss).backward()
                if self.dist.enabled:
                    average_gradients([p for g in opt.param_groups for p in g["params"]], self.dist.world_size)
                self.scaler.step(opt)
                self.scaler.update()
                self.stats.add(stats)
        if self.ema is not None:
            self.ema.update(self.recipe.nets[self.recipe.generator_name], self.state.images_seen, self.cfg.batch_size)
        self.state.step += 1
        self.state.images_seen += self.cfg.batch_size

    # ---------------------------------------------------------------- pictures
    def sampling_net(self) -> torch.nn.Module:
        """The generator pictures and metrics are made with: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.recipe.nets[self.recipe.generator_name]

    @contextlib.contextmanager
    def evaluating(self):
        """The sampling network in eval mode without gradients, back in its mode afterwards."""
        G = self.sampling_net()
        was_training = G.training
        try:
            with torch.no_grad():
                yield G.eval()
        finally:
            G.train(was_training)

    def sample_grid(self, n: int = GRID_SAMPLES) -> torch.Tensor:
        """The recipe's outputs for the run's fixed inputs, data space (EMA generator when there is one)."""
        with self.evaluating() as G:
            return self.recipe.preview(G, self.pics, n)

    def write_samples(self, final: bool = False) -> None:
        if not self.dist.is_main:
            return
        from ..runs.provenance import provenance
        from ..runs.visuals import save_image_grid, save_points_plot

        tag = "final" if final else f"step-{self.state.step:07d}"
        path = self.run_dir / "samples" / f"{tag}.png"
        info = provenance(self.cfg.recipe, self.run_dir, seed=self.cfg.seed, step=self.state.step)
        with self.evaluating() as G:
            pictures = self.recipe.pictures(G, self.pics)
        for picture in pictures:
            where = path.with_name(f"{tag}{picture.suffix}.png")
            if picture.real is not None:
                save_points_plot(picture.images, picture.real, where, f"{self.cfg.data}, step {self.state.step}")
            else:
                save_image_grid(picture.images, where, nrow=picture.nrow, info=info)

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
            started = (self.started_from or  # kept on resume
                       {k: v for k, v in read_meta(self.run_dir).items() if k in ("init_from", "distilled_from")})
            write_run_files(self.run_dir, cfg, self.data.spec(),
                            {"ganforge": __version__, "world_size": self.dist.world_size,
                             "device": str(self.device), "dataset_size": len(self.data), **started})
        if self.show_progress:  # where the run goes, before it starts (a log shows it at once)
            info(f"{cfg.recipe} on {cfg.data}: steps {self.state.step} -> {cfg.steps} on {self.device}, "
                 f"run directory {self.run_dir}")
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
                        progress.reset_to(self.state.step)
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
        from ..runs.rundir import update_meta
        from .model_card import FINAL_FILE
        from .report_html import write_pages

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
            values.update(self.health.check(values, self.sample_grid(HEALTH_SAMPLES), step))
            self.health_checks += 1
            self.logger.log(step, values)
            progress.show(values, self.health.messages(values), self.health.flagged(values))
            self.clock.last, self.clock.step = now, step
        if cfg.eval.every and (step % cfg.eval.every == 0 or step == cfg.steps):
            self.evaluate()
        if step % cfg.sample_every == 0 and step != cfg.steps:
            self.write_samples()
        if step % cfg.checkpoint_every == 0 and step != cfg.steps:
            self._check_pending()
            self.save()

    def measure(self, n: int, names: list[str]) -> dict | None:
        """The recipe's metrics of ``n`` samples (or of held-out inputs) of the (EMA) generator, logged as
        ``Metrics/*``, through the one measuring path ``ganforge eval`` takes too (:mod:`ganforge.measure`).

        Called on every rank: under DDP each rank extracts the features of its share of the samples,
        rank 0 gathers them and computes the metrics (and returns them; other ranks get None).
        """
        shards = Shards(self.dist.rank, self.dist.world_size, self._gather) if self.dist.enabled else None
        result = measure(self.recipe, self.sampling_net(), self.run_data, names, n, self.cfg.seed,
                         draw_seed=self.cfg.seed + 99, shards=shards)
        if result is not None:
            self.logger.log(self.state.step, {f"Metrics/{k}": float(v) for k, v in result.items()
                                              if isinstance(v, (int, float))})
        return result

    def _gather(self, mine: dict) -> dict | None:
        """Every rank's feature shards, joined on rank 0 (None on the others)."""
        import torch.distributed as dist

        shards: list = [None] * self.dist.world_size
        dist.all_gather_object(shards, mine)  # our own processes' tensors, not user files
        if not self.dist.is_main:
            return None
        return {k: _concat([s[k] for s in shards]) for k in mine}

    def final_metrics(self) -> dict | None:
        """Quality and diversity at the end of training, for the report: fd and precision / recall /
        density / coverage (and the classifier's view where the data has one; modes for mixtures); for
        translators and upscalers their own measures."""
        if self.last_eval is not None and self.last_eval[0] == self.state.step:  # eval.every just measured
            return self.last_eval[1]
        if not self.cfg.eval.final_n:
            return None
        return self.measure(self.cfg.eval.final_n, final_names(self.run_data))

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


def cpu_threads(wanted: int) -> int:
    """``threads``: as given (0 with OMP_NUM_THREADS set: torch's default, which follows it), or for 0 the cores
    idle at the start: the cores this process may use less the threads other processes are running now (at
    least 1). Two torch jobs of 2 threads each on 2 cores run several times slower than one thread each (their
    threads spin waiting for each other; benchmarks/RESULTS.md, threads), so a run beside another job takes
    what is free; alone it takes every core. 0 is returned where torch's default should stand."""
    import os

    if wanted or os.environ.get("OMP_NUM_THREADS"):  # chosen, here or for every OpenMP program (torch's default)
        return wanted
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, round(cores - busy_threads())))


def busy_threads(samples: int = 5, interval: float = 0.02) -> float:
    """Threads of other processes running right now: the kernel's count of runnable threads less this one
    (the median of a few looks, ``/proc/stat``); the 1-minute load average where there is no /proc."""
    import os
    import statistics

    counts = []
    for _ in range(samples):
        try:
            with open("/proc/stat") as f:
                running = next(int(line.split()[1]) for line in f if line.startswith("procs_running"))
        except (OSError, StopIteration, ValueError):
            try:
                return os.getloadavg()[0]
            except (AttributeError, OSError):  # pragma: no cover - Windows
                return 0.0
        counts.append(running - 1)
        time.sleep(interval)
    return float(statistics.median(counts))


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
