"""Losses against their closed forms, penalties against an independent autograd reference, and
every regularizer / anti-collapse option through a few real training steps."""
import copy
import math

import pytest
import torch
import torch.nn as nn

from ganforge.losses import get_loss, gradient_penalty, r1_penalty, r2_penalty
from ganforge.models.mlp import Standardize
from ganforge.nn.anticollapse import MinibatchStd, pack, spectral_norm_layers
from ganforge.recipes import StepContext, resolve
from ganforge.train.trainer import Trainer

REAL, FAKE = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.5, -3.0, 1.5])


# ---------------------------------------------------------------- losses
def test_hinge_wasserstein_lsgan_match_their_closed_forms():
    r, f = REAL.tolist(), FAKE.tolist()
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    cases = {
        "hinge": (mean([max(0, 1 - x) for x in r]) + mean([max(0, 1 + x) for x in f]), -mean(f)),
        "wasserstein": (mean(f) - mean(r), -mean(f)),
        "lsgan": (0.5 * mean([(x - 1) ** 2 for x in r]) + 0.5 * mean([x**2 for x in f]),
                  0.5 * mean([(x - 1) ** 2 for x in f])),
    }
    for name, (d, g) in cases.items():
        loss = get_loss(name)
        assert not loss.g_uses_real
        assert math.isclose(loss.d(REAL, FAKE).item(), d, rel_tol=1e-6), name
        assert math.isclose(loss.g(FAKE).item(), g, rel_tol=1e-6), name


def test_relativistic_average_matches_its_closed_form():
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    r, f = REAL.tolist(), FAKE.tolist()
    mr, mf = sum(r) / 3, sum(f) / 3
    # D: -E_r log sigmoid(r - E f) - E_f log(1 - sigmoid(f - E r)); G swaps the roles of real and fake
    d = -sum(math.log(sig(x - mf)) for x in r) / 3 - sum(math.log(1 - sig(x - mr)) for x in f) / 3
    g = -sum(math.log(sig(x - mr)) for x in f) / 3 - sum(math.log(1 - sig(x - mf)) for x in r) / 3
    loss = get_loss("ragan")
    assert loss.g_uses_real
    assert math.isclose(loss.d(REAL, FAKE).item(), d, rel_tol=1e-6)
    assert math.isclose(loss.g(FAKE, REAL).item(), g, rel_tol=1e-6)


# ---------------------------------------------------------------- penalties
def _critic(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))


