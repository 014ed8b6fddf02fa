"""Typed training configuration: dataclass defaults, YAML presets, dotted overrides, validation.

The engine's keys are the dataclasses below; a recipe's own keys are a section it registers beside
its code (:func:`config_section`), read and written exactly like the engine's (``cfg.style.w_dim``,
``--set style.w_dim=512``, ``style:`` in YAML), so a new method never edits this file.

Precedence, lowest first: dataclass defaults < the recipe's preset for the dataset
(``configs/<recipe>/<data>.yaml`` inside the package) < ``--config FILE.yaml`` < explicit
CLI flags < ``--set key=value``. Every value is validated before any work starts, and a bad
one is reported in one line that names the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .augment import parse_policy
from .errors import ConfigError
from .registry import did_you_mean


@dataclass
class NetConfig:
    z_dim: int = 64  # size of the continuous (normal) latent
    z_discrete: int = 0  # categories of a one-hot code drawn uniformly beside it (0: none); see recipes/gan.py
    width: int = 64  # base channels (conv) or hidden units (MLP)
    g_width: int = 0  # the generator's own base width (a lighter G beside a full D: ganforge distill); 0: width
    depth: int = 3  # hidden layers of MLP nets
    max_channels: int = 512  # cap on conv channels as resolution grows
    upsample: str = "transpose"  # conv generators: transpose (Radford et al. 2015) or bilinear (resize-convolution)

    @property
    def generator_width(self) -> int:
        return self.g_width or self.width


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: str = "none"  # none | linear | cosine, over the configured steps, to lr_final_frac * lr
    lr_final_frac: float = 0.0
    decay_start: float = 0.0  # fraction of the steps at the full rate before the decay begins (Zhu et al. 2017: 0.5)


@dataclass
class EMAConfig:
    enabled: bool = True
    kimg: float = 2.0  # half-life of the generator average, in thousands of images (Karras et al. 2020)
    rampup: float = 0.05  # half-life grows to kimg over the first rampup * images seen; 0 disables


@dataclass
class HealthConfig:
    """Checked at every log interval (``log_every`` steps)."""

    d_accuracy_max: float = 0.99  # D accuracy above this (or below 1 - this) is "pinned"
    g_loss_max: float = 15.0  # generator loss above this is "running away"
    diversity_min: float = 0.25  # sample diversity relative to real data below this is "collapse"
    start: int = 200  # no warning before this step: too early to judge (the values are logged); 0: from the first
    nan_retries: int = 3  # NaN/Inf: roll back to the last good checkpoint this many times
    nan_lr_factor: float = 0.5  # ... multiplying both learning rates by this each time


@dataclass
class RegConfig:
    """Regularizers and anti-collapse options of the two-player game (recipes/gan.py applies them)."""

    gp: float = 0.0  # WGAN-GP weight lambda on (||grad D(interpolate)|| - 1)^2; 10 in Gulrajani et al.
    r1: float = 0.0  # R1 gamma: gamma/2 * E||grad D(real)||^2 (Mescheder et al. 2018)
    r2: float = 0.0  # R2 gamma: the same on fake samples
    lazy_every: int = 1  # R1/R2 as a separate D step every k steps with gamma * k (Karras et al.); 1: in the D loss
    n_critic: int = 1  # D steps per G step
    pack: int = 1  # PacGAN: D judges k samples at once, concatenated along channels / features
    unroll: int = 0  # unrolled GAN: G's loss against D advanced k steps (Metz et al. 2017); 0: off
    spectral_norm: bool = False  # spectral normalization of D's linear and conv layers (Miyato et al. 2018)
    mbstd: int = 0  # minibatch-stddev feature before D's last layer, over groups of this size (StyleGAN); 0: off
    info: float = 0.0  # InfoGAN: weight of recovering the categorical code (net.z_discrete) from G(z); 0: off


@dataclass
class ADAConfig:
    """Adaptive discriminator augmentation (Karras et al. 2020), used with ``augment=ada``."""

    target: float = 0.6  # r_t = E[sign(D(real))] is steered towards this
    interval: int = 4  # steps between adjustments of p
    kimg: float = 100.0  # thousands of images for p to move from 0 to 1 (500 in the paper's long runs)
    p: float = 0.0  # initial augmentation probability


@dataclass
class DistillConfig:
    """Knowledge distillation into a lighter generator (``ganforge distill``, train/distill.py): the student
    (this run, usually with a smaller ``net.g_width``) learns the teacher run's outputs on the same inputs, its
    intermediate features through 1x1 adapters, and the recipe's own adversarial loss (GAN Compression, Li et
    al. 2020; OMGD, Ren et al. 2021)."""

    teacher: str | None = None  # a run directory or pretrained:NAME of the same recipe; None: no distillation
    pixel: float = 10.0  # weight of the L1 distance between student and teacher outputs (model space)
    features: float = 1.0  # weight of the mean squared distance of adapted student features to the teacher's
    fade: float = 1.0  # the distillation weights fall linearly to 0 at this fraction of the steps (1: kept to the end)
    inherit: bool = False  # the student's G starts with every tensor of the teacher's G that has its shape
    teacher_d: bool = False  # true: the student's D starts from the teacher run's (pinned at once on digits)


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations during training; 0: never
    metrics: str = ""  # comma-separated; empty: the data's defaults (fd,kid,prdc[,classes] or modes,fd)
    n: int = 2000  # generated samples per evaluation
    best: str = "fd"  # result key that picks checkpoints/best (fd, kid_mean, hq_frac, class_confident, ...)
    final_n: int = 1000  # samples measured at the end of training for report.md (fd, prdc, ...); 0: skip


@dataclass
class TrainConfig:
    recipe: str | None = None  # None: the one the data names (Recipe.default_for)
    data: str = "digits"
    resolution: int = 16  # image side; 0: from the data (folder: the median short side, as a power of two)
    channels: int | None = None  # None: the dataset's own
    data_root: str | None = None  # where torchvision sets are cached / downloaded
    data_fraction: float = 1.0  # train on a stratified random fraction of the training split (low-data studies)
    steps: int = 2000
    batch_size: int = 64  # global: divided across DDP ranks
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # mixed precision: bf16 autocast (fp16 with a grad scaler on GPUs without bf16); CPU: bf16
    threads: int = 0  # CPU threads for torch; 0: the cores idle at the start (all of them on a quiet machine)
    compile: bool = False  # torch.compile the trained networks (opt-in; gains and losses in benchmarks/RESULTS.md)
    channels_last: bool = True  # NHWC memory format for conv nets and image batches (1.2-1.7x on CPU, measured)
    loss: str = "nonsaturating"
    augment: str = ""  # what D sees: DiffAugment policies, e.g. "translation,cutout", or "ada" (adaptive)
    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    ada: ADAConfig = field(default_factory=ADAConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    init_from: str | None = None  # fine-tuning: start the networks (and the EMA) from this run's weights
    freeze_d: int = 0  # FreezeD (Mo et al. 2020): with init_from, D's first N weight layers stay as they were
    out: str | None = None  # None: runs/NNNN-<recipe>-<data>
    runs_dir: str = "runs"

    sections: dict[str, Any] = field(default_factory=dict, repr=False)  # the recipes' own: cfg.style, cfg.sr, ...

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            self.sections.setdefault(name, cls())

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields: the registered sections
        sections = self.__dict__.get("sections")
        if sections is None or name not in SECTIONS:
            raise AttributeError(f"TrainConfig has no key {name!r}")
        if name not in sections:  # a section registered after this config was made
            sections[name] = SECTIONS[name]()
        return sections[name]

    def to_dict(self) -> dict[str, Any]:
        """Every key, sections at the top level beside the core's (as config.yaml holds them)."""
        out = asdict(self)
        out.pop("sections")
        out.update({name: asdict(getattr(self, name)) for name in SECTIONS})
        return out


