"""The provisional anatomical frame of a vertebra mesh: mid-sagittal plane, canal axis and the
senses of the anterior and superior axes.

The mid-sagittal plane is a mirror-symmetry fit of surface samples (:mod:`bvn_plan.anatomy.symmetry`);
the canal axis is the view in that plane showing the largest hole (:mod:`bvn_plan.anatomy.canal`).
Anterior: the vertebral body is the thickest bone (largest inscribed sphere), anterior to the
canal; superior: the pedicles sit in the upper half of the body and the posterior arch hangs below
it (for a whole sacrum: the end where the S1 canal opening was found). A patient frame given by
the user fixes the signs instead and is checked against these cues. All coordinates are mm;
the frame is expressed in model coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import trimesh
from scipy import ndimage

from ..coordinates import AnatomicalFrame, patient_axes
from ..errors import AnatomyError
from ..geometry.crossings import line_crossings
from ..geometry.vectors import cross3, perpendicular_part
from ..geometry.voxelize import VoxelGrid, voxelize
from ..landmarks import Plane
from ..levels import morphometry as level_prior
from .canal import CanalView, find_canal_axis
from .confidence import ramp
from .symmetry import find_symmetry_plane, surface_samples

#: Surface samples for the symmetry fit (query) and its target (dense), and for the canal search.
SYMMETRY_SAMPLES = 800
SYMMETRY_TARGET_SAMPLES = 6000
SURFACE_SAMPLES = 15000
#: Voxel size (mm) of the coarse grid for the orientation cues.
COARSE_VOXEL_MM = 1.0
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
#: Angle (deg) between an anatomical axis and the given patient frame's beyond which the user is
#: warned: vertebrae tilt up to ~45 deg in a lordotic spine (the sacrum), not more [A].
FRAME_AGREEMENT_DEG = 60.0
#: An S1 surface reaching less than this far (mm) beyond each side of the level's body-width prior
#: has no sacral alae: a segmentation label of the S1 segment alone (TotalSegmentator's
#: vertebrae_S1 reaches 5 mm), not a sacrum (whose alae reach 25-35 mm: VHM, synthetic) [A].
ALA_MIN_REACH_MM = 15.0


@dataclass
class FrameFinding:
    """The provisional frame (model coordinates, origin on the canal axis) and how sure it is.

    ``window``: 0, or +1 / -1 when only that end of a whole sacrum showed the canal (the S1
    segment); ``cues``: confidences of the anterior and superior senses; ``symmetry_residual_mm``:
    median mirror residual of the mid-sagittal plane."""

    frame: AnatomicalFrame
    window: int
    cues: dict[str, float]
    symmetry_residual_mm: float

    @property
    def confidences(self) -> dict[str, float]:
        """The cue confidences, the mid-sagittal plane's and the frame's (0..1)."""
        residual = self.symmetry_residual_mm
        return {**self.cues, "midsagittal_plane": ramp(residual, SYMMETRY_GOOD_MM, SYMMETRY_REFUSE_MM),
                "frame": min(self.cues.values()) * (1.0 if residual <= SYMMETRY_GOOD_MM else 0.7)}


@dataclass
class LocalVertebra:
    """The vertebra mesh in a (provisional) vertebra frame, mm: vertices, faces, per-face unit
    normals, centroids and areas, and its solid voxel ``grid`` in that frame."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    centroids: np.ndarray
    areas: np.ndarray
    grid: VoxelGrid

    @classmethod
    def of(cls, mesh: trimesh.Trimesh, frame: AnatomicalFrame, voxel_mm: float) -> "LocalVertebra":
        """``mesh`` (model coordinates, mm) seen in ``frame``, voxelised at ``voxel_mm``."""
        local = frame.to_local(mesh.vertices)
        return cls(local, mesh.faces, frame.direction_to_local(mesh.face_normals), local[mesh.faces].mean(axis=1),
                   mesh.area_faces, voxelize(local, mesh.faces, voxel_mm))

    def crossings(self, point: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Sorted parameters (mm along the unit ``direction``) where the line crosses the surface."""
        return line_crossings(self.vertices, self.faces, point, direction)


def find_frame(mesh: trimesh.Trimesh, patient_frame: str | None, notes: list[str],
               progress: Callable[[str], None]) -> FrameFinding:
    """Mid-sagittal plane, canal axis and anatomical senses of ``mesh`` (mm, model coordinates).
    Raises :class:`AnatomyError` without mirror symmetry or without a vertebral foramen; appends
    notes on the patient frame to ``notes``; calls ``progress`` with the name of each stage."""
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
    frame, cues = _orient(mesh, sym.plane, view, patient_frame, notes)
    return FrameFinding(frame, view.window, cues, sym.residual_mm)


def check_single_piece(mesh: trimesh.Trimesh) -> None:
    """Refuse (AnatomyError) a mesh of several pieces of comparable size."""
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        areas = sorted((p.area for p in parts), reverse=True)
        if areas[1] > 0.2 * areas[0]:
            raise AnatomyError(f"the mesh holds {len(parts)} separate pieces: give one vertebra per mesh")


def s1_without_alae(mesh: trimesh.Trimesh, frame: AnatomicalFrame, level: str) -> bool:
    """True for an S1 surface no wider (mm, along the frame's right axis) than the level's
    body-width prior plus ALA_MIN_REACH_MM on each side: the S1 segment without its alae."""
    if level != "S1":
        return False
    width = float(np.ptp(frame.to_local(mesh.vertices)[:, 0]))
    return width <= level_prior(level).body_width_mm + 2 * ALA_MIN_REACH_MM


def _orient(mesh, plane: Plane, view: CanalView, patient_frame: str | None, notes: list[str]):
    """The anatomical axes (model coords) from the symmetry plane and canal view, plus cue confidences."""
    normal = plane.normal
    along = perpendicular_part(view.direction, normal)
    along /= np.linalg.norm(along)
    across = cross3(along, normal)
    rotation = np.vstack([normal, across, along])
    local = (mesh.vertices - view.centroid) @ rotation.T
    grid = voxelize(local, mesh.faces, COARSE_VOXEL_MM)
    ys = grid.axis_coordinates(1)

    # Anterior: the thickest bone (the body) lies on the anterior side of the canal.
    depth = ndimage.distance_transform_edt(grid.solid) * grid.spacing
    core = np.unravel_index(np.argmax(depth), depth.shape)
    ap_sign = 1.0 if ys[core[1]] > 0 else -1.0
    behind = depth[:, ys * ap_sign < 0, :]
    ap_ratio = float(depth.max() / max(behind.max() if behind.size else 0.0, grid.spacing))
    cues = {"anterior_cue": ramp(-ap_ratio, -AP_RATIO_GOOD, -1.0)}

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
        superior = _check_patient_frame(anterior, superior, patient_frame, cues, notes)
    else:
        notes.append("no patient frame: left and right assume the mesh is not mirrored")
    right = cross3(anterior, superior)
    frame = AnatomicalFrame(view.centroid.copy(), right, anterior, superior,
                            handedness_known=patient_frame is not None)
    return frame, cues


def _check_patient_frame(anterior: np.ndarray, superior: np.ndarray, patient_frame: str,
                         cues: dict[str, float], notes: list[str]) -> np.ndarray:
    """Check the anatomical axes (model coords) against the given patient frame: refuse a
    front-to-back mirror, take the frame's superior sense where the cues disagree (lowering
    ``cues["superior_cue"]``), note large angles. Returns the superior axis used."""
    rows = patient_axes(patient_frame)
    if anterior @ rows[1] < -0.3:
        raise AnatomyError(
            f"the {patient_frame} patient frame puts anterior on the side of the spinous process "
            "(the vertebral body is on the other side of the canal): the file's frame or affine is "
            "probably mirrored front-to-back; fix the frame or omit it")
    if superior @ rows[2] < -0.3:
        notes.append(f"the {patient_frame} frame's superior direction disagrees with the anatomical cues "
                     f"(cue strength {cues['superior_cue']:.2f}); the frame's was used")
        superior = -superior
        cues["superior_cue"] = 0.3
    for name, axis, row in (("anterior", anterior, rows[1]), ("superior", superior, rows[2])):
        angle = np.degrees(np.arccos(np.clip(axis @ row, -1.0, 1.0)))
        if angle > FRAME_AGREEMENT_DEG:
            notes.append(f"the anatomical {name} axis is {angle:.0f} deg from the {patient_frame} "
                         f"frame's: is the mesh really in {patient_frame} coordinates?")
    return superior


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
