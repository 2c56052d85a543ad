"""Anatomy recognition: the landmarks of one vertebra mesh in any pose.

:func:`find_anatomy` turns a :class:`~bvn_plan.vertebra.Vertebra` (mm, model coordinates) into
:class:`~bvn_plan.landmarks.Landmarks`, one finding after the other:

1. the provisional frame: mid-sagittal plane, canal axis, anterior and superior senses
   (:mod:`bvn_plan.anatomy.frame`);
2. on a solid voxel grid in that frame (:mod:`bvn_plan.geometry.voxelize`): the canal lumen
   (:mod:`bvn_plan.anatomy.canal`), the body, its endplates (whose bisector refines the superior
   axis) and posterior wall (:mod:`bvn_plan.anatomy.body`), the basivertebral foramen and BVN
   terminus (:mod:`bvn_plan.anatomy.terminus`), the pedicles (:mod:`bvn_plan.anatomy.pedicles`),
   the canal volume, and the morphometry checked against the level priors
   (:mod:`bvn_plan.anatomy.morphometry`).

Every finding gets a confidence in 0..1. Refusals (:class:`AnatomyError`) are for meshes that are
not one vertebra and for findings too doubtful to plan on. All coordinates are millimetres;
``Landmarks`` are in model coordinates.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from ..coordinates import AnatomicalFrame
from ..errors import AnatomyError, BvnPlanWarning
from ..landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from ..levels import LEVELS, morphometry as level_prior
from .body import ENDPLATE_NORMAL_DEG, cut_body, find_body, posterior_wall_confidence, posterior_wall_faces
from .canal import END_WINDOW_MM, canal_volume, find_lumen
from .confidence import REFUSE_BELOW
from .frame import FrameFinding, LocalVertebra, check_single_piece, find_frame, s1_without_alae
from .identity import NumberingIdentity, check_identity, score_identity, score_numbering
from .morphometry import grade_body, measure_morphometry, morphometry_confidence
from .pedicles import find_pedicles
from .terminus import find_terminus

#: Voxel size (mm) of the fine grid the findings are measured on.
VOXEL_MM = 0.5
#: Body faces facing anteriorly (normal . anterior) / laterally (|normal . right|) beyond this are
#: anterior / lateral cortex [A].
REGION_FACING_COS = 0.4
#: Findings without which no plan is made: below REFUSE_BELOW, find_anatomy refuses.
CRITICAL = ("frame", "canal", "body", "superior_endplate", "inferior_endplate", "bvn_terminus")


#: How many stages find_anatomy reports through ``progress`` (the steps of a progress bar).
ANATOMY_STAGES = 6


def find_anatomy(vertebra, terminus: TerminusParameters = TerminusParameters(),
                 progress: Callable[[str], None] | None = None) -> Landmarks:
    """Find the landmarks of ``vertebra`` (any pose, mm) and return them.

    ``terminus`` places the BVN terminus (depth and height fractions, S1 body centre);
    ``progress``, if given, is called with the name of each stage as it starts (dense meshes take
    about a minute per million faces). Raises :class:`AnatomyError` when the mesh is not a single
    vertebra or when the frame, the canal, the body or the endplates are too doubtful to plan on;
    :class:`~bvn_plan.anatomy.identity.LevelMismatchError` when the shape fits another level grossly
    better than its label (unless ``vertebra.trust_level``).
    """
    progress = progress or (lambda stage: None)
    progress("checking the surface is one piece")
    mesh = vertebra.mesh
    level = vertebra.level or "L4"
    notes: list[str] = []
    if vertebra.level is None:
        notes.append("no level given: L4 morphometry priors used for plausibility checks")
    check_single_piece(mesh)
    oriented = find_frame(mesh, vertebra.patient_frame, notes, progress)
    without_alae = s1_without_alae(mesh, oriented.frame, level)
    if without_alae:
        notes.append("S1 without sacral alae (a label of the S1 segment alone): the surface ends "
                     "lateral to the pedicles, so they read narrower than the S1 pedicles of a whole "
                     "sacrum; paths are checked against this surface, which lies inside the bone")
    found = _measure(mesh, oriented, level, terminus, notes, progress, without_alae)
    found.confidence.update(oriented.confidences)
    if vertebra.level is not None:  # the label's identity, judged before any doubt about the anatomy
        found.identity = score_identity(level, found.morphometry, bool(oriented.window),
                                        s1_without_alae(mesh, oriented.frame, "S1"))
        notes += check_identity(found.identity, vertebra.trust_level)
    notes += morphometry_confidence(found, level, without_alae)
    notes += grade_body(found, level)
    found.confidence["bvn_terminus"] = min(found.confidence[k] for k in (
        "frame", "canal", "body", "superior_endplate", "inferior_endplate"))
    doubtful = {k: v for k, v in found.confidence.items() if v < REFUSE_BELOW and k in CRITICAL}
    if doubtful:
        raise AnatomyError("anatomy too doubtful to plan on: " + ", ".join(
            f"{k} confidence {v:.2f}" for k, v in sorted(doubtful.items())) + ". " + "; ".join(notes))
    found.notes = notes
    for message in notes:  # the warning names its level (a case plans several at once); the note sits in it
        warnings.warn(f"{level}: {message}", BvnPlanWarning, stacklevel=2)
    return found


def find_numbering(vertebrae: dict, spine_levels: Sequence[str] = ()) -> NumberingIdentity:
    """Measure every L1-S1 vertebra of a case (``vertebrae``: label -> :class:`~bvn_plan.vertebra.Vertebra`)
    with its label trusted, and score their numbering together (:func:`~bvn_plan.anatomy.identity.
    score_numbering`; ``spine_levels``: every vertebra the input labels, superior to inferior). Each
    level's own notes come when it is planned; a level whose anatomy is refused weighs nothing."""
    identities = {}
    for label, vertebra in vertebrae.items():
        if label not in LEVELS:
            continue
        trusted = copy.copy(vertebra)
        trusted.trust_level = True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BvnPlanWarning)
                identities[label] = find_anatomy(trusted).identity
        except AnatomyError:
            continue
    return score_numbering(identities, spine_levels)