# A recipe's own settings live in a section it registers (``@config_section("style", checks)`` on a
# dataclass in the recipe's file): ``cfg.style.w_dim``, ``--set style.w_dim=512``, ``style:`` in YAML.
SECTIONS: dict[str, type] = {}


def config_section(name: str, checks: dict[str, tuple[typing.Callable[[Any], bool], str]] | None = None):
    """Register a dataclass as the config section ``name`` with its checks (``{"w_dim": (predicate, allowed)}``).
    Recipes sharing a section register it once, in the file of their common base."""
    def register(cls: type) -> type:
        if name in {f.name for f in fields(TrainConfig)} or SECTIONS.get(name, cls) is not cls:
            raise ValueError(f"config section {name!r} is already taken")
        SECTIONS[name] = cls
        CHECKS.update({f"{name}.{k}": v for k, v in (checks or {}).items()})
        return cls

    return register


def _core_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in fields(cls) if f.name != "sections"]


POINT_DATASETS = ("ring8", "grid25", "ring", "grid")  # 2D data: its recipes' points.yaml presets
# evaluation result keys that can choose the "best" checkpoint
RESULT_KEYS = {"psnr", "ssim", "l1", "cycle_l1", "labels_kept_ab", "labels_kept_ba", "fd_ab", "fd_ba",
               "fd", "kid_mean", "precision", "recall", "density", "coverage", "class_confident", "class_kl",
               "classes_present", "label_agreement", "modes", "hq_frac", "reverse_kl", "fid", "is_mean"}

