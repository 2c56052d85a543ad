"""Anatomy recognition: the landmarks of one vertebra mesh in any pose.

:func:`find_anatomy` turns a :class:`~bvn_plan.vertebra.Vertebra` (mm, model coordinates) into
:class:`~bvn_plan.landmarks.Landmarks`:

1. mid-sagittal plane: mirror-symmetry fit of surface samples (:mod:`bvn_plan.anatomy.symmetry`);
2. canal axis: the view in that plane showing the largest hole (:mod:`bvn_plan.anatomy.canal`);
3. anterior: the vertebral body is the thickest bone (largest inscribed sphere), anterior to the
   canal; superior: the pedicles sit in the upper half of the body and the posterior arch hangs
   below it (for a whole sacrum: the end where the S1 canal opening was found); a patient frame
   given by the user fixes the signs instead and is checked against these cues;
4. a solid voxel grid in that frame (:mod:`bvn_plan.geometry.voxelize`) gives the canal lumen, the body,
   the pedicles (:mod:`bvn_plan.anatomy.pedicles`), the endplates (robust planes through the endplate
   faces; their bisector refines the superior axis), the posterior wall and the BVN terminus
   (exact mesh crossings on the mid-sagittal line, :mod:`bvn_plan.geometry.crossings`); morphometry is
   read off the mesh the same way and checked against the level priors (:mod:`bvn_plan.levels`).

Every finding gets a confidence in 0..1. Refusals (:class:`AnatomyError`) are for meshes that are
not one vertebra and for findings too doubtful to plan on. All coordinates are millimetres;
``Landmarks`` are in model coordinates.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import trimesh
from scipy import ndimage

from ..geometry.crossings import gap_around, interval_around, line_crossings
from .canal import END_WINDOW_MM, canal_volume, find_canal_axis, lumen_mask
from ..errors import AnatomyError, BvnPlanWarning
from ..coordinates import AnatomicalFrame, patient_axes
from ..landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from ..levels import morphometry as level_prior
from .pedicles import find_pedicle
from .symmetry import find_symmetry_plane, surface_samples
from ..geometry.voxelize import VoxelGrid, mask_surface, voxelize

#: Surface samples for the symmetry fit (query) and its target (dense), and for the canal search.
SYMMETRY_SAMPLES = 800
SYMMETRY_TARGET_SAMPLES = 6000
SURFACE_SAMPLES = 15000
#: Voxel sizes (mm): coarse grid for orientation cues, fine grid for measurements.
COARSE_VOXEL_MM = 1.0
VOXEL_MM = 0.5
#: Median mirror residual (mm) above which the mid-sagittal plane is doubtful (real lumbar
#: vertebrae: 0.4-0.8 mm on the VHM meshes) and above which it is refused [A].
SYMMETRY_GOOD_MM, SYMMETRY_REFUSE_MM = 1.0, 4.0
#: Ratio of the thickest bone anterior to the canal to the thickest bone behind it; the body is
#: about twice as thick as any posterior element in lumbar vertebrae (VHM: 1.7-2.0) [A].
AP_RATIO_GOOD = 1.4
#: Superior-inferior cue (lumbar): the pedicles sit in the upper half of the body and the posterior
#: arch hangs below its mid-height. Distances (mm) that pick the body (beyond SI_CUE_BODY_MM in
#: front of the canal axis, within SI_CUE_MIDLINE_MM of the midline), the pedicles (the first
#: SI_CUE_PEDICLE_MM behind the posterior wall, lateral of SI_CUE_MIDLINE_MM) and the arch (beyond
#: SI_CUE_ARCH_MM behind the canal axis); a score of SI_CUE_CERTAIN_MM counts as certain. The VHM
#: lumbar levels score 10-12 mm [A: chosen on the VHM meshes].
SI_CUE_MIDLINE_MM, SI_CUE_BODY_MM, SI_CUE_PEDICLE_MM, SI_CUE_ARCH_MM = 6.0, 8.0, 6.0, 10.0
SI_CUE_CERTAIN_MM = 6.0
#: Whole sacrum: confidence in the superior sense taken from the end where the S1 canal shows [A].
SACRUM_SI_CONFIDENCE = 0.6
#: Canal lumen area (mm^2) at and above which the canal finding is fully confident [A].
CANAL_CONFIDENT_AREA_MM2 = 100.0
#: Angle (deg) between an anatomical axis and the given patient frame's beyond which the user is
#: warned: vertebrae tilt up to ~45 deg in a lordotic spine (the sacrum), not more [A].
FRAME_AGREEMENT_DEG = 60.0
#: Endplate faces: normals within this angle (deg) of the superior axis; robust fit drops faces
#: farther than max(ENDPLATE_TRIM_MM, 2.5 MAD) from the plane [A].
ENDPLATE_NORMAL_DEG = 40.0
ENDPLATE_TRIM_MM = 1.5
#: The endplate fit starts from the candidate faces within this distance (mm) of the mid-sagittal plane.
ENDPLATE_SEED_HALF_WIDTH_MM = 10.0
#: Posterior wall faces face backwards (normal . anterior below this) and lie within this depth (mm)
#: in front of the canal lumen [A].
POSTERIOR_WALL_NORMAL = -0.3
POSTERIOR_WALL_DEPTH_MM = 5.0
#: Posterior wall faces at and above which that finding is fully confident.
POSTERIOR_WALL_MIN_FACES = 20
#: Body faces facing anteriorly (normal . anterior) / laterally (|normal . right|) beyond this are
#: anterior / lateral cortex [A].
REGION_FACING_COS = 0.4
#: The canal-depth chord is distrusted when it ends this far (mm) behind the lumen's back edge: it
#: has passed between the laminae [A].
CANAL_CHORD_LEAK_MM = 5.0
#: Depth (mm) under the superior endplate at which the body width is measured [A].
BODY_WIDTH_DEPTH_MM = 2.0
#: A body taller than this multiple of the level's prior height is two vertebrae, not one [A].
MAX_BODY_HEIGHT_RATIO = 1.6
#: Confidence of a pedicle without a visible narrowing (isthmus), found by its corridor of largest
#: clearance: its position and width are measured, its axis is an estimate [A].
NO_NECK_CONFIDENCE = 0.6
#: An implausibly tall pedicle lowers its confidence at most to this share: surfaces that fill the
#: vertebral notches (shrink-wrapped meshes, smoothed segmentations) read tall pedicles, and the
#: height does not limit the introducer's fit as the width does; the safety checker still judges
#: every path on the surface as given [A].
PEDICLE_HEIGHT_CONFIDENCE_FLOOR = 0.5
#: An S1 surface reaching less than this far (mm) beyond each side of the level's body-width prior
#: has no sacral alae: a segmentation label of the S1 segment alone (TotalSegmentator's
#: vertebrae_S1 reaches 5 mm), not a sacrum (whose alae reach 25-35 mm: VHM, synthetic) [A].
ALA_MIN_REACH_MM = 15.0
#: Without the alae an S1 pedicle ends laterally at the label's edge and reads narrower than the
#: published S1 pedicle; that lowers its confidence at most to this share: the width is then a lower
#: bound of the bone's (a path inside it is inside the bone), and the planner still refuses an isthmus
#: narrower than the introducer and judges every path on the surface as given [A].
S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR = 0.5
#: Findings with a confidence below this make find_anatomy refuse (AnatomyError) [A].
REFUSE_BELOW = 0.25
#: Morphometry z-score (against the level prior) at which a measure counts as implausible.
MORPHOMETRY_MAX_Z = 3.0


def find_anatomy(vertebra, terminus: TerminusParameters = TerminusParameters(),
                 progress: Callable[[str], None] | None = None) -> Landmarks:
    """Find the landmarks of ``vertebra`` (any pose, mm) and return them.

    ``terminus`` places the BVN terminus (depth and height fractions, S1 body centre);
    ``progress``, if given, is called with the name of each stage as it starts (dense meshes take
    about a minute per million faces). Raises :class:`AnatomyError` when the mesh is not a single
    vertebra or when the frame, the canal, the body or the endplates are too doubtful to plan on.
    """
    progress = progress or (lambda stage: None)
    progress("checking the surface is one piece")
    mesh = vertebra.mesh
    level = vertebra.level or "L4"
    notes: list[str] = []
    if vertebra.level is None:
        notes.append("no level given: L4 morphometry priors used for plausibility checks")
    _check_single_piece(mesh)
    progress("mid-sagittal plane and canal axis")
    query, _ = surface_samples(mesh, SYMMETRY_SAMPLES, seed=1)
    dense, dense_normals = surface_samples(mesh, SURFACE_SAMPLES, seed=2)

    sym = find_symmetry_plane(query, dense[:SYMMETRY_TARGET_SAMPLES], dense_normals[:SYMMETRY_TARGET_SAMPLES])
    if sym.residual_mm > SYMMETRY_REFUSE_MM:
        raise AnatomyError(
            f"no mirror symmetry: the best mid-sagittal plane leaves a median {sym.residual_mm:.1f} mm "
            "between the surface and its mirror image; this does not look like one vertebra")
    view = find_canal_axis(dense, sym.plane)
    if view is None:
        raise AnatomyError(
            "no vertebral foramen: looking along every direction in the symmetry plane shows no hole "
            "on the midline, so this is not a vertebra (or its canal is not closed by bone)")

    progress("anatomical frame")
    frame, cues = _orient(mesh, sym.plane, view, vertebra.patient_frame, notes)
    without_alae = _s1_without_alae(mesh, frame, level)
    if without_alae:
        notes.append("S1 without sacral alae (a label of the S1 segment alone): the surface ends "
                     "lateral to the pedicles, so they read narrower than the S1 pedicles of a whole "
                     "sacrum; paths are checked against this surface, which lies inside the bone")
    found = _measure(mesh, frame, view.window, level, terminus, notes, progress, without_alae)
    found.confidence.update(cues)
    found.confidence["midsagittal_plane"] = _ramp(sym.residual_mm, SYMMETRY_GOOD_MM, SYMMETRY_REFUSE_MM)
    found.confidence["frame"] = min(cues.values()) * (1.0 if sym.residual_mm <= SYMMETRY_GOOD_MM else 0.7)
    notes += _morphometry_confidence(found, level, without_alae)
    found.confidence["bvn_terminus"] = min(found.confidence[k] for k in (
        "frame", "canal", "body", "superior_endplate", "inferior_endplate"))
    doubtful = {k: v for k, v in found.confidence.items() if v < REFUSE_BELOW and k in _CRITICAL}
    if doubtful:
        raise AnatomyError("anatomy too doubtful to plan on: " + ", ".join(
            f"{k} confidence {v:.2f}" for k, v in sorted(doubtful.items())) + ". " + "; ".join(notes))
    found.notes = notes
    for message in notes:
        warnings.warn(message, BvnPlanWarning, stacklevel=2)
    return found


_CRITICAL = ("frame", "canal", "body", "superior_endplate", "inferior_endplate", "bvn_terminus")


def _ramp(value: float, good: float, bad: float) -> float:
    """1 at or below ``good``, 0 at or above ``bad``, linear between."""
    return float(np.clip((bad - value) / (bad - good), 0.0, 1.0))


def _check_single_piece(mesh: trimesh.Trimesh) -> None:
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        areas = sorted((p.area for p in parts), reverse=True)
        if areas[1] > 0.2 * areas[0]:
            raise AnatomyError(f"the mesh holds {len(parts)} separate pieces: give one vertebra per mesh")


def _s1_without_alae(mesh, frame: AnatomicalFrame, level: str) -> bool:
    """True for an S1 surface no wider (mm, along the frame's right axis) than the level's
    body-width prior plus ALA_MIN_REACH_MM on each side: the S1 segment without its alae."""
    if level != "S1":
        return False
    width = float(np.ptp(frame.to_local(mesh.vertices)[:, 0]))
    return width <= level_prior(level).body_width_mm + 2 * ALA_MIN_REACH_MM


def _orient(mesh, plane: Plane, view, patient_frame: str | None, notes: list[str]):
    """The anatomical axes (model coords) from the symmetry plane and canal view, plus cue confidences."""
    normal = plane.normal
    along = view.direction - (view.direction @ normal) * normal
    along /= np.linalg.norm(along)
    across = np.cross(along, normal)
    rotation = np.vstack([normal, across, along])
    local = (mesh.vertices - view.centroid) @ rotation.T
    grid = voxelize(local, mesh.faces, COARSE_VOXEL_MM)
    xs, ys, zs = (grid.axis_coordinates(k) for k in range(3))

    # Anterior: the thickest bone (the body) lies on the anterior side of the canal.
    depth = ndimage.distance_transform_edt(grid.solid) * grid.spacing
    core = np.unravel_index(np.argmax(depth), depth.shape)
    ap_sign = 1.0 if ys[core[1]] > 0 else -1.0
    behind = depth[:, ys * ap_sign < 0, :]
    ap_ratio = float(depth.max() / max(behind.max() if behind.size else 0.0, grid.spacing))
    cues = {"anterior_cue": _ramp(-ap_ratio, -AP_RATIO_GOOD, -1.0)}

    # Superior: pedicles above the body's mid-height, posterior arch below it (lumbar); the end
    # of the sacrum where the S1 canal was seen (whole sacrum).
    if view.window:
        si_sign, si_strength = float(view.window), SACRUM_SI_CONFIDENCE
    else:
        score, scale = _si_score(grid, ap_sign)
        si_sign = 1.0 if score > 0 else -1.0
        si_strength = float(np.clip(abs(score) / scale, 0.0, 1.0))
    cues["superior_cue"] = si_strength

    anterior = across * ap_sign
    superior = along * si_sign
    if patient_frame is not None:
        rows = patient_axes(patient_frame)
        if anterior @ rows[1] < -0.3:
            raise AnatomyError(
                f"the {patient_frame} patient frame puts anterior on the side of the spinous process "
                "(the vertebral body is on the other side of the canal): the file's frame or affine is "
                "probably mirrored front-to-back; fix the frame or omit it")
        if superior @ rows[2] < -0.3:
            notes.append(f"the {patient_frame} frame's superior direction disagrees with the anatomical cues "
                         f"(cue strength {si_strength:.2f}); the frame's was used")
            superior = -superior
            cues["superior_cue"] = 0.3
        for name, axis, row in (("anterior", anterior, rows[1]), ("superior", superior, rows[2])):
            angle = np.degrees(np.arccos(np.clip(axis @ row, -1.0, 1.0)))
            if angle > FRAME_AGREEMENT_DEG:
                notes.append(f"the anatomical {name} axis is {angle:.0f} deg from the {patient_frame} "
                             f"frame's: is the mesh really in {patient_frame} coordinates?")
    else:
        notes.append("no patient frame: left and right assume the mesh is not mirrored")
    right = np.cross(anterior, superior)
    frame = AnatomicalFrame(view.centroid.copy(), right, anterior, superior,
                            handedness_known=patient_frame is not None)
    return frame, cues


def _si_score(grid: VoxelGrid, ap_sign: float) -> tuple[float, float]:
    """Positive when +z is superior: (pedicle height - body mid-height) - (arch height - body
    mid-height), mm, and the score at which the cue counts as certain. The grid's origin is on the
    canal axis; "pedicles" are the bone just behind the midline posterior wall beside the canal,
    "arch" the bone well behind the canal axis (SI_CUE_* distances)."""
    xs, ys, zs = (grid.axis_coordinates(k) for k in range(3))
    y = ys * ap_sign
    solid = grid.solid
    front = solid[np.abs(xs) < SI_CUE_MIDLINE_MM][:, y > SI_CUE_BODY_MM]
    wall_cols = solid[np.abs(xs) < SI_CUE_MIDLINE_MM / 2].any(axis=(0, 2)) & (y > 0)
    if not front.any() or not wall_cols.any():
        return 0.0, SI_CUE_CERTAIN_MM
    zb = zs[np.nonzero(front.any(axis=(0, 1)))[0]]
    mid = (zb.min() + zb.max()) / 2
    wall = y[wall_cols].min()
    band = solid[np.abs(xs) > SI_CUE_MIDLINE_MM][:, (y < wall - 1) & (y > wall - 1 - SI_CUE_PEDICLE_MM)]
    arch = solid[:, y < -SI_CUE_ARCH_MM]
    if not band.any() or not arch.any():
        return 0.0, SI_CUE_CERTAIN_MM
    z_ped = zs[np.nonzero(band)[2]].mean()
    z_arch = zs[np.nonzero(arch)[2]].mean()
    return float((z_ped - mid) - (z_arch - mid)), SI_CUE_CERTAIN_MM


def _measure(mesh, frame: AnatomicalFrame, window: int, level: str, terminus: TerminusParameters,
             notes: list[str], progress: Callable[[str], None], without_alae: bool = False) -> Landmarks:
    """Everything measured in the (provisional) vertebra frame; returns Landmarks in model coords.
    ``without_alae``: an S1 segment without its alae (its pedicles have no lateral mass)."""
    progress("canal, body and endplates")
    local = frame.to_local(mesh.vertices)
    grid = voxelize(local, mesh.faces, VOXEL_MM)
    xs, ys, zs = (grid.axis_coordinates(k) for k in range(3))
    solid = grid.solid
    prior = level_prior(level)
    confidence: dict[str, float] = {}

    if window:  # whole sacrum: keep the top (S1) segment only
        top = zs[np.nonzero(solid.any(axis=(0, 1)))[0]].max()
        solid = solid & (zs >= top - END_WINDOW_MM)[None, None, :]
        notes.append(f"a whole sacrum: only its top {END_WINDOW_MM:.0f} mm (the S1 segment) was analysed")

    lumen = lumen_mask(solid, xs)
    if lumen is None:
        raise AnatomyError("no closed vertebral foramen in the aligned vertebra: not a vertebra")
    li, lj = np.nonzero(lumen)
    lumen_area = len(li) * grid.spacing ** 2
    lumen_x = (xs[li].min() - grid.spacing / 2, xs[li].max() + grid.spacing / 2)
    lumen_y = (ys[lj].min() - grid.spacing / 2, ys[lj].max() + grid.spacing / 2)
    mid_cols = np.abs(xs[li] - (lumen_x[0] + lumen_x[1]) / 2) <= grid.spacing
    wall_y = ys[lj[mid_cols]].max() + grid.spacing / 2 if mid_cols.any() else lumen_y[1]
    confidence["canal"] = float(np.clip(lumen_area / CANAL_CONFIDENT_AREA_MM2, 0.0, 1.0))

    # Body: bone in front of the posterior wall, its largest connected piece.
    body_region = solid & (ys > wall_y)[None, :, None]
    if window:
        body_region &= (np.abs(xs) <= prior.body_width_mm / 2 + 2)[:, None, None]
    labels, count = ndimage.label(body_region)
    if count == 0:
        raise AnatomyError("no vertebral body in front of the canal")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body_vox = labels == int(np.argmax(sizes))
    bi, bj, bk = np.nonzero(body_vox)
    body_volume = len(bi) * grid.spacing ** 3
    centre_local = np.array([0.0, ys[bj].mean(), zs[bk].mean()])
    _check_one_body(body_vox, zs, grid.spacing, prior)

    # Endplates: body faces whose normals point along +-z, robust planes.
    normals = frame.direction_to_local(mesh.face_normals)
    centroids = local[mesh.faces].mean(axis=1)
    areas = mesh.area_faces
    body_x = (xs[bi].min(), xs[bi].max())
    in_body = ((centroids[:, 1] > wall_y + 0.5) & (centroids[:, 0] >= body_x[0]) & (centroids[:, 0] <= body_x[1])
               & (centroids[:, 2] >= zs[bk].min() - 1) & (centroids[:, 2] <= zs[bk].max() + 1))
    cos_lim = np.cos(np.radians(ENDPLATE_NORMAL_DEG))
    mid_z = centre_local[2]
    planes, face_sets = {}, {}
    for name, sign in (("superior_endplate", 1.0), ("inferior_endplate", -1.0)):
        pick = in_body & (normals[:, 2] * sign > cos_lim) & ((centroids[:, 2] - mid_z) * sign > 0)
        seed = np.abs(centroids[pick, 0]) < ENDPLATE_SEED_HALF_WIDTH_MM
        fit = _robust_plane(centroids[pick], areas[pick], sign, seed)
        if fit is None:
            if not window:
                raise AnatomyError(f"no {name.replace('_', ' ')} found on the vertebral body")
            # The S1 segment of a sacrum has no inferior endplate (fused with S2) [A].
            fit = (centre_local - np.array([0, 0, prior.body_height_posterior_mm / 2]), np.array([0, 0, -1.0]), 0.0,
                   np.zeros(0, bool))
            notes.append("sacrum: S1 has no inferior endplate (fused); one was placed parallel to the "
                         "superior endplate at the prior body height")
            confidence[name] = 0.3
        point, normal, rms, kept = fit
        planes[name] = (point, normal)
        face_sets[name] = np.nonzero(pick)[0][kept]
        confidence.setdefault(name, _ramp(rms, 1.0, 3.0) if len(face_sets[name]) >= 10 else 0.2)

    # Refined frame: superior = bisector of the endplate normals, kept in the mid-sagittal plane.
    superior = planes["superior_endplate"][1] - planes["inferior_endplate"][1]
    superior[0] = 0.0
    superior /= np.linalg.norm(superior)
    anterior = np.cross(superior, [1.0, 0, 0])
    refine = np.vstack([[1.0, 0, 0], anterior, superior])  # rows: new axes in the provisional frame

    # Terminus on the mid-sagittal line: exact crossings with the mesh.
    def crossings(point, direction):
        return line_crossings(local, mesh.faces, point, direction)

    def endplate_z(y):
        out = []
        for name in ("inferior_endplate", "superior_endplate"):
            p, n = planes[name]
            out.append(p[2] - (n[1] * (y - p[1]) + n[0] * (0 - p[0])) / n[2])
        return out

    def ap_span(y_at, z_at):
        """Posterior and anterior body-wall points on the mid-sagittal AP line through (0, y_at, z_at)."""
        origin = np.array([0.0, y_at, z_at])
        span = interval_around(crossings(origin, anterior), 0.0)
        if span is None:
            raise AnatomyError("the mid-sagittal line through the body does not cross the body's surface twice")
        return origin + span[0] * anterior, origin + span[1] * anterior

    fraction = 0.5 if (level == "S1" and terminus.s1_body_centre) else terminus.depth_fraction
    y_c = centre_local[1]
    for _ in range(2):  # the endplates are tilted: place the height where the terminus lands
        z_inf, z_sup = endplate_z(y_c)
        p_wall, p_front = ap_span(y_c, z_inf + terminus.height_fraction * (z_sup - z_inf))
        term = p_wall + fraction * (p_front - p_wall)
        y_c = term[1]
    z_f = float(np.mean(endplate_z(y_c)))
    foramen, _ = ap_span(y_c, z_f)
    body_depth_mm = float(np.linalg.norm(p_front - p_wall))

    # Posterior wall faces: facing the canal, within the lumen's width, between the endplates.
    z_lo, z_hi = endplate_z(centroids[:, 1])
    wall_faces = _posterior_wall_faces(lumen, grid, centroids, normals, z_lo, z_hi)
    # Body: confident when at least half the volume of an elliptic cylinder of the prior's size.
    prior_volume = np.pi / 4 * prior.body_width_mm * prior.body_depth_mm * prior.body_height_posterior_mm
    confidence["body"] = float(np.clip(body_volume / (0.5 * prior_volume), 0, 1))

    # Pedicles.
    progress("pedicles")
    pedicles, ped_faces, morph = {}, {}, {}
    for side, sign in (("right", 1), ("left", -1)):
        p = find_pedicle(VoxelGrid(solid, grid.origin, grid.spacing), lumen_x, (lumen_y[0], wall_y),
                         local, mesh.faces, sign, lateral_mass=not without_alae)
        if p is None:
            confidence[f"{side}_pedicle"] = 0.0
            notes.append(f"no {side} pedicle found")
            continue
        pedicles[side] = p
        morph[f"pedicle_width_{side}_mm"] = p.width
        morph[f"pedicle_height_{side}_mm"] = p.height
        morph[f"pedicle_transverse_angle_{side}_deg"] = float(np.degrees(np.arctan2(-sign * p.axis[0], p.axis[1])))
        morph[f"pedicle_sagittal_angle_{side}_deg"] = float(np.degrees(np.arctan2(p.axis[2], p.axis[1])))
        rel = centroids - p.isthmus_centre
        along = rel @ p.axis
        radial = np.linalg.norm(rel - along[:, None] * p.axis, axis=1)
        ped_faces[side] = np.nonzero((radial < max(p.width, p.height) / 2 + 1.5)
                                     & (centroids[:, 1] < wall_y) & (centroids[:, 1] > lumen_y[0]))[0]
        confidence[f"{side}_pedicle"] = float(min(1.0, p.slices_used / 8)) if p.neck_found else NO_NECK_CONFIDENCE
        if not p.neck_found and without_alae:
            notes.append(f"{side} pedicle: no narrowing (isthmus) found (a short S1 pedicle); its axis is "
                         "the corridor of largest clearance through it, its isthmus that corridor's "
                         "middle section, its width the transverse chord through its centre")
        elif not p.neck_found:
            notes.append(f"{side} pedicle: no narrowing (isthmus) found (a transverse process joins it); "
                         "its axis is the corridor of largest clearance through it, its width the "
                         "narrowest transverse chord near its centre")

    # Faces of the pedicles' medial walls face the canal too: they are pedicle, not body.
    for faces in ped_faces.values():
        wall_faces = np.setdiff1d(wall_faces, faces)
    confidence["posterior_wall"] = float(np.clip(len(wall_faces) / POSTERIOR_WALL_MIN_FACES, 0, 1))

    progress("canal volume and morphometry")
    # Canal volume: the lumen (plus margin) between the endplate planes at the posterior wall.
    canal_z = endplate_z(wall_y)
    canal_local = canal_volume(lumen, grid, canal_z, solid)
    # The canal centroid is the lumen's own (without the safety margin of the canal volume).
    canal_centroid_local = np.array([xs[li].mean(), ys[lj].mean(), (canal_z[0] + canal_z[1]) / 2])

    # Morphometry from the mesh.
    # Body heights between the endplate planes at the anterior and posterior walls (mid-sagittal).
    heights = {name: float(np.diff(endplate_z(point[1]))[0]) for name, point in
               (("body_height_anterior_mm", p_front), ("body_height_posterior_mm", p_wall))}
    # Canal depth: the empty chord along the mid-sagittal AP line through the canal centre. Canal
    # width (interpedicular distance): the transverse extent of the lumen, which the pedicles bound.
    canal_centre = canal_centroid_local * [0, 1, 1]
    depth_gap = gap_around(crossings(canal_centre, np.array([0, 1.0, 0])), 0.0)
    if depth_gap is not None and canal_centre[1] + depth_gap[0] < lumen_y[0] - CANAL_CHORD_LEAK_MM:
        depth_gap = None  # the chord left through a gap between the laminae: use the lumen instead
    canal_width_mm = float(lumen_x[1] - lumen_x[0])
    # Body width (endplate width): the transverse chord through the body centre just under the
    # superior endplate (exact crossings; lower down a sacrum's alae would join in).
    z_under = endplate_z(centre_local[1])[1] - BODY_WIDTH_DEPTH_MM
    width_span = interval_around(crossings(np.array([0.0, centre_local[1], z_under]), np.array([1.0, 0, 0])), 0.0)
    morph.update(
        body_width_mm=float(width_span[1] - width_span[0]) if width_span else float("nan"),
        body_depth_mm=body_depth_mm,
        canal_width_mm=canal_width_mm,
        canal_depth_mm=float(depth_gap[1] - depth_gap[0]) if depth_gap else float(wall_y - lumen_y[0]),
        **heights)

    # Body mesh: the vertebra cut by the coronal plane of the posterior wall.
    body_mesh_local = _cut_body(local, mesh.faces, wall_y, solid, grid, window, prior)

    # Everything back to model coordinates; the origin is the body centre on the mid-sagittal plane.
    origin_local = np.array([0.0, centre_local[1], z_f])
    to_model = frame.to_model
    rot = frame.rotation
    fr = AnatomicalFrame(to_model(origin_local[None])[0], refine[0] @ rot, refine[1] @ rot, refine[2] @ rot,
                         frame.handedness_known)
    canal_mesh = trimesh.Trimesh(to_model(canal_local.vertices), canal_local.faces, process=True)
    body_mesh = trimesh.Trimesh(to_model(body_mesh_local.vertices), body_mesh_local.faces, process=True)

    regions = _face_regions(face_sets, wall_faces, ped_faces, np.nonzero(in_body)[0], normals, centroids, wall_y)

    def plane_model(point, normal):
        return Plane(to_model(point[None])[0], frame.direction_to_model(normal))

    mid_plane = Plane(to_model(origin_local[None])[0], fr.right.copy())
    return Landmarks(
        level=level, frame=fr, midsagittal_plane=mid_plane,
        superior_endplate=plane_model(*planes["superior_endplate"]),
        inferior_endplate=plane_model(*planes["inferior_endplate"]),
        posterior_wall_points=to_model(centroids[wall_faces]),
        canal_centroid=to_model(canal_centroid_local[None])[0],
        pedicles={side: Pedicle(side, to_model(p.isthmus_centre[None])[0], frame.direction_to_model(p.axis),
                                p.width, p.height, to_model(p.body_junction[None])[0])
                  for side, p in pedicles.items()},
        basivertebral_foramen=to_model(foramen[None])[0],
        bvn_terminus=to_model(term[None])[0],
        morphometry=morph, confidence=confidence,
        canal_mesh=canal_mesh, body_mesh=body_mesh, face_regions=regions, terminus=terminus,
    )


def _posterior_wall_faces(lumen, grid: VoxelGrid, centroids, normals, z_lo, z_hi) -> np.ndarray:
    """Faces (indices) of the body surface facing the canal (vertebra frame, mm): facing backwards,
    within POSTERIOR_WALL_DEPTH_MM in front of the lumen's front edge in their column, inside the
    lumen's width and between the endplate planes (``z_lo``/``z_hi`` per face)."""
    xs, ys = grid.axis_coordinates(0), grid.axis_coordinates(1)
    li, lj = np.nonzero(lumen)
    lumen_front = np.full(len(xs), -np.inf)
    np.maximum.at(lumen_front, li, ys[lj] + grid.spacing / 2)
    col = np.clip(np.rint((centroids[:, 0] - grid.origin[0]) / grid.spacing).astype(int), 0, len(xs) - 1)
    front = lumen_front[col]
    wall = (np.isfinite(front) & (normals[:, 1] < POSTERIOR_WALL_NORMAL)
            & (centroids[:, 1] >= front - grid.spacing) & (centroids[:, 1] <= front + POSTERIOR_WALL_DEPTH_MM)
            & (centroids[:, 2] > z_lo + 0.5) & (centroids[:, 2] < z_hi - 0.5))
    return np.nonzero(wall)[0]


def _face_regions(face_sets, wall_faces, ped_faces, body_faces, normals, centroids, wall_y) -> dict:
    """Face indices per landmarks.FACE_REGIONS (vertebra frame): the endplates, posterior wall and
    pedicles as found; the other body faces split by their normals into anterior and lateral
    cortex; everything else behind the posterior wall is the posterior arch."""
    cos_lim = np.cos(np.radians(ENDPLATE_NORMAL_DEG))
    regions = {
        "superior_endplate": face_sets["superior_endplate"],
        "inferior_endplate": face_sets["inferior_endplate"],
        "posterior_wall": wall_faces,
        "anterior_cortex": body_faces[normals[body_faces, 1] > REGION_FACING_COS],
        "lateral_cortex": body_faces[(np.abs(normals[body_faces, 0]) > REGION_FACING_COS)
                                     & (np.abs(normals[body_faces, 2]) < cos_lim)],
        "left_pedicle": ped_faces.get("left", np.zeros(0, int)),
        "right_pedicle": ped_faces.get("right", np.zeros(0, int)),
    }
    taken = np.zeros(len(centroids), bool)
    for faces in regions.values():
        taken[faces] = True
    regions["lateral_cortex"] = regions["lateral_cortex"][~np.isin(regions["lateral_cortex"], regions["anterior_cortex"])]
    regions["posterior_arch"] = np.nonzero((centroids[:, 1] < wall_y) & ~taken)[0]
    return regions


def _check_one_body(body_vox: np.ndarray, zs: np.ndarray, spacing: float, prior) -> None:
    """Refuse two stacked bodies: a body far taller than the level's, or two separate tall runs."""
    area = body_vox.sum(axis=(0, 1)) * spacing ** 2
    filled = area > 0.3 * area.max()
    runs, _ = ndimage.label(filled)
    lengths = np.bincount(runs)[1:] * spacing
    height = (np.ptp(np.nonzero(area > 0)[0]) + 1) * spacing if area.any() else 0.0
    prior_height = max(prior.body_height_anterior_mm, prior.body_height_posterior_mm)
    if (lengths > 8.0).sum() > 1 or height > MAX_BODY_HEIGHT_RATIO * prior_height + 10.0:
        raise AnatomyError(
            f"the vertebral body is {height:.0f} mm tall in {int((lengths > 8.0).sum())} separate "
            f"part(s) (a {prior.level} body is about {prior_height:.0f} mm): this looks like two or more "
            "vertebrae in one mesh, or a body split by a surface defect (e.g. a self-intersecting mesh); "
            "give one clean vertebra per mesh")


def _robust_plane(points: np.ndarray, weights: np.ndarray, sign: float, seed: np.ndarray):
    """Weighted plane fit with outlier trimming, started on the ``seed`` points (the midline part
    of the endplate, so that other bone facing the same way - a sacral ala - cannot pull the
    plane); normal oriented to ``sign`` * z. ``None`` if too few points."""
    keep = seed.copy() if seed.sum() >= 6 else np.ones(len(points), bool)
    for _ in range(4):
        if keep.sum() < 6:
            return None
        w = weights[keep] / weights[keep].sum()
        centre = w @ points[keep]
        d = points[keep] - centre
        _, vecs = np.linalg.eigh((d * w[:, None]).T @ d)
        normal = vecs[:, 0] * (np.sign(vecs[2, 0]) * sign or 1.0)
        resid = (points - centre) @ normal
        mad = np.median(np.abs(resid[keep]))
        keep = np.abs(resid) <= max(ENDPLATE_TRIM_MM, 2.5 * 1.4826 * mad)
    rms = float(np.sqrt(np.average(resid[keep] ** 2, weights=weights[keep])))
    return centre, normal, rms, keep


def _cut_body(vertices, faces, wall_y, solid, grid, window, prior) -> trimesh.Trimesh:
    """The body as a closed surface: the vertebra in front of the posterior wall's coronal plane."""
    whole = trimesh.Trimesh(vertices, faces, process=False)
    lo, hi = vertices.min(axis=0) - 5, vertices.max(axis=0) + 5
    lo[1] = wall_y
    if window:
        lo[0], hi[0] = -prior.body_width_mm / 2 - 2, prior.body_width_mm / 2 + 2
        lo[2] = hi[2] - 5 - END_WINDOW_MM
    box = trimesh.creation.box(bounds=[lo, hi])
    try:
        cut = trimesh.boolean.intersection([whole, box], engine="manifold")
        parts = cut.split(only_watertight=True)
        if len(parts):
            return max(parts, key=lambda m: m.volume)
    except Exception:  # manifold refuses non-manifold input: fall back to the voxel body
        pass
    keep = solid & (grid.axis_coordinates(1) > wall_y)[None, :, None]
    return mask_surface(keep, grid)


def _morphometry_confidence(found: Landmarks, level: str, without_alae: bool = False) -> list[str]:
    """Set the morphometry confidence (share of measures within MORPHOMETRY_MAX_Z SD of the level
    prior), lower the confidence of pedicles, canal and body with implausible sizes, and return a
    note per implausible measure. ``without_alae``: an S1 segment without its alae, whose pedicles
    may read narrow (S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR)."""
    prior = level_prior(level)
    z = {}
    for name, value in found.morphometry.items():
        base = name.replace("_left_", "_").replace("_right_", "_")  # sided measures, one prior
        if not hasattr(prior, base) or not np.isfinite(value):
            continue
        mean, sd = prior.reference(base)
        if "angle" in base:
            sd = max(sd, 5.0)  # angle priors from memory [A]: at least 5 deg SD
        z[name] = (value - mean) / sd
    outliers = [n for n, v in z.items() if abs(v) > MORPHOMETRY_MAX_Z]
    found.confidence["morphometry"] = 1.0 - len(outliers) / max(len(z), 1)

    def plausible(prefix: str) -> float:  # 1 within MORPHOMETRY_MAX_Z SD, 0 at twice that
        worst = max((abs(v) for n, v in z.items() if n.startswith(prefix)), default=0.0)
        return _ramp(worst, MORPHOMETRY_MAX_Z, 2 * MORPHOMETRY_MAX_Z)

    # Implausible sizes make a finding doubtful; for the body and canal (which planning cannot do
    # without) only down to half, so that an unusual but clear vertebra is not refused for its size.
    notes = []
    for side in found.pedicles:
        height = plausible(f"pedicle_height_{side}")
        width = plausible(f"pedicle_width_{side}")
        if without_alae and z[f"pedicle_width_{side}_mm"] < 0:
            width = max(S1_WITHOUT_ALAE_WIDTH_CONFIDENCE_FLOOR, width)
        found.confidence[f"{side}_pedicle"] *= min(width,
                                                   plausible(f"pedicle_transverse_angle_{side}"),
                                                   max(PEDICLE_HEIGHT_CONFIDENCE_FLOOR, height))
        if height < 1.0 and z[f"pedicle_height_{side}_mm"] > 0:
            notes.append(f"the {side} pedicle reads too tall: the surface may fill the vertebral notches "
                         "(shrink-wrapped or smoothed), so its cranio-caudal centre is uncertain; paths are "
                         "still checked against the surface as given")
    found.confidence["canal"] *= max(0.5, plausible("canal_"))
    found.confidence["body"] *= max(0.5, plausible("body_"))
    return [f"{n} = {found.morphometry[n]:.1f} is {z[n]:+.1f} SD from the {prior.level} prior"
            for n in outliers] + notes


def landmark_meshes(vertebra, landmarks: Landmarks | None = None) -> dict[str, trimesh.Trimesh]:
    """The canal volume, the body and the posterior-wall surface patch of ``vertebra`` as meshes
    (mm, model coordinates). Finds the anatomy first if no ``landmarks`` are given."""
    found = landmarks or find_anatomy(vertebra)
    wall = vertebra.mesh.submesh([found.face_regions["posterior_wall"]], append=True)
    return {"canal": found.canal_mesh, "body": found.body_mesh, "posterior_wall": wall}


def export_landmark_meshes(vertebra, folder, file_type: str = "stl", landmarks: Landmarks | None = None) -> list:
    """Write :func:`landmark_meshes` to ``folder`` as ``<level>_<name>.<file_type>`` in the input
    file's own coordinates and units (the same frame as the input mesh). Returns the paths."""
    from pathlib import Path

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
