"""Render the README's plan pictures: the bundled synthetic L4 planned with the default device,
its 3D scene (semi-transparent bone, zones coloured by clearance) and the simulated AP and
lateral fluoroscopy of the recommended path; and <level>_plan_pictures.json, what the pictures
show (the plan and every label's text), which tests/test_examples.py compares with a fresh plan
so stale README pictures fail CI.

Run from the repository root: python examples/render_plan.py [--out examples] [--level L4]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from bvn_plan import Vertebra, plan_level
from bvn_plan.coordinates import RAS
from bvn_plan.viz import FluoroSettings, ScenePlan, SceneView, render_scene_png, scene_markers, simulate_fluoro_views

MESHES = Path(__file__).resolve().parents[1] / "meshes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="folder for the PNGs")
    parser.add_argument("--level", default="L4", help="level of the bundled spine (L1-S1)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vertebra = Vertebra.load(MESHES / f"{args.level}.ply", level=args.level, frame=RAS)
    level_plan = plan_level(vertebra)
    best = level_plan.recommendation
    if best is None:
        raise SystemExit(f"{args.level}: no safe plan: " + "; ".join(level_plan.recommendation_reasons))
    stem = f"{args.level}_plan"
    shown = ScenePlan([best.path], [best.lesion], best.check)
    render_scene_png(vertebra, level_plan.landmarks, out / f"{stem}_scene.png", shown, SceneView(transparent=True))
    views = simulate_fluoro_views(vertebra, level_plan.landmarks, [best.path], FluoroSettings(pedicle=best.side, pixel_mm=0.25))
    for view in ("ap", "lateral"):
        views[view].save_png(out / f"{stem}_fluoro_{view}.png")
    (out / f"{stem}_pictures.json").write_text(json.dumps(shown_in_pictures(vertebra, level_plan), indent=2) + "\n")
    print(f"{args.level}: {best.side} {best.approach}, verdict {best.verdict}; pictures in {out}")


def shown_in_pictures(vertebra, level_plan) -> dict:
    """What the README pictures show of a level plan: the recommended path and the scene's labels."""
    best = level_plan.recommendation
    shown = ScenePlan([best.path], [best.lesion], best.check)
    return {"level": level_plan.level, "side": best.side, "approach": best.approach, "verdict": best.verdict,
            "labels": list(scene_markers(vertebra, level_plan.landmarks, shown))}


if __name__ == "__main__":
    main()
