"""Render the bundled synthetic spine L1-S1 (meshes/) as assembled, into a PNG for the README.

Usage: python examples/render_spine.py [--meshes meshes] [--out examples]   (writes OUT/spine_L1_S1.png)

Reads each level's PLY (its own vertebra frame, mm) and its placement from meshes/manifest.json,
and draws three off-screen views: left lateral, posterior oblique and anterior. Run
``bvn-plan synth`` (or ``bvn_plan.synthetic.write_default_spine``) first if meshes/ is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyvista as pv
import trimesh

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"L1": "#e9dcc4", "L2": "#e3d2b3", "L3": "#ddc9a3", "L4": "#d6bf94", "L5": "#cfb585", "S1": "#c2a677"}
#: (title, camera direction from the focal point, view-up) in the spine frame (+x right, +y anterior).
VIEWS = [("left lateral", (-1.0, 0.0, 0.0), (0, 0, 1)),
         ("posterior oblique", (0.9, -1.0, 0.35), (0, 0, 1)),
         ("anterior", (0.0, 1.0, 0.1), (0, 0, 1))]


def assembled(meshes_dir: Path) -> dict[str, pv.PolyData]:
    """Each level's surface moved into the assembled spine frame (mm)."""
    manifest = json.loads((meshes_dir / "manifest.json").read_text())
    out = {}
    for level, entry in manifest["levels"].items():
        mesh = trimesh.load(meshes_dir / entry["files"]["mesh"], process=False)
        mesh.metadata.clear()
        mesh.apply_transform(np.array(entry["placement"]))
        out[level] = pv.wrap(mesh)
    return out


def render(meshes_dir: Path, out: Path) -> None:
    parts = assembled(meshes_dir)
    centre = np.mean([p.center for p in parts.values()], axis=0)
    plotter = pv.Plotter(off_screen=True, shape=(1, len(VIEWS)), window_size=(1500, 800), border=False)
    for i, (title, direction, up) in enumerate(VIEWS):
        plotter.subplot(0, i)
        plotter.set_background("white")
        for level, surface in parts.items():
            plotter.add_mesh(surface, color=COLOURS[level], smooth_shading=True, specular=0.2)
        plotter.add_text(title, font_size=11, color="black")
        plotter.camera_position = [centre + 650 * np.asarray(direction) / np.linalg.norm(direction), centre, up]
        plotter.reset_camera_clipping_range()
    out.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(out))
    plotter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meshes", type=Path, default=ROOT / "meshes", help="folder of the synthetic spine")
    parser.add_argument("--out", type=Path, default=ROOT / "examples",
                        help="folder for spine_L1_S1.png (created if missing), as the other examples take")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    picture = args.out / "spine_L1_S1.png"
    render(args.meshes, picture)
    print(f"wrote {picture}")


if __name__ == "__main__":
    main()