def _measure(mesh: trimesh.Trimesh, oriented: FrameFinding, level: str, terminus: TerminusParameters,
             notes: list[str], progress: Callable[[str], None], without_alae: bool) -> Landmarks:
    """Every finding measured in the provisional frame of ``oriented``; returns Landmarks in model
    coords. ``without_alae``: an S1 segment without its alae (its pedicles have no lateral mass)."""
    progress("canal, body and endplates")
    window, prior = oriented.window, level_prior(level)
    vertebra = LocalVertebra.of(mesh, oriented.frame, VOXEL_MM)
    if window:  # whole sacrum: keep the top (S1) segment only
        grid = vertebra.grid
        zs = grid.axis_coordinates(2)
        top = zs[np.nonzero(grid.solid.any(axis=(0, 1)))[0]].max()
        grid.solid = grid.solid & (zs >= top - END_WINDOW_MM)[None, None, :]
        notes.append(f"a whole sacrum: only its top {END_WINDOW_MM:.0f} mm (the S1 segment) was analysed")
    lumen = find_lumen(vertebra.grid)
    body = find_body(vertebra, lumen, window, prior, notes)
    refined = body.endplates.refined_axes()
    found = find_terminus(vertebra, body, refined[1], level, terminus)
    progress("pedicles")
    pedicles = find_pedicles(vertebra, lumen, not without_alae, notes)
    wall_faces = posterior_wall_faces(vertebra, lumen, body.endplates, pedicles.faces)
    confidence = {"canal": lumen.confidence, **body.endplates.confidence, "body": body.confidence,
                  **pedicles.confidence, "posterior_wall": posterior_wall_confidence(wall_faces)}

    progress("canal volume and morphometry")
    # Canal volume: the lumen (plus margin) between the endplate planes at the posterior wall; the
    # canal centroid is the lumen's own (without the safety margin of the canal volume).
    canal_z = body.endplates.z_at(lumen.wall_y)
    canal_local = canal_volume(lumen.mask, vertebra.grid, canal_z)
    canal_centroid = np.array([*lumen.centre_xy, (canal_z[0] + canal_z[1]) / 2])
    morph = {**pedicles.morphometry, **measure_morphometry(vertebra, lumen, body, found, canal_centroid, window)}
    body_local = cut_body(vertebra, lumen.wall_y, window, prior)
    regions = _face_regions(vertebra, body, wall_faces, pedicles.faces, lumen.wall_y)

    # Everything back to model coordinates; the origin is the body centre on the mid-sagittal plane.
    frame = oriented.frame
    to_model, rot = frame.to_model, frame.rotation
    origin = to_model(np.array([[0.0, body.centre[1], found.mid_z]]))[0]
    fr = AnatomicalFrame(origin, refined[0] @ rot, refined[1] @ rot, refined[2] @ rot, frame.handedness_known)

    def plane_model(point, normal):
        return Plane(to_model(point[None])[0], frame.direction_to_model(normal))

    def point_model(point):
        return to_model(point[None])[0]

    planes = body.endplates.planes
    return Landmarks(
        level=level, frame=fr, midsagittal_plane=Plane(origin.copy(), fr.right.copy()),
        superior_endplate=plane_model(*planes["superior_endplate"]),
        inferior_endplate=plane_model(*planes["inferior_endplate"]),
        posterior_wall_points=to_model(vertebra.centroids[wall_faces]),
        canal_centroid=point_model(canal_centroid),
        pedicles={side: Pedicle(side, point_model(p.isthmus_centre), frame.direction_to_model(p.axis),
                                p.width_mm, p.height_mm, point_model(p.body_junction))
                  for side, p in pedicles.found.items()},
        basivertebral_foramen=point_model(found.foramen),
        bvn_terminus=point_model(found.terminus),
        morphometry=morph, confidence=confidence,
        canal_mesh=trimesh.Trimesh(to_model(canal_local.vertices), canal_local.faces, process=True),
        body_mesh=trimesh.Trimesh(to_model(body_local.vertices), body_local.faces, process=True),
        face_regions=regions, terminus=terminus,
    )


