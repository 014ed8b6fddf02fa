"""The one HTML page of ``ganforge demo``: inline CSS and JavaScript, no fonts or scripts from a network.

It talks to the endpoints of :mod:`ganforge.server`: a sample grid with a seed box, a "new samples"
button, a truncation slider and a class picker (text-to-image runs: a prompt box), and a latent walk between two
seeds for samplers (video runs: clips playing as animations, a walk between contents with the motion held);
an upload box (and the direction or blend) for translators and upscalers.
"""
from __future__ import annotations

import html
import json

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 60rem; color: #222; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } .meta { color: #666; margin-top: 0; }
fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; padding: .8rem 1rem; }
label { margin-right: 1rem; white-space: nowrap; } input[type=number] { width: 7rem; }
button { padding: .35rem .9rem; margin-right: .5rem; cursor: pointer; }
img.out { image-rendering: pixelated; border: 1px solid #ddd; margin-top: .6rem; max-width: 100%; }
#status { color: #a00; min-height: 1.2rem; } .note { color: #666; font-size: .85rem; }
"""

SAMPLER = """
<fieldset><legend>Samples</legend>
<label>seed <input id="seed" type="number" min="0" value="0"></label>
<label>{unit} <input id="n" type="number" min="1" max="{max_n}" value="16"></label>
{classes}{prompt}{truncation}
<button id="generate">generate</button><button id="new">new samples</button>
<div><img id="grid" class="out" alt="generated samples"></div>
<div id="caption" class="note"></div>
</fieldset>
<fieldset><legend>{walk}</legend>
<label>from seed <input id="seed_a" type="number" min="0" value="1"></label>
<label>to seed <input id="seed_b" type="number" min="0" value="2"></label>
<label>frames <input id="frames" type="number" min="2" max="{max_frames}" value="8"></label>
<button id="walk">walk</button>
<div><img id="strip" class="out" alt="latent walk"></div>
</fieldset>
"""

UPLOAD = """
<fieldset><legend>{title}</legend>
<input id="file" type="file" accept="image/*">
{option}
<button id="run">{verb}</button>
<div><img id="result" class="out" alt="result"></div>
</fieldset>
"""

SCRIPT = """
const INFO = {info};
const $ = (id) => document.getElementById(id);
function say(msg) {{ $("status").textContent = msg || ""; }}
async function show(img, response, scale) {{
  if (!response.ok) {{ const e = await response.json(); say(e.error || response.statusText); return false; }}
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  img.onload = () => {{ if (scale) {{ img.style.width = (img.naturalWidth * scale) + "px"; }} }};
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = url; img.src = url; say(""); return true;
}}
function zoom() {{ return Math.max(1, Math.floor(64 / INFO.shape[INFO.shape.length - 1])); }}
function options() {{
  const body = {{}};
  if ($("label") && $("label").value !== "") body.label = parseInt($("label").value);
  if ($("truncation") && $("truncation").dataset.on === "1") body.truncation = parseFloat($("truncation").value);
  return body;
}}
async function generate() {{
  const body = Object.assign({{n: parseInt($("n").value), seed: parseInt($("seed").value)}}, options());
  if ($("prompt") && $("prompt").value.trim() !== "") body.prompt = $("prompt").value.trim();
  const r = await fetch("generate", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                     body: JSON.stringify(body)}});
  if (await show($("grid"), r, zoom())) {{
    const labels = r.headers.get("X-Labels");
    $("caption").textContent = "seed " + body.seed + (labels ? ", classes " + labels.split(",").map(
      (k) => INFO.classes[parseInt(k)]).join(" ") : "") + (body.prompt ? ", prompt: " + body.prompt : "");
    $("grid").dataset.seed = String(body.seed);
  }}
}}
async function walk() {{
  const body = Object.assign({{seeds: [parseInt($("seed_a").value), parseInt($("seed_b").value)],
                               frames: parseInt($("frames").value)}}, options());
  const r = await fetch("interpolate", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                        body: JSON.stringify(body)}});
  await show($("strip"), r, zoom());
}}
async function upload() {{
  const f = $("file").files[0];
  if (!f) {{ say("choose an image first"); return; }}
  const q = INFO.kind === "translator" ? "translate?direction=" + $("direction").value
                                        : "upscale?blend=" + $("blend").value;
  await show($("result"), await fetch(q, {{method: "POST", body: f}}), 0);
}}
window.addEventListener("DOMContentLoaded", () => {{
  if (INFO.kind === "sampler") {{
    $("generate").onclick = generate;
    $("new").onclick = () => {{ $("seed").value = Math.floor(Math.random() * 1e9); generate(); }};
    $("walk").onclick = walk;
    if ($("label")) $("label").onchange = generate;
    if ($("prompt")) $("prompt").onkeydown = (ev) => {{ if (ev.key === "Enter") generate(); }};
    if ($("truncation")) $("truncation").oninput = () => {{
      $("truncation").dataset.on = "1"; $("psi").textContent = $("truncation").value; }};
    if ($("truncation")) $("truncation").onchange = generate;
    generate();
  }} else {{
    $("run").onclick = upload;
  }}
}});
"""


def render(info: dict) -> str:
    """The page for a run's ``/info``."""
    e = html.escape
    if info["kind"] == "sampler":
        classes = ""
        if info["classes"]:
            opts = "".join(f'<option value="{i}">{e(str(c))}</option>' for i, c in enumerate(info["classes"]))
            classes = f'<label>class <select id="label"><option value="">any</option>{opts}</select></label>'
        prompt = ('<label>prompt <input id="prompt" type="text" size="40" placeholder="a sentence; empty: the '
                  'training captions"></label>' if info.get("prompts") else "")
        truncation = ""
        if info["truncation"] == "w":
            truncation = ('<label>truncation &psi; <input id="truncation" type="range" min="0" max="1" step="0.05" '
                          'value="1"> <span id="psi">1</span></label>')
        elif info["truncation"] == "z":
            truncation = ('<label>truncation <input id="truncation" type="range" min="0.1" max="3" step="0.1" '
                          'value="3"> <span id="psi">off</span></label>')
        clips = "frames" in info  # a video run: samples are clips, played as animations
        body = SAMPLER.format(max_n=info["limits"]["n"], max_frames=info["limits"]["frames"], classes=classes,
                              prompt=prompt, truncation=truncation, unit="clips" if clips else "images",
                              walk=f"Walk between two contents, the first seed's motion held ({info['frames']}-frame "
                                   "clips)" if clips else "Latent walk between two seeds")
    elif info["kind"] == "translator":
        opts = "".join(f'<option value="{d}">{d}</option>' for d in info["directions"])
        body = UPLOAD.format(title="Translate an image", verb="translate",
                             option=f'<label>direction <select id="direction">{opts}</select></label>')
    else:
        body = UPLOAD.format(title=f"Upscale an image x{info['scale']}", verb="upscale",
                             option='<label>blend <input id="blend" type="range" min="0" max="1" step="0.1" '
                                    'value="1"></label><span class="note">0: PSNR-oriented, 1: GAN</span>')
    title = f"ganforge demo: {info['recipe']} on {info['data']}"
    script = SCRIPT.format(info=json.dumps({k: v for k, v in info.items() if k != "model_card"}).replace("</", "<\\/"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>{e(title)}</h1>
<p class="meta">run {e(info['run'])} &middot; id {e(str(info['run_id']))} &middot; ganforge {e(info['ganforge'])}.
Everything made here is generated; saved images carry ganforge's provenance metadata.</p>
<div id="status" role="alert"></div>
{body}
<script>{script}</script></body></html>
"""