# key -> (predicate, what is allowed); checked after every merge
CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "steps": (lambda v: v >= 1, "an integer >= 1 (0: from the data, where the recipe offers it)"),
    "freeze_d": (lambda v: v >= 0, "an integer >= 0 (0: nothing frozen)"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "resolution": (lambda v: 4 <= v <= 1024, "an integer from 4 to 1024 (0: from a folder's images)"),
    "channels": (lambda v: v is None or v in (1, 3), "1, 3 or null"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "data_fraction": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "device": (lambda v: v in ("auto", "cpu", "cuda") or v.startswith("cuda:"), "auto, cpu, cuda or cuda:N"),
    "threads": (lambda v: v >= 0, "an integer >= 0 (0: the idle cores)"),
    "net.z_dim": (lambda v: v >= 1, "an integer >= 1"),
    "net.z_discrete": (lambda v: v >= 0, "an integer >= 0 (0: no discrete code)"),
    "net.width": (lambda v: v >= 1, "an integer >= 1"),
    "net.g_width": (lambda v: v >= 0, "an integer >= 0 (0: net.width)"),
    "net.depth": (lambda v: v >= 1, "an integer >= 1"),
    "net.max_channels": (lambda v: v >= 1, "an integer >= 1"),
    "net.upsample": (lambda v: v in ("transpose", "bilinear"), "transpose or bilinear"),
    "optim.lr_g": (lambda v: v > 0, "a number > 0"),
    "optim.lr_d": (lambda v: v > 0, "a number > 0"),
    "optim.beta1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "optim.beta2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "optim.lr_decay": (lambda v: v in ("none", "linear", "cosine"), "none, linear or cosine"),
    "optim.lr_final_frac": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "optim.decay_start": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "augment": (lambda v: _valid_policy(v), "comma-separated translation, cutout, color; ada; or empty"),
    "ema.kimg": (lambda v: v > 0, "a number > 0"),
    "ema.rampup": (lambda v: v >= 0, "a number >= 0"),
    "reg.gp": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "reg.r1": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "reg.r2": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "reg.lazy_every": (lambda v: v >= 1, "an integer >= 1 (1: every step, in the D loss)"),
    "reg.n_critic": (lambda v: v >= 1, "an integer >= 1"),
    "reg.pack": (lambda v: v >= 1, "an integer >= 1 (1: no packing)"),
    "reg.unroll": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "reg.info": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "reg.mbstd": (lambda v: v >= 0 and v != 1, "0 (off) or a group size >= 2"),
    "ada.target": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "ada.interval": (lambda v: v >= 1, "an integer >= 1"),
    "ada.kimg": (lambda v: v > 0, "a number > 0"),
    "ada.p": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "health.d_accuracy_max": (lambda v: 0.5 < v <= 1, "a number in (0.5, 1]"),
    "health.g_loss_max": (lambda v: v > 0, "a number > 0"),
    "health.diversity_min": (lambda v: v >= 0, "a number >= 0"),
    "health.nan_retries": (lambda v: v >= 0, "an integer >= 0"),
    "health.start": (lambda v: v >= 0, "an integer >= 0 (0: warn from the first check)"),
    "health.nan_lr_factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "distill.pixel": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "distill.features": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "distill.fade": (lambda v: 0 < v <= 1, "a fraction in (0, 1] of the steps"),
    "eval.every": (lambda v: v >= 0, "an integer >= 0 (0: no evaluation during training)"),
    "eval.n": (lambda v: v >= 2, "an integer >= 2"),
    "eval.final_n": (lambda v: v == 0 or v >= 10, "0 (skip) or an integer >= 10"),
    "eval.best": (lambda v: v in RESULT_KEYS, "one of " + ", ".join(sorted(RESULT_KEYS))),
    "log_every": (lambda v: v >= 1, "an integer >= 1"),
    "sample_every": (lambda v: v >= 1, "an integer >= 1"),
    "checkpoint_every": (lambda v: v >= 1, "an integer >= 1"),
    "keep_checkpoints": (lambda v: v >= 1, "an integer >= 1"),
}


def int_list(text: str, ok: typing.Callable[[int], bool]) -> bool:
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        return False
    return bool(values) and all(ok(v) for v in values)


def _valid_policy(policy: str) -> bool:
    parse_policy(policy)  # raises its own ConfigError naming the bad policy
    return True


def _type_of(cls: type, name: str) -> Any:
    if cls is TrainConfig and name in SECTIONS:
        return SECTIONS[name]
    return typing.get_type_hints(cls)[name]


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert a YAML/CLI value to the field's declared type, or fail naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(key, value, args[0])
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a valid {tp.__name__}") from None
    raise ConfigError(f"{key}: cannot set a value of this kind")


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    keys = []
    for name in _names(cls):
        tp = _type_of(cls, name)
        if dataclasses.is_dataclass(tp):
            keys += all_keys(tp, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def _names(cls: type) -> list[str]:
    """The keys of a config class: its fields (and for TrainConfig, the registered sections)."""
    return [f.name for f in _core_fields(cls)] + (list(SECTIONS) if cls is TrainConfig else [])


def set_key(cfg: TrainConfig, key: str, value: Any) -> None:
    """Set a dotted key (``optim.lr_g``) with type coercion; unknown keys are an error."""
    obj: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = set(_names(type(obj)))
        if part not in names:
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(key, all_keys())}; allowed keys: "
                              f"{', '.join(all_keys())}")
        tp = _type_of(type(obj), part)
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                if not isinstance(value, dict):
                    raise ConfigError(f"{key}: expected a mapping of {', '.join(all_keys(tp))}")
                for k, v in value.items():
                    set_key(cfg, f"{key}.{k}", v)
            else:
                setattr(obj, part, _coerce(key, value, tp))
        else:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"unknown config key {key!r}; {'.'.join(parts[: i + 1])} has no sub-keys")
            obj = getattr(obj, part)


