"""ganforge demo in a real headless Chromium (Debian's package; .ci/run installs it): the page loads,
a click draws new samples, the class picker changes the class, nothing is fetched from a network; a video
run's page plays its clips (looping GIFs); a text-to-image run's page draws what its prompt box says.
Screenshots go to test-artifacts/ (kept from the test run, not committed)."""
import contextlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)


@contextlib.contextmanager
def chromium_page():
    """A page of a headless Chromium (Debian's), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    import ganforge

    run = ganforge.train(dict(TINY, recipe="cgan", steps=2, out=str(tmp_path_factory.mktemp("demo") / "run")),
                         progress=False)
    yield from _serve(run)


def _serve(run):
    """The demo of ``run`` on a free local port, served from a thread while the tests use it: yields its URL."""
    import uvicorn

    import ganforge
    from ganforge.server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ganforge.load(run), demo=True), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the demo server did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


def test_demo_page_in_chromium(demo_url):
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs Debian's chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    fetched = []
    with chromium_page() as page:
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(demo_url)
        page.wait_for_function("document.getElementById('grid').naturalWidth > 0", timeout=20000)
        assert page.text_content("#caption").startswith("seed 0")
        first = page.get_attribute("#grid", "src")
        page.screenshot(path=str(ARTIFACTS / "demo-loaded.png"))

        with page.expect_response("**/generate") as clicked:
            page.click("#new")
        assert clicked.value.status == 200
        page.wait_for_function(f"document.getElementById('grid').src !== {json.dumps(first)} && "
                               "document.getElementById('grid').naturalWidth > 0")
        new_seed = page.input_value("#seed")
        assert new_seed != "0" and json.loads(clicked.value.request.post_data)["seed"] == int(new_seed)

        with page.expect_response("**/generate") as picked:
            page.select_option("#label", "7")
        assert json.loads(picked.value.request.post_data)["label"] == 7
        assert set(picked.value.headers["x-labels"].split(",")) == {"7"}
        page.wait_for_function("document.getElementById('caption').textContent.includes('classes 7 7')")

        with page.expect_response("**/interpolate") as walked:
            page.click("#walk")
        assert walked.value.status == 200
        page.wait_for_function("document.getElementById('strip').naturalWidth > 0")
        page.screenshot(path=str(ARTIFACTS / "demo-class-7.png"), full_page=True)
    assert all(u.startswith(demo_url) or u.startswith("blob:") for u in fetched), fetched


def _served_tiny_run(tmp_path_factory, name: str, cfg: dict):
    """The demo of a tiny run of ``cfg`` (no end-of-training measurement): yields its URL."""
    import ganforge

    out = str(tmp_path_factory.mktemp(name) / "run")
    yield from _serve(ganforge.train(dict(cfg, out=out, **{"eval.final_n": 0}), progress=False))


@pytest.fixture(scope="module")
def video_demo_url(tmp_path_factory):
    from test_video import TINY_VIDEO

    yield from _served_tiny_run(tmp_path_factory, "video-demo", dict(TINY_VIDEO, steps=2))


def test_video_demo_plays_clips_in_chromium(video_demo_url):
    with chromium_page() as page:
        with page.expect_response("**/generate") as drawn:
            page.goto(video_demo_url)
        assert drawn.value.headers["content-type"] == "image/gif"
        page.wait_for_function("document.getElementById('grid').naturalWidth > 0", timeout=20000)
        assert "clips" in page.text_content("body") and "motion held" in page.text_content("body")
        with page.expect_response("**/interpolate") as walked:
            page.click("#walk")
        assert walked.value.headers["content-type"] == "image/gif"
        page.wait_for_function("document.getElementById('strip').naturalWidth > 0")
        page.screenshot(path=str(ARTIFACTS / "demo-video.png"), full_page=True)


@pytest.fixture(scope="module")
def text_demo_url(tmp_path_factory):
    from test_text2image import TINY_T2I

    yield from _served_tiny_run(tmp_path_factory, "text-demo", dict(TINY_T2I, steps=3))


def test_text_demo_draws_the_prompt_in_chromium(text_demo_url):
    with chromium_page() as page:
        page.goto(text_demo_url)
        page.wait_for_function("document.getElementById('grid').naturalWidth > 0", timeout=20000)
        first = page.get_attribute("#grid", "src")
        page.fill("#prompt", "a big red circle above a small blue square")
        with page.expect_response("**/generate") as drawn:
            page.press("#prompt", "Enter")
        assert drawn.value.status == 200
        assert json.loads(drawn.value.request.post_data)["prompt"] == "a big red circle above a small blue square"
        page.wait_for_function(f"document.getElementById('grid').src !== {json.dumps(first)}")
        assert "prompt: a big red circle above" in page.text_content("#caption")
        page.fill("#prompt", "a purple hexagon")  # words the run never saw: the server's one-line error is shown
        with page.expect_response("**/generate") as refused:
            page.press("#prompt", "Enter")
        assert refused.value.status == 400
        page.wait_for_function("document.getElementById('status').textContent.length > 0")
        assert "purple" in page.text_content("#status")
        page.screenshot(path=str(ARTIFACTS / "demo-text.png"), full_page=True)
