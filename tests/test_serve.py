"""ganforge serve: the HTTP API (bounded input, 4xx errors, no stack traces), micro-batching, report pages."""
import asyncio
import io

import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

import ganforge
from ganforge.cli import main
from ganforge.server import MicroBatcher, create_app


@pytest.fixture(scope="module")
def cgan(cgan_run):
    return cgan_run  # shared read-only (conftest)


def png_of(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="png")
    return buf.getvalue()


def test_generate_info_health_and_errors(cgan):
    g = ganforge.load(cgan)
    with TestClient(create_app(g, max_n=32)) as c:
        assert c.get("/health").json() == {"status": "ok", "generate_requests": 0, "generator_passes": 0}
        info = c.get("/info").json()
        assert info["kind"] == "sampler" and info["classes"][7] == "7" and "# Model card" in info["model_card"]
        r = c.post("/generate", json={"n": 16, "seed": 3, "label": 7})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-labels"] == \
            ",".join(["7"] * 16)
        img = Image.open(io.BytesIO(r.content))
        assert img.size == (4 * 10 + 2, 4 * 10 + 2) and img.text["ganforge:seed"] == "3"  # 8 px images + padding
        r = c.post("/generate", json={"n": 5, "seed": 9, "format": "json"}).json()
        want, labels = g.draw(5, 9)
        assert r["labels"] == labels.tolist() and (torch.tensor(r["images"]) - want).abs().max() < 1e-4
        for body, status, says in [({"n": 0}, 400, "'n' must be an integer from 1 to 32"),
                                   ({"n": 33}, 400, "from 1 to 32"), ({"label": 10}, 400, "from 0 to 9"),
                                   ({"seed": -1}, 400, "'seed' must be"), ({"truncation": "x"}, 400, "a number"),
                                   ({"truncation": -1}, 400, "truncation=-1.0 is not allowed"),
                                   ({"bogus": 1}, 400, "unknown field(s) 'bogus'"), ([1, 2], 400, "JSON object")]:
            r = c.post("/generate", json=body)
            assert r.status_code == status and says in r.json()["error"], (body, r.text)
        assert "not valid JSON" in c.post("/generate", content=b"{nope").json()["error"]
        r = c.post("/upscale", content=png_of(Image.new("RGB", (8, 8))))
        assert r.status_code == 404 and "use /generate" in r.json()["error"]
        r = c.post("/interpolate", json={"seeds": [1, 2, 3], "frames": 4})
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size[1] == 12
        assert c.post("/interpolate", json={"seeds": [1]}).status_code == 400


def test_internal_errors_are_500_without_a_trace(cgan, monkeypatch):
    g = ganforge.load(cgan)
    monkeypatch.setattr(MicroBatcher, "_run", lambda self, jobs: 1 / 0)
    with TestClient(create_app(g)) as c:
        r = c.post("/generate", json={"n": 2})
        assert r.status_code == 500 and r.json() == {"error": "internal error"}


def test_concurrent_requests_are_batched_and_match_single_draws(cgan):
    from ganforge.inference.drawing import latents

    g = ganforge.load(cgan)

    async def go():
        b = MicroBatcher(g, __import__("concurrent.futures").futures.ThreadPoolExecutor(1))
        b.start()
        jobs = [latents(g.recipe, g.spec, 3, seed) for seed in range(8)]
        out = await asyncio.gather(*(b.submit(z, y, None) for z, y in jobs))
        await b.stop()
        return b, out

    b, out = asyncio.run(go())
    assert b.batched_jobs == 8 and b.passes < 8  # several requests per generator pass
    for seed, x in enumerate(out):
        assert torch.allclose(x, g.draw(3, seed)[0], atol=1e-6)


def test_upscale_endpoint_and_pixel_limit(sr_run, monkeypatch):
    import ganforge.server as server

    with TestClient(create_app(ganforge.load(sr_run))) as c:
        r = c.post("/upscale?blend=0.5", content=png_of(Image.new("RGB", (10, 6), (200, 30, 30))))
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (40, 24)
        assert c.post("/upscale?blend=2", content=b"").status_code == 400
        assert "not a readable image" in c.post("/upscale", content=b"garbage").json()["error"]
        monkeypatch.setattr(server, "MAX_UPSCALE_PIXELS", 50)
        r = c.post("/upscale", content=png_of(Image.new("RGB", (10, 6))))
        assert r.status_code == 413 and "at most 50 pixels" in r.json()["error"]


def test_report_pages_are_self_contained(cgan, tmp_path, capsys):
    import shutil

    cgan = shutil.copytree(cgan, tmp_path / "cgan")  # the report is written again below
    html = (cgan / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    for part in ("Samples over training", "Health", "Measured at the end of training", "Model card", "Config"):
        assert part in html
    card = (cgan / "MODEL_CARD.md").read_text()
    for part in ("## Data", "## Intended use", "## Metrics at the end of training", "## Ethics", "Synthetic faces"):
        assert part in card
    (cgan / "report.html").unlink()
    assert main(["report", str(cgan)]) == 0 and (cgan / "report.html").is_file()
    assert main(["serve", str(cgan), "--port", "0"]) == 2 and "--port 0 is not allowed" in capsys.readouterr().err
