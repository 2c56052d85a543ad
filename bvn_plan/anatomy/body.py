"""The vertebral body: its bone in front of the canal, its endplates and its posterior wall.

Works in the provisional vertebra frame (x right, y anterior, z superior, mm) of a
:class:`~bvn_plan.anatomy.frame.LocalVertebra`. The body is the largest piece of bone in front of
the posterior wall; the endplates are robust planes through the body faces facing along +-z
(their bisector refines the superior axis); the posterior wall is the body surface facing the canal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from ..errors import AnatomyError
from ..geometry.meshing import mask_surface
from ..geometry.vectors import cross3
from ..levels import LevelMorphometry
from .canal import END_WINDOW_MM, MASK_BLUR_VOXELS, Lumen
from .confidence import ramp
from .frame import LocalVertebra

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
#: A body taller than this multiple of the level's prior height is two vertebrae, not one [A].
MAX_BODY_HEIGHT_RATIO = 1.6

ENDPLATES = (("superior_endplate", 1.0), ("inferior_endplate", -1.0))


@dataclass
class Endplates:
    """The endplate planes (vertebra frame, mm): ``planes[name] = (point, unit normal out of the
    body)``, the faces each was fitted to and their confidences, for "superior_endplate" and
    "inferior_endplate"."""

    planes: dict[str, tuple[np.ndarray, np.ndarray]]
    faces: dict[str, np.ndarray]
    confidence: dict[str, float]

    def z_at(self, y) -> list:
        """Heights (mm) of the inferior and superior endplate planes on the mid-sagittal plane at ``y``."""
        out = []
        for name in ("inferior_endplate", "superior_endplate"):
            p, n = self.planes[name]
            out.append(p[2] - (n[1] * (y - p[1]) + n[0] * (0 - p[0])) / n[2])
        return out

    def refined_axes(self) -> np.ndarray:
        """Rows: the refined right, anterior and superior axes in the provisional frame. Superior is
        the bisector of the endplate normals, kept in the mid-sagittal plane."""
        superior = self.planes["superior_endplate"][1] - self.planes["inferior_endplate"][1]
        superior[0] = 0.0
        superior /= np.linalg.norm(superior)
        anterior = cross3(superior, [1.0, 0, 0])
        return np.vstack([[1.0, 0, 0], anterior, superior])


@dataclass
class Body:
    """The vertebral body (vertebra frame, mm): its voxels on the vertebra's grid, their centroid
    ``centre`` (x = 0), the mesh faces inside its box (``face_mask``), its endplates and the
    confidence from its volume against the level prior's."""

    voxels: np.ndarray
    centre: np.ndarray
    face_mask: np.ndarray
    endplates: Endplates
    confidence: float


def find_body(vertebra: LocalVertebra, lumen: Lumen, window: int, prior: LevelMorphometry,
              notes: list[str]) -> Body:
    """The body in front of the posterior wall (``window``: only the S1 segment of a whole sacrum).
    Raises AnatomyError without a body, for two stacked bodies, or without endplates."""
    grid = vertebra.grid
    xs, ys, zs = (grid.axis_coordinates(k) for k in range(3))
    body_region = grid.solid & (ys > lumen.wall_y)[None, :, None]
    if window:
        body_region &= (np.abs(xs) <= prior.body_width_mm / 2 + 2)[:, None, None]
    labels, count = ndimage.label(body_region)
    if count == 0:
        raise AnatomyError("no vertebral body in front of the canal")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    voxels = labels == int(np.argmax(sizes))
    bi, bj, bk = np.nonzero(voxels)
    volume = len(bi) * grid.spacing ** 3
    centre = np.array([0.0, ys[bj].mean(), zs[bk].mean()])
    _check_one_body(voxels, grid.spacing, prior)

    centroids = vertebra.centroids
    face_mask = ((centroids[:, 1] > lumen.wall_y + 0.5) & (centroids[:, 0] >= xs[bi].min())
                 & (centroids[:, 0] <= xs[bi].max())
                 & (centroids[:, 2] >= zs[bk].min() - 1) & (centroids[:, 2] <= zs[bk].max() + 1))
    endplates = _find_endplates(vertebra, face_mask, centre, window, prior, notes)
    # Confident when at least half the volume of an elliptic cylinder of the prior's size.
    prior_volume = np.pi / 4 * prior.body_width_mm * prior.body_depth_mm * prior.body_height_posterior_mm
    return Body(voxels, centre, face_mask, endplates, float(np.clip(volume / (0.5 * prior_volume), 0, 1)))


