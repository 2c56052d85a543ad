"""What goes wrong: a safe straight transpedicular path on the bundled synthetic spine, then the same
path spoiled twice, each judged by the safety checker (the captions are its verdict and reasons):

1. the plan as the planner made it (passes);
2. a medial breach: the entry moved toward the midline (the tip kept) until the introducer, now too
   sagittal, crosses the medial pedicle wall into the canal by more than 2 mm (Gertzbein-Robbins
   grade 2 or 3);
3. a lesion too close to the canal: the tip pulled back toward the posterior wall until the lesion
   comes within half the canal margin of the canal (no breach).

Usage: python examples/what_goes_wrong.py [--level L4] [--out DIR]

With ``--out`` the pictures go to DIR/<n>_<name>.png (seen from above, anterior up) and the
verdicts to DIR/verdicts.txt; without, each opens a window. The moves use
bvn_plan.planning.adjust.InteractivePlanner, the same code as the interactive window.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bvn_plan import Vertebra, find_anatomy, plan_level
from bvn_plan.planning import InteractivePlanner
from bvn_plan.viz import ScenePlan, SceneView, add_caption, build_scene, scene_markers, scene_picture, write_png

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (1600, 960)
#: Medial moves of the entry (mm, the tip kept) tried in turn for the breach.
SWINGS_MM = np.arange(2.0, 62.0, 2.0)
#: Pull-backs of the tip toward the posterior wall (mm) tried in turn for the lesion.
PULLBACKS_MM = np.arange(0.5, 15.5, 0.5)
#: The lesion shown comes within this fraction of the canal margin of the canal (plainly inside it).
LESION_MARGIN_FRACTION = 0.5
#: The breach shown must be at least this deep (mm): "> 2 mm medial" is the usual significance line.
BREACH_WANTED_MM = 2.0


def cases(level: str):
    """The vertebra and its landmarks, then (file stem, what was done, PlannerUpdate) of the three pictures."""
    vertebra = Vertebra.load(ROOT / "meshes" / f"{level}.ply", level=level, frame="RAS")
    level_plan = plan_level(vertebra, find_anatomy(vertebra), approaches=("transpedicular-straight",))
    plan = level_plan.recommendation
    if plan is None:
        raise SystemExit(f"{level}: no safe straight transpedicular plan to spoil: "
                         + "; ".join(level_plan.recommendation_reasons))
    planner = InteractivePlanner.from_level_plan(vertebra, level_plan)
    yield vertebra, level_plan.landmarks
    frame = level_plan.landmarks.frame
    good = planner.select(plan.approach, plan.side)
    yield "planned", "as planned", good

    medial = frame.direction_to_model(np.array([-1.0 if plan.side == "right" else 1.0, 0.0, 0.0]))
    entry, tip = planner.entry.copy(), planner.target.copy()
    for swing in SWINGS_MM:
        breach = planner.set_entry(entry + swing * medial)
        if breach.check is not None and breach.check.medial_breach_mm > BREACH_WANTED_MM:
            yield "medial_breach", f"entry {swing:.0f} mm nearer the midline", breach
            break
    else:
        raise SystemExit(f"no medial entry move up to {SWINGS_MM[-1]:.0f} mm breaches the medial wall by "
                         f"{BREACH_WANTED_MM} mm")

    planner.select(plan.approach, plan.side)
    direction = (tip - entry) / np.linalg.norm(tip - entry)
    margin = level_plan.rules["canal_lesion"].margin_mm
    for pull in PULLBACKS_MM:
        near = planner.set_target(tip - pull * direction)
        clearance = near.check.clearances["spinal_canal:lesion"].clearance_mm
        if clearance < LESION_MARGIN_FRACTION * margin and near.check.medial_breach_mm == 0:
            yield "lesion_near_canal", f"tip pulled back {pull:.1f} mm along the introducer", near
            break
    else:
        raise SystemExit(f"no pull-back up to {PULLBACKS_MM[-1]:.1f} mm brings the lesion within "
                         f"{LESION_MARGIN_FRACTION * margin:.1f} mm of the canal")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", default="L4", help="level of the bundled spine (L1-S1)")
    parser.add_argument("--out", type=Path, help="write PNGs and verdicts.txt here instead of opening windows")
    args = parser.parse_args(argv)
    level = args.level.upper()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    verdicts = []
    found = cases(level)
    vertebra, landmarks = next(found)
    for number, (stem, done, update) in enumerate(found, start=1):
        title = f"{number}. {level} {update.side} {update.approach}, {done}: verdict {update.verdict.upper()}"
        colour = {"pass": "darkgreen", "warn": "darkorange"}.get(update.verdict, "darkred")
        shown = ScenePlan([update.path], [update.lesion], update.check)
        plotter = build_scene(vertebra, landmarks, shown, SceneView("axial", transparent=True, off_screen=args.out is not None, window_size=WINDOW))
        add_caption(plotter, title, update.caption(), colour=colour)
        verdicts.append("\n".join([title, *update.caption()]))
        if args.out is None:
            plotter.show()
            continue
        picture = scene_picture(plotter, landmarks, scene_markers(vertebra, landmarks, shown))
        write_png(picture, args.out / f"{number}_{stem}.png")
        plotter.close()
        print(verdicts[-1], end="\n\n")
    if args.out:
        (args.out / "verdicts.txt").write_text("\n\n".join(verdicts) + "\n")


if __name__ == "__main__":
    main()