def _reference_grads(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample input gradients, one sample at a time."""
    out = []
    for xi in x:
        xi = xi.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi[None]).sum(), xi)
        out.append(g)
    return torch.stack(out)


def test_r1_r2_and_gradient_penalty_match_an_autograd_reference():
    D = _critic()
    real, fake = torch.randn(6, 3), torch.randn(6, 3) + 1
    eps = torch.rand(6)
    r1_ref = _reference_grads(D, real).pow(2).sum(1).mean()
    r2_ref = _reference_grads(D, fake).pow(2).sum(1).mean()
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    gp_ref = (_reference_grads(D, x_hat).norm(dim=1) - 1).pow(2).mean()
    assert torch.allclose(r1_penalty(D, real), r1_ref, atol=1e-6)
    assert torch.allclose(r2_penalty(D, fake), r2_ref, atol=1e-6)
    assert torch.allclose(gradient_penalty(D, real, fake, eps), gp_ref, atol=1e-6)


def test_penalties_backpropagate_to_d_and_stay_fp32_under_autocast():
    D = _critic()
    real = torch.randn(5, 3)
    params = list(D.parameters())
    per_sample = []  # reference: mean ||dD/dx||^2 built one sample at a time, differentiated w.r.t. D's weights
    for xi in real:
        xi = xi.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi[None]).sum(), xi, create_graph=True)
        per_sample.append(g.pow(2).sum())
    ref = torch.autograd.grad(torch.stack(per_sample).mean(), params, allow_unused=True)
    r1_penalty(D, real).backward()
    for p, r in zip(params, ref):
        grad = torch.zeros_like(p) if p.grad is None else p.grad  # the last bias does not move a gradient
        assert torch.allclose(grad, torch.zeros_like(p) if r is None else r, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = r1_penalty(D, real)
    assert value.dtype == torch.float32 and torch.allclose(value, r1_penalty(D, real), atol=1e-6)


def test_packed_critic_penalty_sums_the_pack():
    D = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))  # judges 2 samples of 3
    real = torch.randn(4, 3)
    packed = lambda x: D(pack(x, 2))  # noqa: E731
    per_sample = _reference_grads(D, pack(real, 2)).pow(2).sum(1)  # [2]: a pack's gradient over its 6 inputs
    assert torch.allclose(r1_penalty(packed, real), per_sample.mean(), atol=1e-6)


# ---------------------------------------------------------------- layers
def test_spectral_norm_makes_the_largest_singular_value_one():
    torch.manual_seed(0)
    net = spectral_norm_layers(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Conv2d(3, 4, 3)))
    net.train()
    for _ in range(5):  # power iterations run in training forwards
        net[0](torch.randn(2, 5))
        net[2](torch.randn(2, 3, 5, 5))
    for layer in (net[0], net[2]):
        w = layer.weight.flatten(1)  # the normalized weight, as a matrix [out, in * k * k]
        assert abs(torch.linalg.matrix_norm(w, 2).item() - 1) < 0.05


def test_minibatch_std_shapes_and_value():
    x = torch.randn(8, 5)
    y = MinibatchStd(8)(x)
    assert y.shape == (8, 6) and torch.equal(y[:, :5], x)
    expected = x.std(0, unbiased=False).mean()
    assert torch.allclose(y[:, 5], expected.expand(8), atol=1e-4)
    assert MinibatchStd(4)(torch.randn(8, 3, 4, 4)).shape == (8, 4, 4, 4)
    assert MinibatchStd(4)(torch.randn(6, 3)).shape == (6, 4)  # group shrinks to 3, a divisor of 6
    groups = MinibatchStd(2)(x)[:, 5]  # strided groups: sample j with sample j + 4
    assert torch.allclose(groups[0], (x[[0, 4]].std(0, unbiased=False)).mean(), atol=1e-4)


def test_pack_concatenates_consecutive_samples():
    x = torch.arange(4 * 2 * 2 * 2, dtype=torch.float32).view(4, 2, 2, 2)
    p = pack(x, 2)
    assert p.shape == (2, 4, 2, 2)
    assert torch.equal(p[1, :2], x[2]) and torch.equal(p[1, 2:], x[3])
    pts = torch.arange(12.0).view(6, 2)
    assert torch.equal(pack(pts, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    with pytest.raises(ValueError):
        pack(pts, 4)


def test_standardize_round_trip():
    x = torch.randn(100, 2) * 3 + torch.tensor([1.0, -2.0])
    fwd, inv = Standardize(2), Standardize(2, inverse=True)
    fwd.fit(x)
    inv.fit(x)
    u = fwd(x)
    assert u.mean(0).abs().max() < 1e-5 and abs(u.var(0).mean().item() - 1) < 1e-4
    assert torch.allclose(inv(u), x, atol=1e-5)


def test_point_generator_starts_spread_like_the_data(tmp_path):
    trainer = Trainer(resolve({"data": "grid25", "net.width": 16, "batch_size": 8}), run_dir=tmp_path, progress=False)
    with torch.no_grad():
        x = trainer.sample_grid(2000)
    real = trainer.data.x
    assert torch.allclose(x.mean(0), real.mean(0), atol=0.3) and abs(x.std(0).mean() / real.std(0).mean() - 1) < 0.2


def test_point_codes_are_anchored_on_fixed_training_samples(tmp_path):
    cfg = resolve({"data": "grid25", "net.width": 16, "net.z_discrete": 64, "batch_size": 8, "steps": 3})
    trainer = Trainer(cfg, run_dir=tmp_path, progress=False)
    G = trainer.recipe.nets["G"]
    anchors = G.net[-1](G.prototypes.clone())  # back to data coordinates
    real = {tuple(r) for r in trainer.data.x.double().numpy().round(4).tolist()}
    assert all(tuple(a) in real for a in anchors.double().numpy().round(4).tolist())
    assert len({tuple(a) for a in anchors.tolist()}) == 64  # drawn without replacement
    before = G.prototypes.clone()
    trainer.fit()
    assert torch.equal(G.prototypes, before) and "prototypes" not in dict(G.named_parameters())


# ---------------------------------------------------------------- through training
# each option on its own: the points preset's R1 and discrete code are switched off here (OPTIONS[0] keeps them)
POINTS = {"recipe": "vanilla", "data": "ring8", "batch_size": 8, "net.width": 8, "net.depth": 2, "net.z_dim": 2,
          "net.z_discrete": 0, "reg.r1": 0.0, "reg.lazy_every": 1, "reg.n_critic": 1}
IMAGES = {"recipe": "dcgan", "data": "digits", "resolution": 8, "batch_size": 8, "net.width": 8, "net.z_dim": 4,
          "net.z_discrete": 0, "reg.info": 0.0, "reg.mbstd": 0}  # plain DCGAN, not the digits preset
OPTIONS = [
    {}, {"loss": "hinge"}, {"loss": "lsgan"}, {"loss": "ragan"}, {"loss": "minimax"},
    {"loss": "wasserstein", "reg.gp": 10.0, "reg.n_critic": 2},
    {"reg.r1": 1.0, "reg.r2": 1.0}, {"reg.r1": 1.0, "reg.r2": 0.5, "reg.lazy_every": 2},
    {"reg.pack": 2}, {"reg.unroll": 2}, {"reg.spectral_norm": True, "loss": "hinge"}, {"reg.mbstd": 4},
    {"net.z_discrete": 5, "reg.pack": 2, "reg.mbstd": 2, "reg.r1": 0.1, "reg.spectral_norm": True},
]


@pytest.mark.parametrize("base", [POINTS, IMAGES], ids=["vanilla-ring8", "dcgan-8px"])
@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_a_few_steps_with_each_option_stay_finite(tmp_path, base, option):
    trainer = Trainer(resolve(dict(base, **option, steps=3)), run_dir=tmp_path, progress=False)
    for _ in range(3):
        trainer.train_step()
    stats = trainer.stats.flush()
    assert stats and all(math.isfinite(v) for v in stats.values()), stats
    for net in trainer.recipe.nets.values():
        assert all(torch.isfinite(p).all() for p in net.parameters())
    if option.get("reg.r1") or option.get("reg.gp"):
        assert any(k.startswith(("Loss/D/r1", "Loss/D/gp")) for k in stats)
    x = trainer.sample_grid(4)
    assert x.shape[0] == 4 and torch.isfinite(x).all()


def test_lazy_regularization_runs_every_k_steps(tmp_path):
    trainer = Trainer(resolve(dict(POINTS, **{"reg.r1": 2.0, "reg.lazy_every": 3})), run_dir=tmp_path, progress=False)
    phases = {p.name: p for p in trainer.phases}
    assert list(phases) == ["D", "Dreg", "G"] and phases["Dreg"].every == 3
    calls, run = [], phases["Dreg"].run

    def counted(ctx):
        calls.append(ctx.step)
        loss, stats = run(ctx)
        # gamma * k / 2 * R1: the lazy step carries the pull of the k steps it stands for
        assert torch.allclose(loss, 2.0 * 3 / 2 * stats["Loss/D/r1"])
        return loss, stats

    phases["Dreg"].run = counted
    for _ in range(7):
        trainer.train_step()
    assert calls == [0, 3, 6]
    plain = Trainer(resolve(dict(POINTS, **{"reg.r1": 2.0})), run_dir=tmp_path / "b", progress=False)
    assert [p.name for p in plain.phases] == ["D", "G"]  # every step: inside the D loss


def test_n_critic_repeats_the_d_phase(tmp_path):
    trainer = Trainer(resolve(dict(POINTS, **{"reg.n_critic": 3})), run_dir=tmp_path, progress=False)
    steps = {"D": [], "G": []}  # (training step, how many D updates had happened) at each optimizer step
    for name, opt in trainer.optimizers.items():
        opt.step = lambda *a, _step=opt.step, _name=name, **k: steps[_name].append(
            (trainer.state.step, len(steps["D"]))) or _step(*a, **k)
    batches, real = [], trainer.batches.real
    trainer.batches.real = lambda: batches.append(real()) or batches[-1]
    D = trainer.recipe.nets["D"]
    before = [p.detach().clone() for p in D.parameters()]
    for _ in range(2):
        trainer.train_step()
    # per training step: three D updates, then the one G update
    assert steps == {"D": [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)], "G": [(0, 3), (1, 6)]}
    assert len(batches) == 6 and not torch.equal(batches[0][0], batches[1][0]), "each D update sees a fresh batch"
    assert all(not torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_unrolled_d_is_adam_on_a_copy_and_leaves_d_alone(tmp_path):
    trainer = Trainer(resolve(dict(POINTS, **{"reg.unroll": 1})), run_dir=tmp_path, progress=False)
    for _ in range(2):
        trainer.train_step()
    recipe, D, opt = trainer.recipe, trainer.recipe.nets["D"], trainer.optimizers["D"]
    before = copy.deepcopy(D.state_dict())
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    ctx = StepContext(2, 8, lambda: (real, None), torch.Generator().manual_seed(0))
    params, _ = recipe.unrolled_d(ctx, fake)
    # reference: one real Adam step of a copy of D and of its optimizer, on the same batch
    D2 = copy.deepcopy(D).requires_grad_(True)
    opt2 = torch.optim.Adam(D2.parameters())
    opt2.load_state_dict(opt.state_dict())
    recipe.loss.d(D2(real), D2(fake)).backward()
    opt2.step()
    for name, p in D2.named_parameters():
        assert torch.allclose(params[name], p, atol=1e-6), name
    for k, v in D.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_discrete_latent_is_one_hot_beside_the_normal_part(tmp_path):
    trainer = Trainer(resolve(dict(POINTS, **{"net.z_discrete": 6})), run_dir=tmp_path, progress=False)
    z = trainer.recipe.latent(10, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert z.shape == (10, 6 + 2)
    code = z[:, :6] / 6**0.5
    assert torch.equal(code.sum(1), torch.ones(10)) and set(code.unique().tolist()) <= {0.0, 1.0}


def test_one_default_for_every_point_dataset():
    """ring8, grid25 and the parametric mixtures share configs/vanilla/points.yaml, with no tuning of their own."""
    ring8 = resolve(flags={"data": "ring8"}).to_dict()
    for data in ("grid25", "ring:5:2:0.05", "grid:16:1:0.03"):
        other = resolve(flags={"data": data}).to_dict()
        assert {k: v for k, v in other.items() if k != "data"} == {k: v for k, v in ring8.items() if k != "data"}
    assert ring8 != resolve(flags={"data": "ring8", "recipe": "vanilla"}, sets=["net.z_discrete=0"]).to_dict()


class FixedCritic(torch.nn.Module):
    """Says 0.6 for every real image and 0.4 for every fake: right on each, by LSGAN's 0.5 boundary."""

    def __init__(self, real):
        super().__init__()
        self.real, self.w = real, torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, labels=None):
        is_real = (x - self.real).flatten(1).abs().amax(1) == 0
        return torch.where(is_real, 0.6, 0.4) + self.w


def test_d_accuracy_uses_the_losses_decision_boundary():
    from ganforge.data import DataRequest, load_dataset
    from ganforge.recipes import build_recipe

    data = load_dataset("digits", DataRequest(resolution=8))
    real = data.to_model(data.x[:4])
    for loss, expected in (("lsgan", 1.0), ("nonsaturating", 0.5)):
        recipe = build_recipe(resolve({"recipe": "dcgan", "resolution": 8, "net.width": 4, "loss": loss,
                                       "reg.info": 0, "net.z_discrete": 0, "reg.mbstd": 0}), data.spec())
        recipe.nets["D"] = FixedCritic(real)
        step = StepContext(0, 4, lambda: (real, None), torch.Generator().manual_seed(0))
        assert recipe.d_step(step)[1]["D/accuracy"].item() == expected, loss
