"""Text-to-image: the shapes data and its parser, the vocabulary, the encoders' loss, training, sampling by prompt."""
import json
from collections.abc import Callable

import pytest
import torch
from PIL import Image
from test_vae_ddpm import _same_training

import ganforge
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.base import DataRequest
from ganforge.data.shapes import HELD_OUT, Scene, Thing, make_scenes, render
from ganforge.errors import GanforgeError
from ganforge.metrics.scenes import check, describe, parse, scene_accuracy
from ganforge.text import Vocabulary, WordSwaps, caption_tokens

TINY_T2I = {"recipe": "text2image", "data": "shapes:256", "resolution": 32, "batch_size": 8, "net.width": 8,
            "net.z_dim": 8, "text.embed_dim": 16, "steps": 8, "text.pretrain": 2, "log_every": 2, "sample_every": 4,
            "checkpoint_every": 4, "eval.final_n": 120}


@pytest.fixture(scope="module")
def t2i_run(tmp_path_factory):
    return ganforge.train(dict(TINY_T2I, out=str(tmp_path_factory.mktemp("t2i") / "run")), progress=False)


def _pairs(meanings):
    return {(t["color"], t["shape"]) for ms in meanings for m in ms for t in m["things"]}


def test_shapes_splits_hold_out_whole_colour_shape_pairs():
    train = load_dataset("shapes:300", DataRequest(resolution=32))
    test = load_dataset("shapes:300", DataRequest(resolution=32, split="test"))
    assert train.x.shape == (300, 3, 32, 32) and 0 <= train.x.min() and train.x.max() <= 1
    assert all(len(cs) == 5 for cs in train.captions)
    assert not _pairs(train.info["meanings"]) & HELD_OUT, "training never shows a held-out pair"
    assert all(_pairs([ms]) & HELD_OUT for ms in test.info["meanings"]), "every test scene has one"
    assert set(train.spec().vocab) >= {"green", "triangle", "left", "under"}
    with pytest.raises(GanforgeError, match="32 or 64"):
        load_dataset("shapes:10", DataRequest(resolution=16))


@pytest.mark.parametrize("res", [32, 64])
def test_the_parser_reads_back_every_rendered_scene(res):
    x, _, meanings = make_scenes(300, res, seed=3, held_out=None)
    acc = scene_accuracy(x, [m[0] for m in meanings])
    assert acc["all"] == 1.0, acc
    blank = torch.zeros_like(x[:4])
    assert scene_accuracy(blank, [m[0] for m in meanings[:4]])["all"] == 0.0


def test_parser_geometry_and_relations_on_a_known_scene():
    import random

    scene = Scene((Thing("red", "triangle", "big"), Thing("blue", "square", "small")), "left")
    img = torch.from_numpy(render(scene, 32, random.Random(0)).copy()).permute(2, 0, 1).float() / 255
    things = {t["color"]: t for t in parse(img)}
    assert things["red"]["shape"] == "triangle" and things["red"]["size"] == "big"
    assert things["blue"]["shape"] == "square" and things["blue"]["size"] == "small"
    says = {"things": [{"color": "red", "shape": "triangle", "size": None},
                       {"color": "blue", "shape": "square", "size": "small"}], "relation": "left"}
    assert check(list(things.values()), says)["all"]
    wrong = dict(says, relation="right")
    assert check(list(things.values()), wrong) == {"count": True, "color": True, "shape": True, "size": True,
                                                   "relation": False, "all": False}
    assert describe(parse(img)) == "a big red triangle left of a small blue square"  # what the report writes
    assert describe([]) == "nothing"


def test_runs_show_the_example_prompts_with_the_parsers_reading(t2i_run):
    from ganforge.data.shapes import PROMPT_EXAMPLES

    sheet = t2i_run / "samples" / "final-prompts.png"
    assert sheet.is_file() and "samples/final-prompts.png" in (t2i_run / "report.md").read_text()
    with Image.open(sheet) as img:  # 8 cells of 128 px, 4 to a row, with two to four lines of text under each
        assert img.width > 4 * 128 and img.height > 2 * 128 + 2 * 24
    vocab = Vocabulary(load_dataset("shapes:8", DataRequest(resolution=32)).info["vocab"])
    vocab.encode([p for ps in PROMPT_EXAMPLES.values() for p in ps])  # every example prompt is in the vocabulary
    names_held_out = [any(f"{c} {s}" in p for c, s in HELD_OUT) for p in PROMPT_EXAMPLES["seen"]]
    assert not any(names_held_out) and all(any(f"{c} {s}" in p for c, s in HELD_OUT)
                                           for p in PROMPT_EXAMPLES["held out"])


