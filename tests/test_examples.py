"""The teaching examples run off-screen (``--out``) as a user would run them, and their pictures
are not blank, carry their captions in the verdict colour, and say what the checker found: the
"what goes wrong" breach fails with the grade its depth deserves, the lesion near the canal fails
on the canal margin without a breach. The three scripts run at once to keep the wall time down."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bvn_plan.planning import RuleSet, gertzbein_robbins_grade

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RUNS = {
    "teach": ["teach_case.py", "--level", "L4"],
    "wrong": ["what_goes_wrong.py", "--level", "L4"],
    "compare": ["compare_approaches.py", "--levels", "L5"],
}


def green(pixels: np.ndarray) -> np.ndarray:
    """Pixels of a pass caption (darkgreen, 0 100 0, anti-aliased on white)."""
    return (pixels[:, 1] > 70) & (pixels[:, 0] < 40) & (pixels[:, 2] < 60)


def red(pixels: np.ndarray) -> np.ndarray:
    """Pixels of a fail caption (darkred, 139 0 0)."""
    return (pixels[:, 0] > 100) & (pixels[:, 1] < 30) & (pixels[:, 2] < 30)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Each example's output folder after running it off-screen (all three at once)."""
    root = tmp_path_factory.mktemp("examples")
    running = {}
    for name, args in RUNS.items():
        out = root / name
        running[name] = (out, subprocess.Popen([sys.executable, str(EXAMPLES / args[0]), *args[1:], "--out", str(out)],
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (out, process) in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
        results[name] = out
    return results


def picture(path: Path) -> np.ndarray:
    assert path.is_file(), f"missing picture {path}"
    image = np.asarray(Image.open(path).convert("RGB"))
    # not blank: a scene on the white background covers a good part of the picture in many shades
    covered = np.mean(np.any(image < 235, axis=2))
    assert covered > 0.1 and image.std() > 20, f"{path.name} looks blank ({covered:.0%} covered)"
    return image


def caption_pixels(image: np.ndarray) -> np.ndarray:
    """Pixels of the top-left corner, where the caption is written."""
    return image[:60, :400].reshape(-1, 3).astype(int)


def test_teach_case_writes_every_step_with_its_caption(outputs):
    out = outputs["teach"]
    names = ["step1_anatomy", "step2_target", "step3_trajectory", "step4_lesion", "step5_safety"]
    for name in names:
        corner = caption_pixels(picture(out / f"{name}.png"))
        assert np.mean(corner.max(axis=1) < 80) > 0.01, f"{name}: no dark caption text in the corner"
    page = (out / "index.html").read_text()
    assert [m for m in re.findall(r'src="([^"]+)\.png"', page)] == names
    assert "Step 5 - safety check: verdict PASS" in page


def test_what_goes_wrong_captions_carry_the_checkers_verdicts(outputs):
    out = outputs["wrong"]
    planned, breach, near = (out / "verdicts.txt").read_text().split("\n\n")[:3]
    assert "verdict PASS" in planned.splitlines()[0]

    assert "verdict FAIL" in breach.splitlines()[0]
    depth = float(re.search(r"enters the spinal canal by ([\d.]+) mm", breach).group(1))
    grade = int(re.search(r"Gertzbein-Robbins grade (\d)", breach).group(1))
    # the example picks the first entry move that breaches by more than 2 mm; the caption rounds to 0.1 mm
    assert depth >= 2.0 and grade == gertzbein_robbins_grade(depth) >= 2

    assert "verdict FAIL" in near.splitlines()[0]
    found = re.search(r"ablation zone comes within ([\d.]+) mm of the spinal canal, inside its ([\d.]+) mm margin", near)
    # the example stops at the first pull-back inside half the margin; the caption rounds to 0.1 mm
    assert float(found.group(1)) <= 0.5 * float(found.group(2))
    assert "Gertzbein-Robbins grade 0 (medial breach 0.0 mm)" in near

    assert green(caption_pixels(picture(out / "1_planned.png"))).sum() > 50
    for name in ("2_medial_breach", "3_lesion_near_canal"):
        assert red(caption_pixels(picture(out / f"{name}.png"))).sum() > 50, f"{name}: caption not in fail red"


def test_compare_approaches_shows_both_approaches_per_level(outputs):
    out = outputs["compare"]
    image = picture(out / "compare_L5.png")
    half = image.shape[1] // 2
    for panel in (image[:, :half - 2], image[:, half + 2:]):
        assert np.mean(np.any(panel < 235, axis=2)) > 0.1  # each approach drawn in its own panel
    rows = [line.split() for line in (out / "summary.txt").read_text().splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("L5", "transpedicular"), ("L5", "extrapedicular")]
    for row in rows:
        if row[2] != "-":
            assert row[3] in ("pass", "warn")  # a plan is never a failing path
            # every shown lesion keeps the canal margin (the table rounds to 0.1 mm)
            assert float(row[6]) >= RuleSet()["canal_lesion"].margin_mm - 0.05


def test_teach_case_names_the_colours_the_pictures_draw(outputs):
    """The caption's colour words are the ones the markers are drawn in, untinted: the terminus dot
    in step 2 is seen through translucent bone and endplate but drawn on top in its own colour."""
    from matplotlib.colors import to_rgb

    from bvn_plan.viz import MARKER_COLOUR_NAMES, MARKER_COLOURS

    palette = ("red", "green", "yellow", "purple", "white", "blue", "cyan", "orange", "black")
    for kind, hex_colour in MARKER_COLOURS.items():
        nearest = min(palette, key=lambda name: np.linalg.norm(np.subtract(to_rgb(name), to_rgb(hex_colour))))
        assert nearest == MARKER_COLOUR_NAMES[kind], f"{kind} is drawn {hex_colour}, nearest {nearest}"
    page = (outputs["teach"] / "index.html").read_text()
    assert f"The BVN terminus ({MARKER_COLOUR_NAMES['terminus']} dot)" in page
    image = picture(outputs["teach"] / "step2_target.png")
    terminus = np.rint(np.multiply(to_rgb(MARKER_COLOURS["terminus"]), 255)).astype(int)
    assert np.count_nonzero(np.all(image == terminus, axis=2)) >= 30


def test_readme_plan_pictures_are_not_stale():
    """examples/L4_plan_pictures.json, written with the README's plan pictures, still says what a
    fresh plan of the bundled L4 shows (the plan and every label's text, numbers included)."""
    import json
    import warnings

    from bvn_plan import Vertebra, plan_level

    sys.path.insert(0, str(EXAMPLES))
    try:
        from render_plan import MESHES, shown_in_pictures
    finally:
        sys.path.remove(str(EXAMPLES))
    vertebra = Vertebra.load(MESHES / "L4.ply", level="L4", frame="RAS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = shown_in_pictures(vertebra, plan_level(vertebra))
    drawn = json.loads((EXAMPLES / "L4_plan_pictures.json").read_text())
    assert drawn == fresh, "the README's plan pictures are stale: run python examples/render_plan.py"