def merge(cfg: TrainConfig, values: dict[str, Any], prefix: str = "") -> None:
    for k, v in values.items():
        set_key(cfg, prefix + str(k), v)


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (numbers, booleans, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


MAX_CONFIG_BYTES = 1 << 20  # a config is a few KiB of text


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no python/* tags, so nothing is executed) without anchors and aliases:
    a config never needs them, and nested aliases can expand exponentially ("billion laughs")."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise ConfigError("uses YAML aliases (*name); ganforge config files do not allow anchors or aliases")
        return super().compose_node(parent, index)


def safe_yaml(text: str, where: str) -> dict[str, Any]:
    """A YAML mapping of config keys; one-line ConfigError naming ``where`` for anything else."""
    try:
        data = yaml.load(text, Loader=_NoAliasLoader) or {}
    except ConfigError as e:
        raise ConfigError(f"config file {where!r} {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {where!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {where!r} must hold a mapping of keys to values")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {str(p)!r} is {p.stat().st_size} bytes; the limit is {MAX_CONFIG_BYTES}")
    raw = p.read_bytes()
    if b"\0" in raw:
        raise ConfigError(f"config file {str(p)!r} is not a text file (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text") from None
    return safe_yaml(text, str(p))


def preset(recipe: str, data: str) -> dict[str, Any]:
    """The packaged preset for this recipe and dataset: ``configs/<recipe>/default.yaml`` (the recipe's
    own defaults, if it has them) updated by ``configs/<recipe>/<data>.yaml`` (if any).

    2D point sets without a file of their own share ``configs/<recipe>/points.yaml``, so one
    default serves ring8, grid25 and every ``ring:``/``grid:`` mixture alike.
    """
    name = data.split(":")[0]
    folder = resources.files("ganforge") / "configs" / recipe
    node = folder / f"{name}.yaml"
    if not node.is_file() and name in POINT_DATASETS:
        node = folder / "points.yaml"
    values: dict[str, Any] = {}
    for part in (folder / "default.yaml", node):  # the recipe's defaults, then the dataset's own file on top
        if part.is_file():
            values = _deep_update(values, yaml.safe_load(part.read_text()) or {})
    return values


def _deep_update(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate(cfg: TrainConfig) -> TrainConfig:
    for key, (ok, allowed) in CHECKS.items():
        obj: Any = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        try:
            good = ok(obj)
        except TypeError:
            good = False
        if not good:
            raise ConfigError(f"{key}={obj!r} is not allowed; expected {allowed}")
    return cfg


def from_dict(values: dict[str, Any]) -> TrainConfig:
    cfg = TrainConfig()
    merge(cfg, values)
    return validate(cfg)


def to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
