"""The HTML report in a real headless browser (Chromium, software WebGL through SwiftShader, no
network): the page loads without console errors, each level's 3D view shows the vertebra, and a
drag turns it (a static picture would not change)."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bvn_plan import Vertebra, plan_level
from bvn_plan.workflow import LevelOutcome, write_report

MESHES = Path(__file__).resolve().parents[1] / "meshes"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Headless, sandbox-free (CI runs as root), nothing fetched, a fresh profile, software WebGL.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-gl=angle", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the bundled synthetic L4, planned (pictures and 3D view)."""
    vertebra = Vertebra.load(MESHES / "L4.ply", level="L4", frame="RAS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recogniser's morphometry notes are not under test
        level_plan = plan_level(vertebra)
    return write_report(tmp_path_factory.mktemp("report") / "report.html", [LevelOutcome.planned(vertebra, level_plan)])


def _pixels(png: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_report_3d_view_loads_shows_the_vertebra_and_turns_when_dragged(report, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install -y chromium (.ci/run does)"
    html = report.read_text()
    assert "<script src" not in html and "http://" not in html.split("<script>", 1)[1]  # all inline, offline
    with sync_playwright() as p:
        # a fresh profile (user data dir) per run
        browser = p.chromium.launch_persistent_context(tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: problems.append(f"network: {r.url}") if not r.url.startswith(
                ("file:", "data:")) else None)
            page.goto(report.as_uri())
            canvas = page.locator("canvas[data-scene]")
            assert canvas.count() == 1
            canvas.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            before = _pixels(canvas.screenshot())
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 40, steps=10)
            page.mouse.up()
            after = _pixels(canvas.screenshot())
            page.mouse.wheel(0, -400)
            zoomed = _pixels(canvas.screenshot())
        finally:
            browser.close()
    assert not problems, problems
    background = np.array([38, 42, 50])
    for image in (before, after):
        drawn = np.abs(image - background).sum(axis=2) > 30
        assert 0.05 < drawn.mean() < 0.8  # something fills a good part of the view, not all of it
        bone = (image[:, :, 0] > 170) & (image[:, :, 0] - image[:, :, 2] > 12)  # the pale yellow bone
        assert bone.mean() > 0.02, f"no bone-coloured pixels ({bone.mean():.1%})"
    changed = np.abs(after - before).sum(axis=2) > 30
    assert changed.mean() > 0.03, "the view did not turn when dragged"
    grown = np.abs(zoomed - background).sum(axis=2) > 30
    assert grown.mean() > 1.2 * (np.abs(after - background).sum(axis=2) > 30).mean()  # the wheel zooms in
