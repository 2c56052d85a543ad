"""Render the README's plan pictures: the bundled synthetic L4 planned with the default device,
its 3D scene (semi-transparent bone, zones coloured by clearance) and the simulated AP and
lateral fluoroscopy of the recommended path.

Run from the repository root: python examples/render_plan.py [--out examples] [--level L4]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from bvn_plan import Vertebra, plan_level
from bvn_plan.coordinates import RAS
from bvn_plan.viz import FluoroSettings, ScenePlan, SceneView, render_scene_png, simulate_fluoro_views

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
    render_scene_png(vertebra, level_plan.landmarks, out / f"{stem}_scene.png", ScenePlan([best.path], [best.lesion], best.check),
                     SceneView(transparent=True))
    views = simulate_fluoro_views(vertebra, level_plan.landmarks, [best.path], FluoroSettings(pedicle=best.side, pixel_mm=0.25))
    for view in ("ap", "lateral"):
        views[view].save_png(out / f"{stem}_fluoro_{view}.png")
    print(f"{args.level}: {best.side} {best.approach}, verdict {best.verdict}; pictures in {out}")


if __name__ == "__main__":
    main()