def test_vocabulary_tokens_and_unknown_words():
    v = Vocabulary(["a", "red", "green", "circle", "left", "of"])
    t = v.encode(["a red circle", "A green circle, left of a red circle"], length=10)
    assert t.shape == (2, 10) and (t[0, 3:] == 0).all() and v.decode(t[1]) == "a green circle left of a red circle"
    with pytest.raises(GanforgeError, match="unknown word 'gren' \\(did you mean 'green'"):
        v.ids("a gren circle")
    with pytest.raises(GanforgeError, match="no words"):
        v.ids("  ,, ")
    tok = caption_tokens([["a red circle"], ["a green circle", "a red circle left of a green circle"]], v)
    assert tok.shape == (2, 2, 8) and torch.equal(tok[0, 0], tok[0, 1]), "fewer captions repeat in turn"


def test_word_swaps_are_read_from_the_captions_and_make_hard_negatives():
    captions = [["a red circle", "a red disc"], ["a blue circle", "a blue disc left of a red box"],
                ["a blue disc left of a red square", "a red square right of a blue circle"], ["a green disc"]]
    v = Vocabulary.of([c for cs in captions for c in cs])
    swaps = WordSwaps.of(caption_tokens(captions, v), len(v))
    table = swaps.table
    pairs = {(v.words[a], v.words[b]) for a, b in table.nonzero().tolist()}
    assert {("red", "blue"), ("blue", "red"), ("green", "red"), ("square", "box")} <= pairs
    assert ("circle", "disc") not in pairs, "two captions of one image differing in one word: synonyms"
    assert ("left", "right") not in pairs and all(w not in {"a", "of"} for p in pairs for w in p)
    tokens = v.encode(["a red circle", "a blue disc left of a red square", "a"], length=8)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(40):
        out = swaps.swap(tokens, lambda *shape: torch.rand(shape, generator=gen))
        assert torch.equal(out[2], tokens[2]), "nothing swappable: unchanged"
        for row, old in zip(out[:2], tokens[:2]):
            changed = (row != old).nonzero().flatten().tolist()
            if len(changed) == 1:  # one word replaced by one it may be swapped for
                assert table[old[changed[0]], row[changed[0]]]
            else:  # two swappable words exchanged: the colours bound to the other things
                i, j = changed
                assert len(changed) == 2 and row[i] == old[j] and row[j] == old[i] and table[old[i], old[j]]
            seen.add(v.decode(row))
    assert "a blue disc left of a red square" not in seen and "a red disc left of a blue square" in seen
    # plausible: made of word pairs the captions use ("green disc" is; "green square" and "disc box" are not)
    assert swaps.plausible(v.encode(["a green disc", "a green square", "a blue disc left of a red box",
                                     "a disc box"], length=8)).tolist() == [True, False, True, False]


def test_contrastive_loss_matches_the_clip_formula():
    import torch.nn.functional as F

    from ganforge.models.text2image import contrastive_loss

    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    scale = torch.tensor(2.0)
    logits = torch.exp(scale) * a @ b.t()
    ref = 0.5 * (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.t(), torch.arange(6)))
    loss, _ = contrastive_loss(a, b, scale)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert contrastive_loss(a, a, torch.tensor(4.0))[1] == 1.0, "identical pairs retrieve each other"
    hard = F.normalize(torch.randn(3, 6, 4), dim=2)  # three more captions for each image, that one's alone
    per_image = torch.cat([logits, torch.exp(scale) * (a[None] * hard).sum(2).t()], 1)
    ref = 0.5 * (F.cross_entropy(per_image, torch.arange(6)) + F.cross_entropy(logits.t(), torch.arange(6)))
    assert contrastive_loss(a, b, scale, hard)[0].item() == pytest.approx(ref.item(), rel=1e-5)
    usable = torch.ones(3, 6, dtype=torch.bool)
    usable[1:] = False  # only the first hard caption of each image counts
    ref = 0.5 * (F.cross_entropy(per_image[:, :7], torch.arange(6)) + F.cross_entropy(logits.t(), torch.arange(6)))
    assert contrastive_loss(a, b, scale, hard, usable)[0].item() == pytest.approx(ref.item(), rel=1e-5)


