"""A guided step-through of one case on the bundled synthetic spine: anatomy -> target ->
trajectory -> lesion -> safety check, one captioned picture per step.

Usage: python examples/teach_case.py [--level L4] [--out DIR]

With ``--out`` each step is rendered off-screen to DIR/step<N>_<name>.png (caption in the image)
and DIR/index.html shows them in order; without, each step opens a window (close it for the next).
The mesh is meshes/<level>.ply (vertebra frame, RAS-like, mm); the anatomy is found by the
recogniser, the path planned by the planner (curved transpedicular) and judged by the checker.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
from pathlib import Path

import numpy as np

from bvn_plan import Vertebra, find_anatomy, plan_level
from bvn_plan.landmarks import TerminusParameters
from bvn_plan.lesion import EllipsoidLesion
from bvn_plan.planning import SafetyZones
from bvn_plan.viz import (MARKER_COLOUR_NAMES, ScenePlan, SceneView, add_caption, build_scene, scene_markers,
                          scene_picture, write_png)

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (1600, 960)
#: Where the recogniser puts the terminus (its defaults).
TERMINUS = TerminusParameters()


def steps(level: str):
    """(file stem, title, caption lines, build_scene arguments) of every step."""
    vertebra = Vertebra.load(ROOT / "meshes" / f"{level}.ply", level=level, frame="RAS")
    lm = find_anatomy(vertebra, TERMINUS)
    zones = SafetyZones(vertebra.mesh, lm)
    level_plan = plan_level(vertebra, lm, approaches=("transpedicular",), zones=zones)
    plan = level_plan.recommendation
    m, n = lm.morphometry, plan.numbers if plan else {}
    canal_margin = level_plan.rules["canal_lesion"].margin_mm
    terminus_to_canal = float(zones.canal.exact(lm.bvn_terminus[None])[0])
    def scene(camera="oblique", transparent=False, **plan):
        return vertebra, lm, ScenePlan(**plan), SceneView(camera, transparent)

    yield ("anatomy", f"Step 1 - anatomy of {level}", [
        f"The recogniser found the vertebra frame, the endplates (blue), the posterior wall (orange) and the "
        f"spinal canal (purple). Body depth {m.get('body_depth_mm', np.nan):.1f} mm, width "
        f"{m.get('body_width_mm', np.nan):.1f} mm; pedicle isthmus right {lm.pedicles['right'].isthmus_width_mm:.1f} mm, "
        f"left {lm.pedicles['left'].isthmus_width_mm:.1f} mm wide.",
        (f"The basivertebral nerve enters through the basivertebral foramen ({MARKER_COLOUR_NAMES['foramen']} dot) "
         "in the middle of the posterior wall." if level != "S1" else
         "S1 has no basivertebral foramen: its nerves enter the body laterally.")], scene())

    yield ("target", "Step 2 - the target is a zone, not a point", [
        f"The BVN terminus ({MARKER_COLOUR_NAMES['terminus']} dot) is placed on the mid-sagittal plane, {100 * TERMINUS.depth_fraction:.0f}% of the "
        f"body depth in front of the posterior wall, {100 * TERMINUS.height_fraction:.0f}% of the way up between the "
        "endplates [assumption, docs/sources.md].",
        f"It lies {terminus_to_canal:.1f} mm from the canal. The lesion must cover it AND keep {canal_margin:.0f} mm "
        "from the canal, so the probe tip goes a few mm in front of it.",
        "Seen from above (anterior up)."], scene("axial", transparent=True))

    if plan is None:
        yield ("no_plan", "No safe transpedicular plan", level_plan.recommendation_reasons, scene())
        return
    arc = (f"then the curved cannula (blue) bends {n['arc_angle_deg']:.0f} deg on a {n['arc_radius_mm']:.0f} mm "
           f"radius toward the midline" if "arc_angle_deg" in n else "straight to the tip")
    yield ("trajectory", f"Step 3 - trajectory: {plan.side} transpedicular", [
        f"The introducer (grey) enters the {plan.side} pedicle {n['introducer_medial_angle_deg']:.0f} deg medial and "
        f"{n['introducer_craniocaudal_angle_deg']:.0f} deg cranio-caudal, {n['depth_introducer_in_bone_mm']:.0f} mm "
        f"through bone to just past the posterior wall; {arc}.",
        f"Tip on the lateral view: {n['lateral_tip_depth_percent']:.0f}% of the body depth from the posterior wall."],
        scene(transparent=True, paths=[plan.path]))

    lesion: EllipsoidLesion = plan.lesion
    yield ("lesion", "Step 4 - the lesion", [
        f"The bipolar probe heats an ellipsoid about {2 * lesion.radius_mm:.0f} mm across and "
        f"{2 * lesion.half_length_mm:.0f} mm along the probe, centred {level_plan.device.lesion_offset_mm:.0f} mm behind "
        "the tip [assumption: device profile].",
        f"Its tip is {plan.tip_to_terminus_mm:.1f} mm from the terminus, which lies {plan.terminus_depth_mm:.1f} mm inside "
        f"the lesion; the lesion covers {100 * plan.zone_coverage:.0f} % of the target zone (posterior third to half of "
        "the body, midline, mid-height). Seen from the patient's left (anterior on the left)."],
        scene("lateral", transparent=True, paths=[plan.path], lesions=[lesion]))

    check = plan.check
    ranked = sorted(check.clearances.values(), key=lambda c: c.clearance_mm)[:3]
    yield ("safety", f"Step 5 - safety check: verdict {check.verdict.upper()}", [
        f"Lesion to canal {check.clearances['spinal_canal:lesion'].clearance_mm:.1f} mm (margin {canal_margin:.0f} mm); "
        f"Gertzbein-Robbins grade {check.gertzbein_robbins_grade}; "
        f"{'intraosseous' if check.intraosseous else 'LEAVES THE BONE'} from bone entry to tip.",
        "Smallest clearances: " + "; ".join(f"{c.zone.replace('_', ' ')} ({c.applies_to}) {c.clearance_mm:.1f} mm"
                                             for c in ranked),
        "Zone colours: clearance from instrument and lesion (red close, green far)."],
        scene("axial", transparent=True, paths=[plan.path], lesions=[lesion], clearances=check))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", default="L4", help="level of the bundled spine (L1-S1)")
    parser.add_argument("--out", type=Path, help="write PNGs and index.html here instead of opening windows")
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (stem, title, lines, scene) in enumerate(steps(args.level.upper()), start=1):
        vertebra, landmarks, plan, view = scene
        plotter = build_scene(vertebra, landmarks, plan, dataclasses.replace(view, off_screen=args.out is not None, window_size=WINDOW))
        add_caption(plotter, title, lines)
        if args.out is None:
            plotter.show()
            continue
        name = f"step{number}_{stem}.png"
        write_png(scene_picture(plotter, landmarks, scene_markers(vertebra, landmarks, plan)), args.out / name)
        plotter.close()
        written.append((name, title, lines))
        print(f"{name}: {title}")
    if written:
        body = "".join(f"<h2>{html.escape(t)}</h2>{''.join(f'<p>{html.escape(x)}</p>' for x in lines)}"
                       f'<img src="{n}" width="900">' for n, t, lines in written)
        (args.out / "index.html").write_text(f"<!doctype html><meta charset='utf-8'><title>bvn-plan: {args.level}"
                                             f"</title><h1>A case step by step ({args.level})</h1>{body}")


if __name__ == "__main__":
    main()
