"""Soft tissue modelled from the bone alone: the structures around a lumbar vertebra a posterior
needle must not cross when no segmentation shows them (rules ``*_model_instrument``).

With a mesh only, the great vessels, the psoas and the kidneys are placed from the vertebra's own
landmarks and the level, as generous zones (each drawn in the 3D scene, :mod:`bvn_plan.viz.scene`):

* **aorta**: on the left-anterior face of the bodies from T12 down to its bifurcation, at the L4 body
  in 67 % of 441 adults (MRI) [V, MRI study, Surg Radiol Anat 2002;24:308], mean lower L4, range upper L3 to
  upper S1 (CT, 180 adults) [V, Surg Radiol Anat 1998;20:63]; 1-3 mm from the discs at
  L1/L2-L3/L4 (CT, 557 adults) [V, Kot 2022 Surg Radiol Anat 44:431]; diameter 2-3 cm, narrowing
  caudally [V, Ryan, Anatomy for Diagnostic Imaging]. Its zone: L1-L4.
* **inferior vena cava**: on the right-anterior face, formed by the common iliac veins at the L4-L5
  disc on average (range lower L3 to upper S1) [V, Surg Radiol Anat 1998;20:63]. Its zone: L1-L5.
* **iliac vessels** (common iliac arteries and veins): below the bifurcation, diverging in front of
  L4-L5 and the sacral promontory; left CIA 3.6 +- 3.4 mm and right 7.0 +- 4.9 mm from the L4-L5 disc
  [V, Kot 2022]. Their zone: L4-S1, both sides of the anterior face.
* **psoas**: lateral to the bodies and discs T12-L5 (and to the pedicles), from their sides back to
  the front of the transverse processes, its origin [V, Gray's Anatomy]; its section grows from about 2 cm^2 at L1 to
  12 cm^2 at L5 (weight-bearing MRI, 10 adults) [V, "Morphometry of lumbar muscles in the seated
  posture with weight-bearing MR scans"]. Its zone: L1-L5.
* **kidneys**: on the posterior abdominal wall beside T12-L3, their hila at L1, about 10 cm long,
  5 cm wide and 3 cm thick, the upper pole nearer the midline, the right kidney lower (T12-L3) than
  the left (T11-L2); their medial border about 2.5 cm from the midline (Morris' parallelogram), their
  posterior surface on the quadratus lumborum and psoas, in front of the transverse processes
  [V, Gray's Anatomy]. Each zone an ellipsoid; zones: left T12-L2, right T12-L3.

Every extent is a named parameter of :class:`SoftTissueModel` ([A] where no source gives it). The
zones are voxel masks (``voxel_mm``) in the vertebra frame (x patient right, y anterior, z superior,
mm) over the body's height plus ``craniocaudal_reach_mm`` above and below (the structures run on
along the spine), outside the bone; points are given and returned in model coordinates (mm). When
the left/right sense of the frame is unknown the aorta and vena cava zones each take both sides of
the anterior face and each kidney zone both sides. Labelled organs (:mod:`.zones`) replace all of
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from ..geometry.voxelize import grid_cover, voxelize
from ..landmarks import Landmarks
from .approach import EntryWindows

#: How reasons and pictures name each modelled zone.
ZONE_NAMES = {"aorta": "aorta", "vena_cava": "inferior vena cava", "iliac_vessels": "iliac vessels",
              "psoas": "psoas", "kidney": "kidney"}


@dataclass(frozen=True)
class SoftTissueModel:
    """Where the modelled structures lie (mm, degrees, vertebra frame; angles from the anterior axis
    seen from the body centre in the axial plane, positive toward the patient's right).

    * (the vessels lie within ``EntryWindows.great_vessel_sector_deg`` of the anterior axis, the sector
      the rule ``bone_entry_window`` names the great vessels by; the psoas beyond it)
    * ``vessel_overlap_deg``: the aorta takes the left part of that sector and this far right of the
      anterior axis, the vena cava the right part and this far left: they meet at the midline [A].
    * ``great_vessel_depth_mm``: how far in front of the body surface the vessels reach: a 2-3 cm
      vessel 1-3 mm from the bone [V, Ryan; Kot 2022] plus a margin [A].
    * ``psoas_depth_mm``: how far from the body surface the psoas reaches [A, from its 2-12 cm^2 section].
    * ``kidney_medial_mm``: a kidney's medial border from the midline (Morris' parallelogram, 2.5 cm;
      here 3 cm: the ellipsoid's widest section [A]).
    * ``kidney_semi_axes_mm``: the ellipsoid's half width, half thickness and half length (5 x 3 x 10 cm,
      each with a margin for its obliquity and for breathing, which moves it 2-3 cm [A]).
    * ``kidney_behind_transverse_mm``: how far behind the front of the transverse processes the
      ellipsoid reaches [A: the upper pole lies on the diaphragm behind that plane].
    * ``kidney_centre_mm``: per side and level, the height (mm, from this level's body centre) of the
      kidney's centre: the left hilum at L1, the right one level-height lower at 15 mm [A: a level
      (body and disc) is about 38 mm high].
    * ``craniocaudal_reach_mm``: how far above and below the endplates each zone runs [A: half way into
      the neighbouring levels].
    * ``voxel_mm``: the zones' voxel size [A: a 2 mm grid, half a voxel diagonal of uncertainty].
    * ``levels``: the levels at which each vessel and the psoas lie beside the vertebra (the kidneys:
      the levels of ``kidney_centre_mm``).
    """

    vessel_overlap_deg: float = 15.0
    great_vessel_depth_mm: float = 35.0
    psoas_depth_mm: float = 35.0
    kidney_medial_mm: float = 30.0
    kidney_semi_axes_mm: tuple[float, float, float] = (27.5, 20.0, 60.0)
    kidney_behind_transverse_mm: float = 5.0
    kidney_centre_mm: dict = field(default_factory=lambda: {
        "left": {"T12": -38.0, "L1": 0.0, "L2": 38.0}, "right": {"T12": -53.0, "L1": -15.0, "L2": 23.0, "L3": 61.0}})
    craniocaudal_reach_mm: float = 30.0
    voxel_mm: float = 2.0
    levels: dict = field(default_factory=lambda: {
        "aorta": ("T12", "L1", "L2", "L3", "L4"), "vena_cava": ("T12", "L1", "L2", "L3", "L4", "L5"),
        "iliac_vessels": ("L4", "L5", "L6", "S1"), "psoas": ("T12", "L1", "L2", "L3", "L4", "L5", "L6")})


class ModelledZones:
    """The modelled soft-tissue zones of one vertebra (built once): a voxel mask per structure in
    the vertebra frame, and each mask's distance map (mm) for clearances."""

    def __init__(self, mesh, landmarks: Landmarks, model: SoftTissueModel = SoftTissueModel(),
                 windows: EntryWindows = EntryWindows()):
        self.model, self.frame, self.level = model, landmarks.frame, landmarks.level
        self.sector_deg = windows.great_vessel_sector_deg
        self.notes: list[str] = []
        local = self.frame.to_local(mesh.vertices)
        body = self.frame.to_local(landmarks.body_mesh.vertices) if landmarks.body_mesh is not None else local
        lateral = max(model.kidney_medial_mm + 2 * model.kidney_semi_axes_mm[0],
                      np.abs(body[:, 0]).max() + model.psoas_depth_mm) + 4.0
        lo = np.array([-lateral, body[:, 1].min() - 45.0, body[:, 2].min() - model.craniocaudal_reach_mm])
        hi = np.array([lateral, body[:, 1].max() + model.great_vessel_depth_mm + 5.0,
                       body[:, 2].max() + model.craniocaudal_reach_mm])
        self.origin, shape = grid_cover(np.vstack([lo, hi]), model.voxel_mm, 0.0)
        bone = voxelize(local, mesh.faces, model.voxel_mm, origin=self.origin, shape=shape).solid
        faces = landmarks.body_mesh.faces if landmarks.body_mesh is not None else mesh.faces
        body_solid = voxelize(body, faces, model.voxel_mm, origin=self.origin, shape=shape).solid
        self.masks = self._masks(landmarks, bone, body_solid, shape)
        self.shape = np.array(shape)  # every mask's
        self._distance: dict[str, np.ndarray] = {}  # each zone's distance map, made when first asked for

    def _masks(self, lm: Landmarks, bone, body_solid, shape) -> dict[str, np.ndarray]:
        m, f = self.model, self.frame
        axes = [self.origin[i] + np.arange(shape[i]) * m.voxel_mm for i in range(3)]
        x, y, z = np.meshgrid(*axes, indexing="ij")
        from_body = ndi.distance_transform_edt(~body_solid) * m.voxel_mm
        angle = np.degrees(np.arctan2(x, y))  # from the anterior axis, + right
        top, bottom = f.to_local(lm.superior_endplate.point)[2], f.to_local(lm.inferior_endplate.point)[2]
        soft = ~bone & (z <= top + m.craniocaudal_reach_mm) & (z >= bottom - m.craniocaudal_reach_mm)
        tp_front = np.mean([f.to_local(p.isthmus_centre)[1] for p in lm.pedicles.values()])
        # the psoas lies lateral to the pedicles (not behind the body, in the canal)
        pedicle_x = np.mean([abs(f.to_local(p.isthmus_centre)[0]) for p in lm.pedicles.values()])
        sided = f.handedness_known
        if not sided:
            self.notes.append("the frame's left and right are unknown: the aorta and vena cava zones take both sides "
                              "of the anterior face, each kidney zone both sides")
        vessel = soft & (from_body <= m.great_vessel_depth_mm)

        def sector(bounds):
            a0, a1 = bounds if sided else (-self.sector_deg, self.sector_deg)
            return vessel & (angle >= a0) & (angle <= a1)
        masks = {
            "aorta": sector((-self.sector_deg, m.vessel_overlap_deg)),
            "vena_cava": sector((-m.vessel_overlap_deg, self.sector_deg)),
            "iliac_vessels": vessel & (np.abs(angle) <= self.sector_deg),
            "psoas": soft & (from_body <= m.psoas_depth_mm) & (np.abs(angle) > self.sector_deg)
                     & (y >= tp_front) & (np.abs(x) >= pedicle_x),
        }
        a, b, c = m.kidney_semi_axes_mm
        middle = 0.5 * (top + bottom)
        kidney = np.zeros(shape, bool)
        for side, sign in (("right", 1.0), ("left", -1.0)):
            height = m.kidney_centre_mm[side].get(self.level)
            if height is None:
                continue
            centre = (tp_front - m.kidney_behind_transverse_mm + b, middle + height)
            for mirror in ((sign,) if sided else (1.0, -1.0)):
                across = (mirror * x - m.kidney_medial_mm - a) / a
                kidney |= ~bone & (across ** 2 + ((y - centre[0]) / b) ** 2 + ((z - centre[1]) / c) ** 2 <= 1.0)
        masks["kidney"] = kidney
        return {name: mask for name, mask in masks.items()
                if mask.any() and (name == "kidney" or self.level in m.levels[name])}

    @property
    def names(self) -> list[str]:
        """The structures modelled at this level (keys of ZONE_NAMES)."""
        return list(self.masks)

    @property
    def affine(self) -> np.ndarray:
        """Voxel index -> model coordinates (mm), 4x4."""
        to_model = np.eye(4)
        to_model[:3, :3] = self.frame.rotation.T
        to_model[:3, 3] = self.frame.origin
        grid = np.diag([self.model.voxel_mm] * 3 + [1.0])
        grid[:3, 3] = self.origin
        return to_model @ grid

    def _index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's nearest voxel (clamped into the grid) and whether it lies on the grid."""
        ijk = np.rint((self.frame.to_local(points) - self.origin) / self.model.voxel_mm).astype(int)
        inside = np.all((ijk >= 0) & (ijk < self.shape), axis=1)
        return np.clip(ijk, 0, self.shape - 1), inside

    def lookup(self, points: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per zone, whether each point (model coordinates, mm) lies in it and its distance (mm) from
        it, the points placed on the grid once and every zone read at one flat index."""
        ijk, on_grid = self._index(points)
        if not self.masks:
            return {}
        flat = np.ravel_multi_index(tuple(ijk.T), tuple(self.shape))
        return {name: (on_grid & mask.ravel()[flat], self._distance_map(name).ravel()[flat])
                for name, mask in self.masks.items()}

    def inside(self, name: str, points: np.ndarray) -> np.ndarray:
        """Whether each point (model coordinates, mm) lies in zone ``name``."""
        ijk, on_grid = self._index(np.asarray(points, float))
        return on_grid & self.masks[name][tuple(ijk.T)]

    def distance(self, name: str, points: np.ndarray) -> np.ndarray:
        """Distance (mm, to a voxel's precision) from each point to zone ``name`` (0 inside; the
        grid's edge value beyond it)."""
        ijk, _ = self._index(points)
        return self._distance_map(name)[tuple(ijk.T)]

    def _distance_map(self, name: str) -> np.ndarray:
        """Zone ``name``'s distance map (mm, per voxel), made when first asked for."""
        if name not in self._distance:
            self._distance[name] = ndi.distance_transform_edt(~self.masks[name]) * self.model.voxel_mm
        return self._distance[name]

    def label_point(self, name: str) -> np.ndarray:
        """Where a picture labels zone ``name`` (model coordinates, mm): of its voxels nearest the
        body's mid-height, the one nearest their centroid (the middle of a vessel's crescent; one
        side of a paired zone)."""
        local = self.origin + np.argwhere(self.masks[name]) * self.model.voxel_mm
        level = local[np.abs(local[:, 2]) <= np.abs(local[:, 2]).min() + self.model.voxel_mm]
        return self.frame.to_model(level[np.argmin(np.linalg.norm(level - level.mean(axis=0), axis=1))])

    def surface(self, name: str):
        """Zone ``name``'s surface (trimesh, model coordinates, mm) for drawing."""
        from ..geometry.meshing import mask_surface

        return mask_surface(self.masks[name], self.affine, blur_sigma=1.0, smoothing=10)
