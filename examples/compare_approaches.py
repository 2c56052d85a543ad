"""Transpedicular against extrapedicular at each treatable level (L3-S1) of the bundled synthetic
spine: both planned on both sides by the planner, the better side of each shown side by side,
seen from above, with the checker's verdict and the numbers that decide between them.

Usage: python examples/compare_approaches.py [--levels L3 L4 L5 S1] [--out DIR]

With ``--out`` each level goes to DIR/compare_<level>.png (left: curved transpedicular, right:
extrapedicular) and the table to DIR/summary.txt; without, each level opens a window per approach.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bvn_plan import Vertebra, find_anatomy, plan_level
from bvn_plan.levels import TREATABLE_LEVELS
from bvn_plan.planning import PASS, SEGMENTAL_ARTERY_PREVALENCE
from bvn_plan.viz import ScenePlan, SceneView, add_caption, build_scene, scene_markers, scene_picture, write_png

ROOT = Path(__file__).resolve().parents[1]
APPROACHES = ("transpedicular", "extrapedicular")
#: One panel (width, height in pixels); the level's picture puts the two panels side by side.
PANEL = (1500, 900)


def better_side(level_plan, approach: str):
    """The approach's plan on the better side (a pass before a warning, then the higher score), or
    None with the reasons both sides were blocked."""
    results = [r for r in level_plan.results if r.approach == approach]
    plans = [r.plan for r in results if r.plan is not None]
    if not plans:
        return None, [f"{r.side}: {'; '.join(r.blocked)}" for r in results]
    return max(plans, key=lambda p: (p.verdict == PASS, p.score_mm)), []


def caption(level: str, approach: str, plan, blocked: list[str]) -> tuple[str, list[str]]:
    if plan is None:
        return f"{level} {approach}: NO SAFE PLAN", blocked
    check, n = plan.check, plan.numbers
    lines = [f"introducer {n['introducer_medial_angle_deg']:.0f} deg medial, "
             f"{n['introducer_craniocaudal_angle_deg']:.0f} deg cranio-caudal"
             + (f"; cannula arc {n['arc_angle_deg']:.0f} deg" if "arc_angle_deg" in n else ""),
             f"tip {plan.tip_to_terminus_mm:.1f} mm from the terminus; lesion "
             f"{check.clearances['spinal_canal:lesion'].clearance_mm:.1f} mm from the canal",
             f"smallest clearance beyond its margin {plan.min_slack_mm:.1f} mm; "
             f"Gertzbein-Robbins grade {check.gertzbein_robbins_grade}"]
    if check.verdict != PASS:
        lines += [f"- {r}" for r in check.reasons]
    if (approach == "extrapedicular" and level in SEGMENTAL_ARTERY_PREVALENCE
            and not any("Liu 2019" in r for r in check.reasons)):
        lines.append(f"segmental arteries cross the extrapedicular puncture zone in "
                     f"{SEGMENTAL_ARTERY_PREVALENCE[level]:.0f}% at {level} (Liu 2019)")
    return f"{level} {plan.side} {approach}: verdict {plan.verdict.upper()}", lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", nargs="+", default=list(TREATABLE_LEVELS), help="levels to compare")
    parser.add_argument("--out", type=Path, help="write PNGs and summary.txt here instead of opening windows")
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    table = [f"{'level':6}{'approach':16}{'side':7}{'verdict':9}{'slack mm':>9}{'tip mm':>8}{'lesion-canal mm':>17}"]
    for level in (x.upper() for x in args.levels):
        vertebra = Vertebra.load(ROOT / "meshes" / f"{level}.ply", level=level, frame="RAS")
        level_plan = plan_level(vertebra, find_anatomy(vertebra), approaches=APPROACHES)
        panels = []
        for approach in APPROACHES:
            plan, blocked = better_side(level_plan, approach)
            title, lines = caption(level, approach, plan, blocked)
            colour = "darkred" if plan is None else {"pass": "darkgreen", "warn": "darkorange"}.get(plan.verdict,
                                                                                                     "darkred")
            shown = ScenePlan([plan.path], [plan.lesion], plan.check) if plan else ScenePlan()
            plotter = build_scene(vertebra, level_plan.landmarks, shown,
                                  SceneView("axial", transparent=True, off_screen=args.out is not None, window_size=PANEL))
            add_caption(plotter, title, lines, colour=colour)
            if args.out is None:
                plotter.show()
            else:
                panels.append(scene_picture(plotter, level_plan.landmarks,
                                            scene_markers(vertebra, level_plan.landmarks, shown)))
                plotter.close()
            table.append(f"{level:6}{approach:16}" + (
                f"{plan.side:7}{plan.verdict:9}{plan.min_slack_mm:9.1f}{plan.tip_to_terminus_mm:8.1f}"
                f"{plan.check.clearances['spinal_canal:lesion'].clearance_mm:17.1f}" if plan else "-      no plan"))
        if panels:
            divider = np.zeros((panels[0].shape[0], 4, 3), np.uint8)
            write_png(np.hstack([panels[0], divider, panels[1]]), args.out / f"compare_{level}.png")
        print(table[-2], table[-1], sep="\n")
    if args.out:
        (args.out / "summary.txt").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