def _find_endplates(vertebra: LocalVertebra, face_mask: np.ndarray, centre: np.ndarray, window: int,
                    prior: LevelMorphometry, notes: list[str]) -> Endplates:
    """Robust planes through the body faces (``face_mask``) facing along +-z above / below the
    body ``centre``; the S1 segment of a sacrum (``window``) gets an inferior one at the prior height."""
    normals, centroids = vertebra.normals, vertebra.centroids
    cos_lim = np.cos(np.radians(ENDPLATE_NORMAL_DEG))
    planes, face_sets, confidence = {}, {}, {}
    for name, sign in ENDPLATES:
        pick = face_mask & (normals[:, 2] * sign > cos_lim) & ((centroids[:, 2] - centre[2]) * sign > 0)
        seed = np.abs(centroids[pick, 0]) < ENDPLATE_SEED_HALF_WIDTH_MM
        fit = _robust_plane(centroids[pick], vertebra.areas[pick], sign, seed)
        if fit is None:
            if not window:
                raise AnatomyError(f"no {name.replace('_', ' ')} found on the vertebral body")
            # The S1 segment of a sacrum has no inferior endplate (fused with S2) [A].
            fit = (centre - np.array([0, 0, prior.body_height_posterior_mm / 2]), np.array([0, 0, -1.0]), 0.0,
                   np.zeros(0, bool))
            notes.append("sacrum: S1 has no inferior endplate (fused); one was placed parallel to the "
                         "superior endplate at the prior body height")
            confidence[name] = 0.3
        point, normal, rms, kept = fit
        planes[name] = (point, normal)
        face_sets[name] = np.nonzero(pick)[0][kept]
        confidence.setdefault(name, ramp(rms, 1.0, 3.0) if len(face_sets[name]) >= 10 else 0.2)
    return Endplates(planes, face_sets, confidence)


def _check_one_body(body_vox: np.ndarray, spacing: float, prior: LevelMorphometry) -> None:
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


def posterior_wall_faces(vertebra: LocalVertebra, lumen: Lumen, endplates: Endplates,
                         pedicle_faces: dict[str, np.ndarray]) -> np.ndarray:
    """Faces (indices) of the body surface facing the canal (vertebra frame, mm): facing backwards,
    within POSTERIOR_WALL_DEPTH_MM in front of the lumen's front edge in their column, inside the
    lumen's width and between the endplate planes; the pedicles' medial walls (``pedicle_faces``)
    face the canal too but are pedicle, not body."""
    grid, centroids, normals = vertebra.grid, vertebra.centroids, vertebra.normals
    z_lo, z_hi = endplates.z_at(centroids[:, 1])
    xs, ys = grid.axis_coordinates(0), grid.axis_coordinates(1)
    li, lj = np.nonzero(lumen.mask)
    lumen_front = np.full(len(xs), -np.inf)
    np.maximum.at(lumen_front, li, ys[lj] + grid.spacing / 2)
    col = np.clip(np.rint((centroids[:, 0] - grid.origin[0]) / grid.spacing).astype(int), 0, len(xs) - 1)
    front = lumen_front[col]
    wall = (np.isfinite(front) & (normals[:, 1] < POSTERIOR_WALL_NORMAL)
            & (centroids[:, 1] >= front - grid.spacing) & (centroids[:, 1] <= front + POSTERIOR_WALL_DEPTH_MM)
            & (centroids[:, 2] > z_lo + 0.5) & (centroids[:, 2] < z_hi - 0.5))
    wall_faces = np.nonzero(wall)[0]
    for faces in pedicle_faces.values():
        wall_faces = np.setdiff1d(wall_faces, faces)
    return wall_faces


def posterior_wall_confidence(wall_faces: np.ndarray) -> float:
    """Posterior wall confidence from its face count (POSTERIOR_WALL_MIN_FACES), 0..1."""
    return float(np.clip(len(wall_faces) / POSTERIOR_WALL_MIN_FACES, 0, 1))


def cut_body(vertebra: LocalVertebra, wall_y: float, window: int, prior: LevelMorphometry) -> trimesh.Trimesh:
    """The body as a closed surface (vertebra frame, mm): the vertebra in front of the posterior
    wall's coronal plane ``wall_y`` (``window``: only the S1 segment of a whole sacrum)."""
    vertices = vertebra.vertices
    whole = trimesh.Trimesh(vertices, vertebra.faces, process=False)
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
    grid = vertebra.grid
    keep = grid.solid & (grid.axis_coordinates(1) > wall_y)[None, :, None]
    return mask_surface(keep, grid.affine, blur_sigma=MASK_BLUR_VOXELS, process=True)