def _face_regions(vertebra: LocalVertebra, body, wall_faces: np.ndarray, pedicle_faces: dict,
                  wall_y: float) -> dict:
    """Face indices per landmarks.FACE_REGIONS (vertebra frame): the endplates, posterior wall and
    pedicles as found; the other body faces split by their normals into anterior and lateral
    cortex; everything else behind the posterior wall (``wall_y``) is the posterior arch."""
    normals, centroids = vertebra.normals, vertebra.centroids
    body_faces = np.nonzero(body.face_mask)[0]
    cos_lim = np.cos(np.radians(ENDPLATE_NORMAL_DEG))
    regions = {
        "superior_endplate": body.endplates.faces["superior_endplate"],
        "inferior_endplate": body.endplates.faces["inferior_endplate"],
        "posterior_wall": wall_faces,
        "anterior_cortex": body_faces[normals[body_faces, 1] > REGION_FACING_COS],
        "lateral_cortex": body_faces[(np.abs(normals[body_faces, 0]) > REGION_FACING_COS)
                                     & (np.abs(normals[body_faces, 2]) < cos_lim)],
        "left_pedicle": pedicle_faces.get("left", np.zeros(0, int)),
        "right_pedicle": pedicle_faces.get("right", np.zeros(0, int)),
    }
    taken = np.zeros(len(centroids), bool)
    for faces in regions.values():
        taken[faces] = True
    regions["lateral_cortex"] = regions["lateral_cortex"][~np.isin(regions["lateral_cortex"], regions["anterior_cortex"])]
    regions["posterior_arch"] = np.nonzero((centroids[:, 1] < wall_y) & ~taken)[0]
    return regions


