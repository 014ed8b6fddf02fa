"""``RUN/MODEL_CARD.md``: what a trained model is, what it is for, how it measured, and what to watch for.

Written at the end of training and by ``ganforge report``, from the run directory alone
(config.yaml, run.json, final_metrics.json), so an old run gets one too.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config import TrainConfig
from ..io import write_text

FINAL_FILE = "final_metrics.json"
CARD_FILE = "MODEL_CARD.md"

# where each bundled dataset comes from, and what its images show (for the data and ethics sections)
SOURCES = {
    "digits": "the UCI optical recognition of handwritten digits set as shipped by scikit-learn (1,797 8x8 images "
              "written by 43 people)",
    "faces100": "100 grey face photographs from Labeled Faces in the Wild, as shipped by scikit-image; LFW photos "
                "are of public figures, collected from news sites without their individual consent",
    "sr": "scikit-image's sample photographs (astronaut, coffee, Hubble deep field, IHC, motorcycle, retina), "
          "held out: chelsea, rocket",
    "edges2photos": "scikit-image's sample colour photographs and their Canny edges",
    "gray2color": "scikit-image's sample colour photographs",
    "digits2typeset": "scikit-learn's handwritten digits and digits typeset by Pillow",
    "stacked-digits": "scikit-learn's handwritten digits, three per image",
}
def read_final(run_dir: Path) -> dict | None:
    path = Path(run_dir) / FINAL_FILE
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def metrics_lines(final: dict | None) -> list[str]:
    if not final:
        return ["No end-of-training measurement was kept (eval.final_n=0, or the run stopped early); "
                "`ganforge eval RUN` measures it."]
    rows = [f"| {k} | {v:.4g} |" for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    proto = final.get("protocol", {})
    card = ", ".join(f"{k}={v}" for k, v in proto.items() if not isinstance(v, (dict, list)))
    return ["| measure | value |", "| --- | --- |", *rows, "", f"Protocol: {card}."]


def card_text(run_dir: Path, cfg: TrainConfig, meta: dict) -> str:
    from ..data import DATASETS
    from ..recipes import RECIPES, recipe_class

    recipe, data = recipe_class(cfg.recipe), cfg.data.split(":")[0]
    final = read_final(run_dir)
    described = DATASETS.describe(data) if data in DATASETS.list() else cfg.data
    source = SOURCES.get(data, "the user's own images (" + cfg.data + "); their provenance and licence are the "
                         "user's to state")
    faces = data in ("faces100", "celeba", "ffhq") or "face" in cfg.data.lower()
    ethics = [
        "- **Disclosure.** Everything this model makes is synthetic. ganforge writes provenance metadata into every "
        "PNG it saves and an invisible watermark into colour images of 256 px and more (`ganforge verify IMAGE` reads "
        "both); keep them, and say that an image is generated wherever it is shown.",
        "- **Consent.** A generative model can reproduce its training images. Train on images whose subjects and "
        "owners agreed to such use; `ganforge eval RUN --metrics memorization` measures how close samples come to "
        "training images.",
        "- **Synthetic faces.** " + ("This run was trained on photographs of real people: its samples can resemble "
                                     "them. Do not present them as real people, and do not use them to impersonate, "
                                     "deceive or harass anyone."
                                     if faces else "Face models (and any model trained on people) can produce "
                                     "likenesses of real persons; the same rules apply: no impersonation, no "
                                     "deception, disclose."),
        "- **Bias.** The samples reflect the training data's coverage: under-represented classes or styles come out "
        "less often or worse (see recall, coverage and the class balance above).",
    ]
    limits = [
        f"- Trained for {meta.get('steps', cfg.steps)} steps at {meta.get('shape', '?')} on a "
        f"{'CPU' if meta.get('device', 'cpu') == 'cpu' else meta.get('device')}; a small model for small images, "
        "not a production generator.",
        "- Numbers above come from one protocol on one reference set; they are comparable between ganforge runs "
        "measured the same way, not with published FIDs on Inception features.",
    ]
    if recipe.pipeline.kind == "sampler" and recipe.adversarial:
        limits.append("- GANs can drop modes: check recall and coverage (and per-class shares for labelled data) "
                      "before using samples as training data.")
    limits += [f"- {caveat}" for caveat in recipe.pipeline.caveats]
    lines = [
        f"# Model card: {Path(run_dir).name}",
        "",
        f"- **Model:** `{cfg.recipe}`: {RECIPES.describe(cfg.recipe)}",
        f"- **Run:** `{run_dir}` (id `{meta.get('run_id', Path(run_dir).name)}`), ganforge {meta.get('ganforge', '?')}",
        f"- **Training:** {meta.get('steps', cfg.steps)} steps, batch {cfg.batch_size}, seed {cfg.seed}"
        + (f", loss `{cfg.loss}`" if recipe.adversarial else ""),
        *([f"- **Fine-tuned from:** `{meta['init_from']['run']}` at step {meta['init_from']['step']}"
           + (f", D's first {cfg.freeze_d} layers frozen (FreezeD)" if cfg.freeze_d else "")]
          if meta.get("init_from") else []),
        *([f"- **Distilled from:** `{meta['distilled_from']['teacher']}` into a generator of base width "
           f"{cfg.net.generator_width} (pixel weight {cfg.distill.pixel:g}, feature weight {cfg.distill.features:g})"]
          if meta.get("distilled_from") else []),
        "",
        "## Data",
        "",
        f"`{cfg.data}`: {described}",
        "",
        f"Source: {source}.",
        "",
        "## Intended use",
        "",
        recipe.intended_use(cfg).capitalize() + ". Not intended for: depicting real, identifiable "
        "people; content presented as real; decisions about people.",
        "",
        "## Metrics at the end of training",
        "",
        *metrics_lines(final),
        "",
        "## Limitations",
        "",
        *limits,
        "",
        "## Ethics and responsible use",
        "",
        *ethics,
        "",
    ]
    return "\n".join(lines)


def write_model_card(run_dir: Path, cfg: TrainConfig, meta: dict) -> Path:
    path = Path(run_dir) / CARD_FILE
    write_text(path, card_text(run_dir, cfg, meta))
    return path