def _d_step(tmp_path, mismatch: float, swapped: float = 0.0) -> tuple[torch.Tensor, list, dict, Callable]:
    """One D phase of a fresh text2image trainer (same seed whatever ``mismatch``): its adversarial loss
    (``Loss/D``, before R1), D's calls ``(images, caption embeddings, logits)``, D's gradient, the D loss."""
    from ganforge.recipes import StepContext, resolve
    from ganforge.train.trainer import Trainer

    cfg = resolve(dict(TINY_T2I, data="shapes:64", **{"text.pretrain": 0, "text.mismatch": mismatch,
                                                       "text.swapped": swapped}))
    trainer = Trainer(cfg, run_dir=tmp_path / f"m{mismatch}s{swapped}", progress=False)
    D = trainer.recipe.nets["D"]
    calls, forward = [], D.forward
    D.forward = lambda x, e: calls.append((x.detach(), e.detach(), forward(x, e))) or calls[-1][2]
    phase = next(p for p in trainer.phases if p.name == "D")
    loss, stats = phase.run(StepContext(0, trainer.batch, trainer.batches.real, trainer.noise_gen))
    loss.backward()
    return stats["Loss/D"], calls, {k: p.grad.clone() for k, p in D.named_parameters()}, trainer.recipe.loss.d


def test_the_discriminator_sees_real_images_with_wrong_captions(t2i_run, tmp_path):
    rows = [json.loads(line) for line in (t2i_run / "metrics.jsonl").read_text().splitlines()]
    align = [r for r in rows if "Loss/align" in r]
    gan = [r for r in rows if "Loss/D" in r]
    assert align and gan and all("D/mismatched" in r and "Loss/G/kl" in r for r in gan)
    assert align[0]["step"] <= TINY_T2I["text.pretrain"] < gan[0]["step"]
    final = json.loads((t2i_run / "final_metrics.json").read_text())
    for k in ("seen/scene_all", "held_out/scene_all", "seen/r_precision", "seen/r_precision_real",
              "held_out/fd_encoder"):
        assert k in final and final[k] == final[k], k
    # the D phase itself: one of its judgements is of the real images, each with another image's caption
    m = 0.5
    loss, calls, grad, d_loss = _d_step(tmp_path, m)
    (real, e, real_logits), (_, e_fake, fake_logits) = calls[0], calls[1]
    wrong = [c for c in calls[2:] if torch.equal(c[0], real) and not torch.equal(c[1], e)]
    assert len(wrong) == 1 and torch.equal(e_fake, e)
    _, e_wrong, wrong_logits = wrong[0]
    own = [int((e_wrong[i] == e).all(1).nonzero()[0]) for i in range(len(e))]  # whose caption image i is shown with
    assert sorted(own) == list(range(len(e))) and all(j != i for i, j in enumerate(own))
    assert torch.allclose(loss, (1 - m) * d_loss(real_logits, fake_logits) + m * d_loss(real_logits, wrong_logits),
                          atol=1e-6), "a text.mismatch share of D's fake term is the mismatched pairs'"
    # and it moves D: without it (mismatch 0, same seed, same batch) the loss and the gradient differ
    loss0, calls0, grad0, _ = _d_step(tmp_path, 0.0)
    assert torch.equal(calls0[0][0], real) and torch.allclose(loss0, d_loss(real_logits, fake_logits), atol=1e-6)
    assert abs(float(loss - loss0)) > 1e-3
    assert any(not torch.allclose(grad[k], grad0[k], atol=1e-6) for k in grad)
    # text.swapped=1: each real image is shown with its own caption with a word swapped where that makes a plausible
    # caption (word pairs the training captions use), else with its neighbour's caption
    _, calls1, _, _ = _d_step(tmp_path, m, swapped=1.0)
    e1, e_wrong = calls1[0][1], calls1[2][1]
    assert torch.equal(calls1[2][0], calls1[0][0])
    neighbours = (e_wrong == e1.roll(1, 0)).all(1)
    unseen = ~(e_wrong[:, None] == e1[None]).all(2).any(1)
    assert (neighbours | unseen).all() and unseen.sum() >= len(e1) // 2, "swapped captions, not the batch's"


