"""``RUN/report.html``: one self-contained page about a run (images embedded, nothing from a network).

The config, the sample grids over training as a strip, loss / metric / health curves, health
events, the end-of-training measurement with its protocol, timings, and the model card. Built from
the run directory alone, at the end of training and by ``ganforge report RUN``.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from ..config import TrainConfig
from ..io import write_text
from .logger import read_log
from .model_card import CARD_FILE, read_final

MAX_STRIP = 12  # training grids shown (evenly spaced, the final one always)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { border: 1px solid #ddd; padding: .2rem .6rem; }
th { background: #f4f4f4; text-align: left; } pre { background: #f7f7f7; padding: .8rem; overflow: auto; }
.strip { display: flex; gap: .6rem; overflow-x: auto; } .strip figure { margin: 0; text-align: center; }
.strip img { height: 160px; image-rendering: pixelated; } figcaption { font-size: .8rem; color: #666; }
img.wide { max-width: 100%; } .warn { color: #a40; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _img(path: Path, cls: str = "") -> str:
    return f'<img class="{cls}" src="{data_uri(path.read_bytes())}" alt="{html.escape(path.name)}">'


def _step_of(path: Path) -> int | None:
    m = re.match(r"step-(\d+)\.png$", path.name)
    return int(m.group(1)) if m else None


def strip(run_dir: Path) -> str:
    """The training grids (samples/step-*.png, then final.png), at most :data:`MAX_STRIP`."""
    grids = sorted((p for p in (run_dir / "samples").glob("step-*.png") if _step_of(p) is not None), key=_step_of)
    if len(grids) > MAX_STRIP - 1:
        idx = [round(i * (len(grids) - 1) / (MAX_STRIP - 2)) for i in range(MAX_STRIP - 1)]
        grids = [grids[i] for i in sorted(set(idx))]
    final = run_dir / "samples" / "final.png"
    cells = [(f"step {_step_of(p)}", p) for p in grids] + ([("final", final)] if final.is_file() else [])
    cells += [(p.stem, p) for p in sorted((run_dir / "samples").glob("final-*.png"))]  # the recipe's other pictures
    if not cells:
        return "<p>No sample grids yet.</p>"
    return '<div class="strip">' + "".join(f"<figure>{_img(p)}<figcaption>{c}</figcaption></figure>"
                                           for c, p in cells) + "</div>"


def curves_png(records: list[dict]) -> bytes | None:
    """Losses, D accuracy, ``Metrics/*`` and ``Health/*`` against step, one panel each group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("losses", [k for k in _keys(records) if k.startswith("Loss/")]),
              ("discriminator accuracy", [k for k in _keys(records) if k == "D/accuracy"]),
              ("metrics during training", [k for k in _keys(records) if k.startswith("Metrics/")
                                           and "baseline" not in k]),
              ("health", [k for k in _keys(records) if k.startswith("Health/")])]
    groups = [(t, ks) for t, ks in groups if len({r["step"] for r in records for k in ks if k in r}) > 1]
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.3), dpi=90, squeeze=False)
    for ax, (title, keys) in zip(axes[0], groups):
        for k in keys:
            pts = [(r["step"], r[k]) for r in records if isinstance(r.get(k), (int, float))]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k.split("/", 1)[1] if "/" in k else k,
                    marker="o" if len(pts) < 12 else None, ms=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _keys(records: list[dict]) -> list[str]:
    return sorted({k for r in records for k in r if k != "step"})


def _usage(cfg: TrainConfig, run_dir: Path) -> str:
    """How to use this kind of run, with its commands in <code>."""
    from ..recipes import recipe_class

    text = html.escape(recipe_class(cfg.recipe).pipeline.example.format(run=run_dir))
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", text)


def health_events(records: list[dict]) -> list[tuple[int, str]]:
    """(step, signal) for every check that raised a ``Health/*`` flag (diversity is a value, not a flag)."""
    return [(r["step"], k.split("/", 1)[1]) for r in records for k, v in r.items()
            if k.startswith("Health/") and k != "Health/diversity" and isinstance(v, (int, float)) and v >= 1]


def advice(events: list[tuple[int, str]]) -> str:
    """What each raised warning means and what to try."""
    from .health import advice_lines

    lines = advice_lines(sorted({k for _, k in events}))
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>" if lines else ""


def table(rows: list[tuple[str, str]], head: tuple[str, str] | None = None) -> str:
    body = "".join(f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td></tr>" for a, b in rows)
    return "<table>" + (f"<tr><th>{head[0]}</th><th>{head[1]}</th></tr>" if head else "") + body + "</table>"


def markdown_html(text: str) -> str:
    """The model card's Markdown (headings, bullets, tables, bold, code, paragraphs) as HTML."""
    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", s)

    out, in_list, rows = [], False, []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-", " "} for c in cells):
                rows.append(cells)
            continue
        if rows:
            out.append("<table>" + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                                           for r in rows) + "</table>")
            rows = []
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    return "\n".join(out)


def report_html(run_dir: Path, cfg: TrainConfig, meta: dict) -> str:
    from ..config import to_yaml

    run_dir = Path(run_dir)
    records = read_log(run_dir)
    final = read_final(run_dir)
    counters = meta.get("counters", {})
    timing = [("steps", meta.get("steps", "?")), ("wall time", f"{counters.get('seconds', 0):.1f} s"),
              ("CPU time", f"{counters.get('cpu_seconds', 0):.1f} s"),
              ("peak memory", f"{counters.get('peak_memory_mb', 0):.0f} MiB"),
              ("images seen", counters.get("images_seen", "?")), ("processes", meta.get("world_size", 1)),
              ("device", meta.get("device", "?"))]
    speed = [r["Timing/img_per_s"] for r in records if isinstance(r.get("Timing/img_per_s"), (int, float))]
    if speed:
        timing.append(("mean speed", f"{sum(speed) / len(speed):.0f} images/s"))
    events = health_events(records)
    curves = curves_png(records)
    card = run_dir / CARD_FILE
    sections = [
        f"<h1>{html.escape(run_dir.name)}: {html.escape(cfg.recipe or '')} on {html.escape(cfg.data)}</h1>",
        f"<p>ganforge {html.escape(str(meta.get('ganforge', '?')))}, run id "
        f"<code>{html.escape(str(meta.get('run_id', run_dir.name)))}</code>. Resume with <code>ganforge train "
        f"--resume {html.escape(str(run_dir))} --steps N</code>; {_usage(cfg, run_dir)}.</p>",
        "<h2>Samples over training</h2>", strip(run_dir),
        "<h2>Curves</h2>", f'<img class="wide" src="{data_uri(curves)}" alt="curves">' if curves else
        "<p>No logged values yet.</p>",
        "<h2>Health</h2>",
        table([(s, k) for s, k in events], ("step", "signal")) + advice(events) if events else
        f"<p>No health warnings in {sum(1 for r in records if 'Health/diversity' in r)} checks.</p>",
        "<h2>Measured at the end of training</h2>",
        table([(k, f"{v:.4g}") for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)],
              ("measure", "value")) + "<p><b>Protocol:</b> " + html.escape(json.dumps(final.get("protocol", {})))
        + "</p>" if final else "<p>Not measured (eval.final_n=0 or the run is unfinished); "
                               "<code>ganforge eval RUN</code> measures it.</p>",
        "<h2>Timings</h2>", table([(a, str(b)) for a, b in timing]),
        "<h2>Model card</h2>", markdown_html(card.read_text()) if card.is_file() else "<p>No model card yet.</p>",
        "<h2>Config</h2>", f"<pre>{html.escape(to_yaml(cfg))}</pre>",
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(run_dir.name)}'
            f"</title><style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def write_pages(run_dir: str | Path) -> Path:
    """MODEL_CARD.md and report.html from the run directory alone; returns report.html's path."""
    from ..runs.rundir import read_meta, read_run
    from .model_card import write_model_card

    run_dir, cfg, spec = read_run(run_dir)
    meta = {"shape": list(spec.shape), **read_meta(run_dir)}
    write_model_card(run_dir, cfg, meta)
    path = run_dir / "report.html"
    write_text(path, report_html(run_dir, cfg, meta))
    return path