def landmark_meshes(vertebra, landmarks: Landmarks | None = None) -> dict[str, trimesh.Trimesh]:
    """The canal volume, the body and the posterior-wall surface patch of ``vertebra`` as meshes
    (mm, model coordinates). Finds the anatomy first if no ``landmarks`` are given."""
    found = landmarks or find_anatomy(vertebra)
    wall = vertebra.mesh.submesh([found.face_regions["posterior_wall"]], append=True)
    return {"canal": found.canal_mesh, "body": found.body_mesh, "posterior_wall": wall}


def export_landmark_meshes(vertebra, folder, file_type: str = "stl", landmarks: Landmarks | None = None) -> list:
    """Write :func:`landmark_meshes` to ``folder`` as ``<level>_<name>.<file_type>`` in the input
    file's own coordinates and units (the same frame as the input mesh). Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, mesh in landmark_meshes(vertebra, landmarks).items():
        out = mesh.copy()
        out.apply_scale(1.0 / vertebra.scale_to_mm)
        path = folder / f"{vertebra.level or 'vertebra'}_{name}.{file_type}"
        out.export(path)
        paths.append(path)
    return paths


def anatomy_report(vertebra, terminus: TerminusParameters = TerminusParameters(),
                   landmarks: Landmarks | None = None) -> dict:
    """Every landmark of ``vertebra`` in millimetres (model coordinates) and in the input file's
    own coordinates and units, with the frame stated, the morphometry (mm, degrees), the
    confidences (0..1) and the notes. Finds the anatomy first (with ``terminus``) if no ``landmarks``
    are given."""
    found = landmarks or find_anatomy(vertebra, terminus)
    points = {
        "bvn_terminus": found.bvn_terminus,
        "basivertebral_foramen": found.basivertebral_foramen,
        "canal_centroid": found.canal_centroid,
        "body_centre": found.frame.origin,
        "superior_endplate_point": found.superior_endplate.point,
        "inferior_endplate_point": found.inferior_endplate.point,
    }
    for side, p in found.pedicles.items():
        points[f"{side}_pedicle_isthmus_centre"] = p.isthmus_centre
        points[f"{side}_pedicle_body_junction"] = p.body_junction
    directions = {
        "right": found.frame.right, "anterior": found.frame.anterior, "superior": found.frame.superior,
        "midsagittal_normal": found.midsagittal_plane.normal,
        "superior_endplate_normal": found.superior_endplate.normal,
        "inferior_endplate_normal": found.inferior_endplate.normal,
    }
    for side, p in found.pedicles.items():
        directions[f"{side}_pedicle_axis"] = p.axis_direction
    frame = (f"{vertebra.patient_frame} patient frame of the input file" if vertebra.patient_frame
             else "model coordinates of the input file (no patient frame given)")
    return {
        "source": vertebra.source,
        "level": found.level,
        "input_units": vertebra.input_units,
        "frame": frame,
        "handedness_known": found.frame.handedness_known,
        "landmarks_mm": {k: np.round(v, 3).tolist() for k, v in points.items()},
        "landmarks_input": {k: np.round(vertebra.to_input_units(v), 6).tolist() for k, v in points.items()},
        "directions": {k: np.round(v, 5).tolist() for k, v in directions.items()},
        "pedicle_isthmus_mm": {side: {"width": round(p.isthmus_width_mm, 2), "height": round(p.isthmus_height_mm, 2)}
                               for side, p in found.pedicles.items()},
        "morphometry": {k: round(float(v), 2) for k, v in found.morphometry.items()},
        "confidence": {k: round(float(v), 3) for k, v in found.confidence.items()},
        "notes": list(found.notes),
    }