def test_text2image_resumes_exactly(tmp_path):
    """With every random draw of the recipe on: hard negatives in alignment and for D, lazy R1 (its own phase)."""
    cfg = dict(TINY_T2I, **{"eval.final_n": 0, "text.hard": 2, "text.swapped": 0.5, "reg.r1": 1.0,
                            "reg.lazy_every": 2})
    _same_training(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("Loss/D/r1" in r for r in rows if r.get("step", 0) > cfg["text.pretrain"])


def test_sample_by_prompt_and_clear_refusals(t2i_run, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["sample", str(t2i_run), "--prompt", "a red circle left of a blue square", "--n", "4",
                 "--out", str(out)]) == 0
    assert Image.open(out).text["ganforge:prompt"] == "a red circle left of a blue square"
    g = ganforge.load(t2i_run)
    a = g.sample(3, seed=1, labels="a big green triangle")
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, g.sample(3, seed=1, labels="a big green triangle"))
    assert not torch.equal(a, g.sample(3, seed=1, labels="a small red box"))
    both = g.sample(4, seed=1, labels=["a big green triangle", "a small red box"])
    assert torch.allclose(both[:2], g.sample(4, seed=1, labels="a big green triangle")[:2], atol=1e-5)
    walk = g.text_walk(["a big green triangle", "a small red box", "a blue circle"], frames=4, seed=1)
    assert walk.shape == (9, 3, 32, 32)
    box = g.sample(1, seed=1, labels="a small red box")[0]
    assert torch.allclose(walk[0], a[0], atol=1e-3) and torch.allclose(walk[4], box, atol=1e-3), "through each prompt"
    assert main(["interpolate", str(t2i_run), "--prompts", "a red circle|a blue square", "--frames", "3",
                 "--out", str(tmp_path / "walk.png")]) == 0
    capsys.readouterr()
    assert main(["sample", str(t2i_run), "--prompt", "a purple circle", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown word 'purple'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["sample", str(t2i_run), "--label", "2", "--out", str(out)]) == 2
    assert "--prompt" in capsys.readouterr().err


def test_captions_folder_and_images_without_captions(tmp_path):
    import numpy as np

    x, captions, _ = make_scenes(12, 32, seed=0, held_out=None)
    for i, (img, cs) in enumerate(zip(x, captions)):
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.txt").write_text("\n".join(cs[: 1 + i % 3]) + "\n")
    data = load_dataset(f"captions:{tmp_path}", DataRequest(resolution=32))
    assert len(data) == 12 and sorted(len(c) for c in data.captions) == sorted(1 + i % 3 for i in range(12))
    assert data.spec().captioned and {"a", "big"} <= set(data.spec().vocab)
    (tmp_path / "3.txt").unlink()
    with pytest.raises(GanforgeError, match=r"1 image\(s\) in .* have no captions: 3.png"):
        load_dataset(f"captions:{tmp_path}", DataRequest(resolution=32))


def test_text2image_refuses_data_without_captions(tmp_path):
    with pytest.raises(GanforgeError, match="needs captioned data"):
        ganforge.train(dict(TINY_T2I, data="digits", resolution=8, out=str(tmp_path / "r")), progress=False)


def test_serve_generates_from_a_prompt(t2i_run):
    from starlette.testclient import TestClient

    from ganforge.server import create_app

    with TestClient(create_app(ganforge.load(t2i_run))) as c:
        r = c.post("/generate", json={"n": 2, "seed": 1, "prompt": "a big green triangle", "format": "json"})
        assert r.status_code == 200
        ref = ganforge.load(t2i_run).sample(2, seed=1, labels="a big green triangle")
        assert torch.allclose(torch.tensor(r.json()["images"]), ref, atol=1e-3)
        bad = c.post("/generate", json={"prompt": "a gren triangle"})
        assert bad.status_code == 400 and "did you mean 'green'" in bad.json()["error"]


def test_a_run_can_start_from_another_runs_encoders(t2i_run, tmp_path):
    g = ganforge.load(t2i_run)
    cfg = dict(TINY_T2I, **{"text.encoder": str(t2i_run), "text.pretrain": 0, "steps": 1, "eval.final_n": 0},
               out=str(tmp_path / "b"))
    from ganforge.config import from_dict
    from ganforge.data import load_dataset as load
    from ganforge.recipes import build_recipe

    recipe = build_recipe(from_dict(cfg), load("shapes:64", DataRequest(resolution=32)).spec())
    G = recipe.nets["G"]
    tokens = recipe.vocab.encode(["a big green triangle left of a red box"])
    with torch.no_grad():
        assert torch.allclose(G.text(tokens), g.net.text(g.recipe.vocab.encode(["a big green triangle left of a "
                                                                                "red box"])), atol=1e-6)
    with pytest.raises(GanforgeError, match="is a dcgan run"):
        ganforge.train(dict(cfg, **{"text.encoder": str(ganforge.train(dict(
            {"recipe": "dcgan", "resolution": 8, "steps": 1, "batch_size": 4, "net.width": 8, "eval.final_n": 0},
            out=str(tmp_path / "d")), progress=False))}), progress=False)


def test_eval_measures_what_training_measured(t2i_run):
    """One measuring path: ``ganforge eval`` on a text run gives the caption measures training logged, and the
    same numbers for the same samples (the end of training drew ``final_n`` samples with seed + 99)."""
    final = json.loads((t2i_run / "final_metrics.json").read_text())
    again = ganforge.evaluate(t2i_run, metrics="fd,prdc", n=TINY_T2I["eval.final_n"], seed=0)
    for k in ("seen/scene_all", "held_out/scene_all", "seen/r_precision", "held_out/fd_encoder"):
        assert again[k] == pytest.approx(final[k], rel=1e-5, abs=1e-6), k
