"""Ground truth of a synthetic vertebra: what a measurement on the finished mesh gives.

* frame: identity at the body centre; its superior axis is the normalised bisector
  ``superior_endplate.normal - inferior_endplate.normal`` (exactly +z, the wedge being symmetric);
* endplates: the rim planes (flat outside the central concave zone), normals out of the body;
* pedicles: isthmus width/height from slicing the final mesh perpendicular to the pedicle axis
  at the isthmus (the narrowest section: the tube flares both ways); axis = tube axis
  (posterior -> anterior); body junction = where the axis meets the body mesh;
* posterior wall, anterior wall, basivertebral foramen (midline, mid-height of the posterior
  wall): ray casts on the final body mesh; terminus per :class:`TerminusParameters`;
* canal: ``canal_centroid`` is the volume centroid of the canal mesh;
* morphometry: the LevelMorphometry names measured this way (canal width along the transverse
  line through the isthmus centres, canal depth on the midline through the canal centroid;
  anterior, middle and posterior body heights: chords of the body mesh along z at the anatomy's
  ``HEIGHT_POSITIONS`` of the mid-sagittal depth, as :func:`bvn_plan.anatomy.morphometry.body_heights`);
* face labels: per face, the part (:data:`PART_NAMES`) whose primitive is nearest.

All in the vertebra frame (mm).
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..anatomy.morphometry import HEIGHT_POSITIONS
from ..coordinates import AnatomicalFrame
from ..errors import InputError
from ..geometry.crossings import line_crossings
from ..geometry.vectors import cross3, perpendicular_part
from ..landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from .parameters import SyntheticParameters
from .shapes import Layout

#: Names of the per-face part labels of the vertebra mesh (index = label value).
PART_NAMES = ("body", "left_pedicle", "right_pedicle", "posterior_arch", "sacral_ala")


def _ray_hits(mesh: trimesh.Trimesh, origin, direction) -> np.ndarray:
    """Distances (mm, sorted) along the ray from ``origin`` at which it crosses ``mesh``."""
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    locs, _, _ = mesh.ray.intersects_location([origin], [direction], multiple_hits=True)
    if len(locs) == 0:
        return np.array([])
    return np.sort((locs - origin) @ direction)


def pedicle_section(mesh: trimesh.Trimesh, centre, axis, transverse) -> tuple[float, float]:
    """Width and height (mm) of the mesh's cross-section loop around ``centre`` in the plane normal
    to ``axis``: extents along ``transverse`` and along ``axis x transverse`` (model coords, mm).

    Raises :class:`InputError` when no closed loop of the section surrounds ``centre``.
    """
    centre, axis = np.asarray(centre, float), np.asarray(axis, float) / np.linalg.norm(axis)
    e1 = perpendicular_part(transverse, axis)
    e1 /= np.linalg.norm(e1)
    e2 = cross3(axis, e1)
    segments, face_ids = trimesh.intersections.mesh_plane(mesh, axis, centre, return_faces=True)
    if len(segments) == 0:
        raise InputError("the plane through the pedicle centre does not cut the mesh")
    cut = set(face_ids.tolist())
    adjacency = [pair for pair in mesh.face_adjacency if pair[0] in cut and pair[1] in cut]
    index = {f: i for i, f in enumerate(face_ids.tolist())}
    edges = np.array([[index[a], index[b]] for a, b in adjacency]).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(face_ids),) * 2)
    _, labels = connected_components(graph, directed=False)
    flat = (segments - centre) @ np.vstack([e1, e2]).T           # (n, 2, 2) in-plane coordinates
    for label in np.unique(labels):
        seg = flat[labels == label]
        a, b = seg[:, 0], seg[:, 1]
        crosses = (a[:, 1] > 0) != (b[:, 1] > 0)
        x_at = a[:, 0] + (0 - a[:, 1]) * (b[:, 0] - a[:, 0]) / np.where(crosses, b[:, 1] - a[:, 1], 1.0)
        if np.count_nonzero(crosses & (x_at > 0)) % 2 == 1:
            pts = seg.reshape(-1, 2)
            return float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1]))
    raise InputError("no closed cross-section of the mesh surrounds the pedicle centre")


def _group_fields(points: np.ndarray, lay: Layout) -> np.ndarray:
    """Field of each part of PART_NAMES at ``points`` (mm); +inf where the level lacks the part."""
    out = np.full((len(points), len(PART_NAMES)), np.inf)
    out[:, 0] = lay.body.field(points)
    out[:, 1] = lay.pedicles["left"].field(points)
    out[:, 2] = lay.pedicles["right"].field(points)
    for prim, part in lay.arch:
        col = PART_NAMES.index(part)
        out[:, col] = np.minimum(out[:, col], prim.field(points))
    return out


def part_labels(mesh: trimesh.Trimesh, lay: Layout) -> np.ndarray:
    """Per-face part label (index into PART_NAMES): the part whose primitive is nearest."""
    return np.argmin(_group_fields(mesh.triangles_center, lay), axis=1).astype(np.int8)


def _face_regions(mesh: trimesh.Trimesh, labels: np.ndarray, lay: Layout, p: SyntheticParameters) -> dict:
    """Face indices per landmarks.FACE_REGIONS: body faces split by their normal (endplates within
    ~50 deg of the endplate normals; posterior wall facing backwards between the pedicles;
    anterior cortex facing forwards; the rest lateral cortex) plus pedicles and arch."""
    normals, centres = mesh.face_normals, mesh.triangles_center
    body = labels == 0
    sup = body & (normals @ lay.sup_plane.normal > 0.65) & (centres[:, 2] > 0)
    inf = body & (normals @ lay.inf_plane.normal > 0.65) & (centres[:, 2] < 0)
    rest = body & ~sup & ~inf
    post = rest & (normals[:, 1] < -0.5) & (np.abs(centres[:, 0]) < p.morph.canal_width_mm / 2 + 2.0)
    ant = rest & ~post & (normals[:, 1] > 0.5)
    lateral = rest & ~post & ~ant
    regions = {"superior_endplate": sup, "inferior_endplate": inf, "posterior_wall": post,
               "anterior_cortex": ant, "lateral_cortex": lateral, "left_pedicle": labels == 1,
               "right_pedicle": labels == 2, "posterior_arch": (labels == 3) | (labels == 4)}
    return {name: np.flatnonzero(mask) for name, mask in regions.items()}


def ground_truth(p: SyntheticParameters, lay: Layout, mesh: trimesh.Trimesh, body_mesh: trimesh.Trimesh,
                 canal_mesh: trimesh.Trimesh, labels: np.ndarray, terminus: TerminusParameters) -> Landmarks:
    """The landmarks of the generated ``mesh`` (vertebra frame, mm) measured as the module
    docstring says, from its ``body_mesh``, ``canal_mesh`` and part ``labels``. Raises
    :class:`InputError` when a pedicle's isthmus section meets another part."""
    m = p.morph
    # Mid-sagittal walls at mid-height, by ray casts on the body alone.
    hits_back = _ray_hits(body_mesh, [0.0, 0.0, 0.0], [0.0, -1.0, 0.0])
    hits_front = _ray_hits(body_mesh, [0.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    y_post, y_ant = -hits_back[0], hits_front[0]

    if p.level == "S1" and terminus.s1_body_centre:
        target = np.array([0.0, (y_post + y_ant) / 2, 0.0])
    else:
        y_t = y_post + terminus.depth_fraction * (y_ant - y_post)
        bottom, top = lay.rim_z(y_t)
        target = np.array([0.0, y_t, bottom + terminus.height_fraction * (top - bottom)])

    pedicles, widths, heights = {}, [], []
    for side, tube in lay.pedicles.items():
        d, e1 = tube.axes[0], tube.axes[1]
        width, height = pedicle_section(mesh, tube.centre, d, e1)
        # A transverse-process root (tp_root_span_mm) is meant to meet the isthmus section.
        if p.tp_root_span_mm == 0 and (abs(width - tube.width_mm) > 1.0 or abs(height - m.pedicle_height_mm) > 1.0):
            raise InputError(f"synthetic {p.level}: the {side} pedicle isthmus section ({width:.1f} x "
                             f"{height:.1f} mm) meets another part; choose values nearer the level defaults")
        widths.append(width)
        heights.append(height)
        junction = tube.centre + d * _ray_hits(body_mesh, tube.centre, d)[0]
        pedicles[side] = Pedicle(side, tube.centre.copy(), d.copy(), width, height, junction)

    canal_centroid = np.asarray(canal_mesh.center_mass, dtype=float)
    ped_c = lay.pedicles["right"].centre
    across = _ray_hits(mesh, [0.0, ped_c[1], ped_c[2]], [1.0, 0.0, 0.0])[0] + \
        _ray_hits(mesh, [0.0, ped_c[1], ped_c[2]], [-1.0, 0.0, 0.0])[0]
    c0 = [0.0, canal_centroid[1], canal_centroid[2]]
    ap = _ray_hits(mesh, c0, [0.0, 1.0, 0.0])[0] + _ray_hits(mesh, c0, [0.0, -1.0, 0.0])[0]
    body_heights = {}   # as the anatomy: chords along z on the AP chord through the body's centroid
    centre = np.array([0.0, 0.0, body_mesh.center_mass[2]])
    depth = line_crossings(body_mesh.vertices, body_mesh.faces, centre, np.array([0.0, 1.0, 0.0]))
    for where, share in HEIGHT_POSITIONS.items():
        at = centre + [0.0, depth.min() + share * np.ptp(depth), 0.0]
        crossings = line_crossings(body_mesh.vertices, body_mesh.faces, at, np.array([0.0, 0.0, 1.0]))
        body_heights[f"body_height_{where}_mm"] = float(np.ptp(crossings))   # a body is convex along z
    measured = {
        "body_width_mm": float(np.ptp(body_mesh.vertices[:, 0])),
        "body_depth_mm": float(y_ant - y_post),
        **body_heights,
        "pedicle_width_mm": float(np.mean(widths)),
        "pedicle_height_mm": float(np.mean(heights)),
        "pedicle_transverse_angle_deg": m.pedicle_transverse_angle_deg,
        "pedicle_sagittal_angle_deg": m.pedicle_sagittal_angle_deg,
        "canal_width_mm": float(across),
        "canal_depth_mm": float(ap),
    }
    regions = _face_regions(mesh, labels, lay, p)
    wall = mesh.triangles_center[regions["posterior_wall"]]
    wall = wall[trimesh.proximity.closest_point(body_mesh, wall)[1] < 0.25]     # off the fillets
    wall = wall[np.lexsort(np.round(wall.T, 3))][:: max(1, len(wall) // 200)]
    return Landmarks(
        level=p.level,
        frame=AnatomicalFrame.identity(),
        midsagittal_plane=Plane(np.zeros(3), np.array([1.0, 0.0, 0.0])),
        superior_endplate=lay.sup_plane,
        inferior_endplate=lay.inf_plane,
        posterior_wall_points=wall,
        canal_centroid=canal_centroid,
        pedicles=pedicles,
        basivertebral_foramen=np.array([0.0, y_post, 0.0]),
        bvn_terminus=target,
        morphometry=measured,
        confidence={},
        canal_mesh=canal_mesh,
        body_mesh=body_mesh,
        face_regions=regions,
        terminus=terminus,
    )
