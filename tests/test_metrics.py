"""Metric suite: reference formulas, hand-computed cases, ordering sanity, caching and errors."""
from __future__ import annotations

import json
import math
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.data import DataRequest, Dataset, load_dataset
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics import (
    FEATURES,
    METRICS,
    FeatureStats,
    class_metrics,
    default_features,
    evaluate_samples,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    kernel_inception_distance,
    mode_metrics,
    prdc,
)
from ganforge.metrics import evaluate as evaluate_mod
from ganforge.metrics import features as features_mod
from ganforge.metrics.digits_classifier import classifier_card, classify


def correlated(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift


def pytorch_fid_formula(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance, written out independently (scipy sqrtm)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def torchmetrics_fid_formula(mu1, s1, mu2, s2) -> float:
    """torchmetrics' _compute_fid (eigenvalues of S1 S2), written out (importing torchmetrics takes seconds)."""
    c = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * c)


@pytest.fixture(scope="module")
def digits_test() -> Dataset:
    return load_dataset("digits", DataRequest(split="test"))


@pytest.fixture(scope="module")
def digits_train() -> Dataset:
    return load_dataset("digits", DataRequest(split="train"))


# --------------------------------------------------------------------------- Fréchet distance


def test_fd_matches_pytorch_fid_and_torchmetrics_formulas():
    a, b = correlated(400, 24, 0), correlated(300, 24, 1, shift=0.3)
    ours = frechet_distance(a, b)
    ref = pytorch_fid_formula(a.numpy(), b.numpy())
    assert ours == pytest.approx(ref, rel=1e-5)
    (mu1, s1), (mu2, s2) = feature_statistics(a), feature_statistics(b)
    assert ours == pytest.approx(torchmetrics_fid_formula(mu1, s1, mu2, s2), rel=1e-5)


def test_fd_of_a_set_with_itself_is_zero_and_singular_covariance_is_fine():
    a = correlated(500, 16, 2)
    assert abs(frechet_distance(a, a)) < 1e-9 * float(feature_statistics(a)[1].trace())
    # Fewer samples than dimensions: singular covariances; the eigenvalue route still agrees.
    x, y = correlated(20, 40, 3), correlated(25, 40, 4, shift=0.1)
    (mu1, s1), (mu2, s2) = feature_statistics(x), feature_statistics(y)
    fd = frechet_distance_from_stats(mu1, s1, mu2, s2)
    assert math.isfinite(fd) and fd == pytest.approx(torchmetrics_fid_formula(mu1, s1, mu2, s2), rel=1e-4)
    # From features, n < d takes the low-rank (singular values of X Y^T) route: same number.
    assert frechet_distance(x, y) == pytest.approx(fd, rel=1e-6)


def test_statistics_do_not_depend_on_batch_size():
    x = correlated(1000, 12, 5, shift=2.0).float()
    mu, sigma = feature_statistics(x)
    for bs in (7, 128, 1000):
        acc = FeatureStats(12)
        for i in range(0, len(x), bs):
            acc.update(x[i : i + bs])
        m2, s2 = acc.compute()
        assert m2.dtype == torch.float64
        torch.testing.assert_close(m2, mu, rtol=0, atol=1e-12)
        torch.testing.assert_close(s2, sigma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-10, atol=1e-13)


def test_digits_features_do_not_depend_on_extraction_batch_size(digits_test):
    ext = FEATURES.create("digits")
    f1, f2 = ext(digits_test.x, batch_size=7), ext(digits_test.x, batch_size=1000)
    torch.testing.assert_close(f1, f2, rtol=1e-4, atol=1e-5)
    assert frechet_distance(f1, f2) < 1e-6


# --------------------------------------------------------------------------- KID


def test_kid_matches_torch_fidelity_and_separates_distributions():
    kid_ref = pytest.importorskip("torch_fidelity.metric_kid")

    a, b = correlated(600, 16, 6), correlated(500, 16, 7)
    ours = kernel_inception_distance(a, b, subsets=10, subset_size=300, seed=3)
    ref = kid_ref.kid_features_to_metric(a, b, kid_subsets=10, kid_subset_size=300, rng_seed=3, verbose=False)
    assert ours[0] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9, abs=1e-12)
    assert ours[1] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-6)

    same = torch.randn(2000, 16, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    mean_same, std_same = kernel_inception_distance(same[:1000], same[1000:], subsets=20, subset_size=400)
    shifted = same[1000:] + 0.5
    mean_diff, _ = kernel_inception_distance(same[:1000], shifted, subsets=20, subset_size=400)
    assert abs(mean_same) < 3 * std_same + 1e-3
    assert mean_diff > 20 * max(abs(mean_same), std_same)


# --------------------------------------------------------------------------- PRDC


def test_prdc_hand_computed_case():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    # k=1: every real radius is 1; both fake radii are 9.5.
    # precision: only 0.5 lies in a real ball -> 1/2; density: 0.5 lies in 2 balls -> (2 + 0) / 2 / 1 = 1;
    # recall: all reals within 9.5 of the fake at 0.5 -> 1; coverage: reals 0 and 1 have a fake within 1 -> 1/2.
    assert prdc(real, fake, k=1) == pytest.approx({"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5})


def test_prdc_matches_reference_package_with_chunking():
    ref_prdc = pytest.importorskip("prdc")
    real, fake = correlated(300, 8, 9).float(), correlated(250, 8, 10, shift=0.2).float()
    ours = prdc(real, fake, k=5, chunk=64)
    with mock.patch("builtins.print"):
        ref = ref_prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-12), key


def test_prdc_rejects_k_not_below_sample_count():
    with pytest.raises(GanforgeError, match="k="):
        prdc(torch.randn(5, 2), torch.randn(3, 2), k=5)


# --------------------------------------------------------------------------- modes


def test_mode_metrics_hand_computed():
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    pts = torch.tensor([
        [1.0, 0.0], [1.0, 0.05], [1.05, 0.0],  # mode 0, high quality
        [0.2, 1.0],  # mode 1 at 2 std: high quality
        [0.5, 0.5],  # between modes, ~7 std from any: not
        [-1.35, 0.0],  # nearest mode 2 but 3.5 std away: not
    ])
    out = mode_metrics(pts, means, std=0.1)
    assert out["modes"] == 2  # modes 2 and 3 missing
    assert out["hq_frac"] == pytest.approx(4 / 6)
    assert out["reverse_kl"] == pytest.approx(0.75 * math.log(0.75 * 4) + 0.25 * math.log(0.25 * 4))

    balanced = mode_metrics(means.repeat(3, 1), means, std=0.1)
    assert balanced == {"modes": 4, "hq_frac": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}
    nowhere = mode_metrics(torch.full((5, 2), 9.0), means, std=0.1)
    assert nowhere["modes"] == 0 and nowhere["hq_frac"] == 0 and math.isnan(nowhere["reverse_kl"])


def test_modes_on_real_ring_samples(tmp_path):
    ring = load_dataset("ring8")
    out = evaluate_samples(ring.x[:4000].clone(), ring, ["modes"], cache_dir=tmp_path)
    # In 2-D, P(|x - mu| < 3 std) = 1 - exp(-9/2) ~ 0.989.
    assert out["modes"] == 8 and out["hq_frac"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    assert out["reverse_kl"] < 0.01
    collapsed = ring.x[:4000][(ring.x[:4000] - ring.info["means"][0]).norm(dim=1) < 0.05]
    out = evaluate_samples(collapsed, ring, ["modes"], cache_dir=tmp_path)
    assert out["modes"] == 1 and out["reverse_kl"] == pytest.approx(math.log(8))


# --------------------------------------------------------------------------- classes


def test_class_metrics_hand_computed():
    probs = torch.tensor([
        [0.95, 0.05, 0.00],  # confident 0
        [0.92, 0.08, 0.00],  # confident 0
        [0.10, 0.85, 0.05],  # argmax 1, not confident
        [0.00, 0.05, 0.95],  # confident 2
    ])
    out = class_metrics(probs, real_distribution=torch.tensor([2.0, 1.0, 1.0]),
                        requested_labels=torch.tensor([0, 1, 1, 2]))
    assert out["class_confident"] == pytest.approx(0.75)
    assert out["classes_present"] == 2  # class 1 never confident
    assert out["class_kl"] == pytest.approx(0.0, abs=1e-9)  # histogram [2, 1, 1] / 4 == real distribution
    assert out["label_agreement"] == pytest.approx(0.75)
    skewed = class_metrics(torch.eye(3)[[0, 0, 0, 0]])
    assert skewed["class_kl"] == pytest.approx(math.log(3), rel=1e-6)  # all in one class vs uniform
    assert "label_agreement" not in skewed


# --------------------------------------------------------------------------- digits classifier


def test_digits_classifier_accuracy_and_confidence_on_held_out_digits(digits_test, tmp_path):
    logits, feats = classify(digits_test.x)
    assert feats.shape == (len(digits_test), 128)
    assert (logits.argmax(1) == digits_test.y).float().mean().item() >= 0.97
    assert classifier_card()["test_accuracy"] >= 0.97
    out = evaluate_samples(digits_test.x, digits_test, ["classes"], cache_dir=tmp_path,
                           requested_labels=digits_test.y)
    assert out["class_confident"] >= 0.9 and out["classes_present"] == 10
    assert out["label_agreement"] >= 0.97 and out["class_kl"] < 0.01
    # Other renderings of the same digits (8x8, 32x32 RGB) are converted, not rejected.
    small = torch.nn.functional.interpolate(digits_test.x, size=8, mode="area")
    assert (classify(small)[0].argmax(1) == digits_test.y).float().mean() > 0.9
    assert (classify(digits_test.x.expand(-1, 3, -1, -1))[0].argmax(1) == digits_test.y).float().mean() >= 0.97


def test_fd_grows_with_noise_on_real_digits(digits_test, digits_train, tmp_path):
    g = torch.Generator().manual_seed(0)
    scores = []
    for std in (0.0, 0.1, 0.3):
        noisy = (digits_test.x + std * torch.randn(digits_test.x.shape, generator=g)).clamp(0, 1)
        scores.append(evaluate_samples(noisy, digits_train, ["fd"], cache_dir=tmp_path, split="train")["fd"])
    assert scores[0] < scores[1] < scores[2]


# --------------------------------------------------------------------------- evaluate_samples


def test_evaluate_samples_keys_protocol_and_cache(digits_test, digits_train, tmp_path):
    fake = digits_test.x[:200]
    out = evaluate_samples(fake, digits_train, ["fd", "kid", "prdc", "classes"], cache_dir=tmp_path, split="train")
    assert set(out) == {"fd", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
                        "class_confident", "classes_present", "class_kl", "protocol"}
    p = out["protocol"]
    assert p["extractor"] == "digits" and p["n_real"] == len(digits_train) and p["n_fake"] == 200
    assert p["reference"] == "digits (train split)" and p["seed"] == 0 and p["ganforge_version"]
    assert "16x16" in p["resize"] and p["reference_cached"] is False
    files = sorted(f.suffix for f in tmp_path.iterdir())
    assert files == [".json", ".safetensors"]  # no pickle
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["key"]["dataset"] == "digits" and meta["key"]["extractor"] == "digits"

    again = evaluate_samples(fake, digits_train, ["fd", "kid", "prdc"], cache_dir=tmp_path, split="train")
    assert again["protocol"]["reference_cached"] is True
    assert again["fd"] == pytest.approx(out["fd"], rel=1e-12) and again["kid_mean"] == out["kid_mean"]
    # A different reference set under the same name is not served from the stale cache.
    other = Dataset("digits", digits_train.x.flip(-1), digits_train.y, "image", digits_train.class_names)
    moved = evaluate_samples(fake, other, ["fd"], cache_dir=tmp_path, split="train")
    assert moved["protocol"]["reference_cached"] is False and moved["fd"] != pytest.approx(out["fd"])


def test_evaluate_samples_errors(digits_test, tmp_path):
    with pytest.raises(ConfigError, match="choose from: classes, fd, fid, is, kid, memorization, modes, prdc"):
        evaluate_samples(digits_test.x, digits_test, ["fd", "sharpness"], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown feature extractor"):
        evaluate_samples(digits_test.x, digits_test, ["fd"], features="vgg", cache_dir=tmp_path)
    faces_like = Dataset("faces100", torch.rand(20, 3, 8, 8), None, "image")
    with pytest.raises(ConfigError, match="classifier for dataset 'faces100'; available for: digits"):
        evaluate_samples(torch.rand(20, 3, 8, 8), faces_like, ["classes"], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="mixture"):
        evaluate_samples(digits_test.x, digits_test, ["modes"], cache_dir=tmp_path)
    with pytest.raises(GanforgeError, match="NaN"):
        evaluate_samples(torch.full((4, 1, 16, 16), float("nan")), digits_test, ["fd"], cache_dir=tmp_path)
    with pytest.raises(GanforgeError, match=r"\[N, 1\|3, H, W\]"):
        evaluate_samples(torch.rand(10, 2), digits_test, ["fd"], cache_dir=tmp_path)


def test_default_features_and_other_extractors(tmp_path):
    ring = load_dataset("ring8")
    faces_like = Dataset("faces100", torch.rand(64, 3, 12, 12, generator=torch.Generator().manual_seed(0)), None)
    assert default_features(load_dataset("digits", DataRequest(split="test"))) == "digits"
    assert default_features(ring) == "identity"
    assert default_features(faces_like) == "random-cnn"
    a, b = FEATURES.create("random-cnn"), FEATURES.create("random-cnn")
    assert a.dim == 256 and a.fingerprint == b.fingerprint and "not semantic" in a.describe
    torch.testing.assert_close(a(faces_like.x), b(faces_like.x))
    assert a(torch.rand(3, 1, 40, 40)).shape == (3, 256)  # grey, larger than 32: converted
    out = evaluate_samples(faces_like.x[:32], faces_like, ["fd", "prdc"], cache_dir=tmp_path)
    assert out["protocol"]["extractor"] == "random-cnn" and "32x32" in out["protocol"]["resize"]
    pts = evaluate_samples(ring.x[:500] + 0.5, ring, ["fd"], cache_dir=tmp_path, max_real=2000)
    assert pts["protocol"]["n_real"] == 2000 and pts["fd"] == pytest.approx(0.5, rel=0.1)  # ||shift||^2 = 0.5


# --------------------------------------------------------------------------- Inception Score


def test_inception_score_matches_torch_fidelity():
    isc_ref = pytest.importorskip("torch_fidelity.metric_isc")
    logits = torch.randn(200, 30, generator=torch.Generator().manual_seed(11)) * 3
    ref = isc_ref.isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=5)
    assert inception_score(logits, 10, True, 5) == pytest.approx(
        (ref["inception_score_mean"], ref["inception_score_std"]), rel=1e-12)
    assert inception_score(torch.zeros(20, 5), 10)[0] == pytest.approx(1.0)  # uniform predictions: IS 1


# --------------------------------------------------------------------------- Inception features


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A randomly initialised FID Inception saved as a state dict: the real weights cannot be downloaded here."""
    tfi = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    torch.manual_seed(0)
    with mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None):
        net = tfi.FeatureExtractorInceptionV3("random", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_path_with_random_weights(random_inception, tmp_path, monkeypatch):
    # Inception always runs at 299x299, so a handful of images is all a CPU test can afford.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no real weights can be found
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(random_inception))
    monkeypatch.setattr(evaluate_mod, "IS_SPLITS", 2)  # the standard 10 splits would need >= 10 images
    fake = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # grey: replicated to RGB
    real = Dataset("tiny", torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2)), None)
    out = evaluate_samples(fake, real, ["fid", "is"], cache_dir=tmp_path)
    assert math.isfinite(out["fid"]) and out["fid"] >= -1e-6 and out["is_mean"] >= 1.0
    assert "299" in out["protocol"]["inception_resize"]
    ext = FEATURES.create("inception", device="cpu")
    feats, logits = ext.features_and_logits(fake[:1])
    assert feats.shape == (1, 2048) and logits.shape == (1, 1008) and torch.isfinite(feats).all()


def test_inception_weights_are_loaded_as_plain_tensors_only(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"obj": _Opaque()}, bad)
    with pytest.raises(GanforgeError, match="cannot read inception weights") as err:
        FEATURES.create("inception", inception_weights=bad, device="cpu")
    assert "\n" not in str(err.value)


class _Opaque:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_missing_inception_weights_is_one_clear_line(tmp_path, monkeypatch, digits_test):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GanforgeError) as err:
        evaluate_samples(digits_test.x[:20], digits_test, ["fid"], cache_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and features_mod.INCEPTION_FILE in msg and str(tmp_path / "empty-hub") in msg
    assert "--inception-weights PATH" in msg
    with pytest.raises(GanforgeError, match="not found at"):
        FEATURES.create("inception", inception_weights=tmp_path / "nope.pth")


def test_metric_registry_lists_the_suite():
    assert METRICS.list() == ["classes", "fd", "fid", "is", "kid", "memorization", "modes", "prdc"]
    assert FEATURES.list() == ["digits", "identity", "inception", "random-cnn"]
