"""Parametric synthetic lumbar vertebrae (L1-L5) and an upper-sacrum segment (S1) with ground truth.

Method: an implicit, distance-like field (mm) on a regular grid is built from primitives (a
superelliptic vertebral body with wedge, endplate concavities and a kidney-shaped posterior wall;
elliptic pedicle tubes narrowest at the isthmus; rounded plates for laminae, articular pillars,
articular, transverse and spinous processes; the sacral ala at S1) joined by smooth unions. The
vertebral foramen is the one hole left between body, pedicles and laminae. Marching cubes gives a
closed surface, VTK decimation thins it (about 20k faces), and the result is checked to be
watertight, consistently wound, one body and genus 1 (one hole: the vertebral foramen).

Coordinates: the generator's model coordinates ARE the vertebra frame (mm; +x patient right, +y
anterior, +z superior; origin at the body centre: mid-width, middle of the mid-sagittal AP depth,
mid-height between the endplate rim planes). Every point in :class:`SyntheticVertebra` uses them.

Ground truth (a :class:`~bvn_plan.landmarks.Landmarks`) is what a measurement on the mesh gives:

* frame: identity at the body centre; its superior axis is the normalised bisector
  ``superior_endplate.normal - inferior_endplate.normal`` (exactly +z, the wedge being symmetric);
* endplates: the rim planes (flat outside the central concave zone), normals out of the body;
* pedicles: isthmus width/height from slicing the final mesh perpendicular to the pedicle axis
  at the isthmus (the narrowest section: the tube flares both ways); axis = tube axis
  (posterior -> anterior); body junction = where the axis meets the body mesh;
* posterior wall, anterior wall, basivertebral foramen (midline, mid-height of the posterior
  wall): ray casts on the final body mesh; terminus per :class:`TerminusParameters`;
* canal: the through-hole of the bone seen along z, extruded between the endplate rim planes at
  the posterior wall; ``canal_centroid`` is its volume centroid;
* morphometry: the LevelMorphometry names measured this way (canal width along the transverse
  line through the isthmus centres, canal depth on the midline through the canal centroid).

S1 is the upper sacral segment only (body, ala, pedicles, laminae with a median crest tubercle,
superior articular processes), cut flat below; genus 1 like a lumbar vertebra (the sacral canal).
Its steep pedicles (42 deg) enter the body at its posterolateral corner, so at S1 the
interpedicular distance is an outcome, not the requested ``canal_width_mm``.

Defaults per level come from :mod:`bvn_plan.levels`; the shape of the posterior arch and the other
values marked [A] below are assumptions (textbook proportions), all overridable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np
import trimesh
from scipy import ndimage
from scipy.optimize import brentq
from skimage.measure import marching_cubes

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import InputError
from ..coordinates import AnatomicalFrame
from ..landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from ..levels import LEVELS, LevelMorphometry, morphometry, normalise_level
from ..vertebra import Vertebra

#: Bumped whenever the generated geometry changes; stored in meshes/manifest.json.
GENERATOR_VERSION = "1.0"

#: Names of the per-face part labels of the vertebra mesh (index = label value).
PART_NAMES = ("body", "left_pedicle", "right_pedicle", "posterior_arch", "sacral_ala")

#: Kidney indentation of the posterior body wall at the midline (mm) [A]: L1-L3 bodies are
#: kidney-shaped (posterior wall concave toward the canal), L5 oval/convex [V, Benrud 2023 Interv
#: Pain Med 2:100270]; the depths are assumptions.
KIDNEY_DEPTH_MM = {"L1": 3.0, "L2": 2.5, "L3": 2.0, "L4": 1.0, "L5": 0.0, "S1": 0.0}

#: Posterior-arch dimensions per level (mm, degrees) [A]: textbook proportions, not measured.
#: tp = transverse process length, facet_angle_deg = angle of the facet joint from the sagittal plane.
ARCH = {
    "L1": dict(tp_length_mm=13.0, spinous_length_mm=28.0, spinous_height_mm=26.0, facet_angle_deg=25.0),
    "L2": dict(tp_length_mm=17.0, spinous_length_mm=29.0, spinous_height_mm=27.0, facet_angle_deg=28.0),
    "L3": dict(tp_length_mm=21.0, spinous_length_mm=30.0, spinous_height_mm=27.0, facet_angle_deg=32.0),
    "L4": dict(tp_length_mm=18.0, spinous_length_mm=28.0, spinous_height_mm=25.0, facet_angle_deg=38.0),
    "L5": dict(tp_length_mm=14.0, spinous_length_mm=23.0, spinous_height_mm=20.0, facet_angle_deg=45.0),
    "S1": dict(tp_length_mm=0.0, spinous_length_mm=10.0, spinous_height_mm=14.0, facet_angle_deg=50.0),
}

#: Bone metadata for the thermal model [A]: cortical shell thickness (mm) and trabecular bone
#: volume fraction. Normal vs osteoporotic values are assumptions (osteoporosis thins the cortex
#: and lowers BV/TV; docs/sources.md "Bioheat"). The shape does not change with them.
NORMAL_BONE = {"cortical_thickness_mm": 0.5, "bone_volume_fraction": 0.15}
OSTEOPOROTIC_BONE = {"cortical_thickness_mm": 0.3, "bone_volume_fraction": 0.08}

#: Random draws tried per seed before giving up (see :func:`synthesize`).
MAX_DRAWS = 8

_BACKGROUND = 4.0      # field value far from every primitive (mm)
_PAD = 7.0             # primitives are evaluated only within their box grown by this (mm)
_K_PEDICLE = 2.0       # smooth-union radius body/pedicle (mm)
_K_ARCH = 2.5          # smooth-union radius of the posterior arch (mm)
_ISTHMUS_CLEARANCE = 3.0   # gap between the isthmus cross-section and any blend zone (mm)
#: Relative widening of the pedicle from its isthmus to the body junction [A]: pedicles flare
#: toward the body and toward the articular pillar (half as much cranio-caudally).
PEDICLE_FLARE = 0.35
#: How far (mm) the converging pedicle may bulge medially past its isthmus wall toward the body
#: [A]; keeps wide, steep pedicles (S1) from closing the canal.
PEDICLE_MEDIAL_BULGE = 3.0
#: The smooth union fills the V where the two laminae meet by about this much (mm, measured);
#: the laminae are set back by it so that the measured canal depth matches the request.
LAMINA_BLEND_FILL = 0.9
#: How far (mm) in front of the posterolateral body wall the pedicle tube ends (inside the body) [A].
PEDICLE_BODY_OVERLAP = 5.0
#: Extra length (mm) of the S1 pedicle behind its isthmus [A]: with the steep S1 convergence the
#: laminae would otherwise meet the plane of the isthmus cross-section.
S1_PEDICLE_EXTRA = 8.0


@dataclass(frozen=True)
class SyntheticParameters:
    """Everything that shapes one synthetic vertebra (mm, degrees) and its bone metadata.

    ``morph`` holds the :class:`~bvn_plan.levels.LevelMorphometry` values actually used (after
    overrides and random variation). Endplate concavity depths 1.5 mm cranial / 0.7 mm caudal with
    a central concave zone of 70% of the diameter [V, Wang 2012 Eur Spine J]. ``kidney_depth_mm``:
    indentation of the posterior wall at the midline (:data:`KIDNEY_DEPTH_MM`). ``tp_length_mm``,
    ``spinous_length_mm``, ``spinous_height_mm``, ``facet_angle_deg`` (from the sagittal plane): posterior
    arch [A] (:data:`ARCH`). ``cortical_thickness_mm`` and ``bone_volume_fraction``: metadata for
    the thermal model [A] (:data:`NORMAL_BONE`, :data:`OSTEOPOROTIC_BONE`). ``seed``/``draw``:
    the random variation used (None/0 for the mean anatomy). ``voxel_mm`` is the sampling step of
    the implicit field, ``target_faces`` the face count after decimation.
    Pedicle sagittal angle: positive when the axis rises going anteriorly.
    """

    level: str
    morph: LevelMorphometry
    kidney_depth_mm: float
    endplate_concavity_superior_mm: float = 1.5
    endplate_concavity_inferior_mm: float = 0.7
    endplate_concave_zone: float = 0.7
    tp_length_mm: float = 20.0
    spinous_length_mm: float = 28.0
    spinous_height_mm: float = 22.0
    facet_angle_deg: float = 30.0
    cortical_thickness_mm: float = NORMAL_BONE["cortical_thickness_mm"]
    bone_volume_fraction: float = NORMAL_BONE["bone_volume_fraction"]
    seed: int | None = None
    draw: int = 0
    voxel_mm: float = 0.7
    target_faces: int = 20000

    def to_dict(self) -> dict:
        out = asdict(self)
        out["morph"] = {f.name: getattr(self.morph, f.name) for f in fields(self.morph)}
        return out


@dataclass
class SyntheticVertebra:
    """A generated vertebra with its ground truth (all mm, vertebra frame = model coordinates).

    ``face_labels[i]`` indexes :data:`PART_NAMES` for face ``i`` of ``vertebra.mesh``.
    ``landmarks.canal_mesh`` / ``landmarks.body_mesh`` are the closed vertebral foramen and the
    body alone (also exposed as ``canal_mesh`` and ``body_mesh``).
    """

    vertebra: Vertebra
    parameters: SyntheticParameters
    landmarks: Landmarks
    face_labels: np.ndarray
    part_names: tuple[str, ...] = PART_NAMES

    @property
    def mesh(self) -> trimesh.Trimesh:
        return self.vertebra.mesh

    @property
    def canal_mesh(self) -> trimesh.Trimesh:
        return self.landmarks.canal_mesh

    @property
    def body_mesh(self) -> trimesh.Trimesh:
        return self.landmarks.body_mesh


# ---------------------------------------------------------------------------------------------
# Parameters


def make_parameters(level: str, *, seed: int | None = None, vary: bool = False,
                    osteoporotic: bool = False, draw: int = 0, **overrides: float) -> SyntheticParameters:
    """Build the parameters of one level.

    Defaults come from :data:`bvn_plan.levels.MORPHOMETRY` and the [A] tables of this module.
    ``vary=True`` draws every morphometry value from a normal distribution with the level's SD
    (:meth:`LevelMorphometry.sd`) clipped to +-2 SD, reproducibly from ``seed`` (default 0);
    ``seed`` is ignored without ``vary``; ``draw`` picks another draw for the same seed (used by
    :func:`synthesize` to redraw combinations that do not form one bone). ``osteoporotic`` switches the bone metadata to
    :data:`OSTEOPOROTIC_BONE`. ``overrides`` name any LevelMorphometry field (e.g.
    ``pedicle_width_mm=5``) or SyntheticParameters field and win over defaults and variation.
    Raises :class:`InputError` on unknown levels/names or implausible values.
    """
    name = normalise_level(level)
    if name not in LEVELS:
        raise InputError(f"the synthetic generator makes {', '.join(LEVELS)}; {name} is not one of them")
    base = morphometry(name)
    morph_names = {f.name for f in fields(LevelMorphometry)} - {"level", "relative_sd"}
    param_names = {f.name for f in fields(SyntheticParameters)} - {"level", "morph", "seed", "draw"}
    unknown = set(overrides) - morph_names - param_names
    if unknown:
        raise InputError(
            f"unknown synthetic parameter(s) {', '.join(sorted(unknown))}: use morphometry names "
            f"({', '.join(sorted(morph_names))}) or {', '.join(sorted(param_names))}"
        )
    for key, value in overrides.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise InputError(f"parameter {key}={value!r} must be a finite number")

    morph = base
    used_seed = None
    if vary:
        used_seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng([used_seed, LEVELS.index(name), draw])
        drawn = {}
        for fname in sorted(morph_names):
            mean, sd = getattr(base, fname), base.sd(fname)
            drawn[fname] = float(mean + sd * np.clip(rng.standard_normal(), -2.0, 2.0))
        morph = base.with_overrides(**drawn)
    morph = morph.with_overrides(**{k: float(v) for k, v in overrides.items() if k in morph_names})

    bone = OSTEOPOROTIC_BONE if osteoporotic else NORMAL_BONE
    values = dict(ARCH[name], kidney_depth_mm=KIDNEY_DEPTH_MM[name], **bone)
    values.update({k: v for k, v in overrides.items() if k in param_names})
    if "target_faces" in values:
        values["target_faces"] = int(values["target_faces"])
    params = SyntheticParameters(level=name, morph=morph, seed=used_seed, draw=draw if vary else 0, **values)
    _validate(params)
    return params


def _validate(p: SyntheticParameters) -> None:
    m = p.morph
    positive = ["body_width_mm", "body_depth_mm", "body_height_anterior_mm", "body_height_posterior_mm",
                "pedicle_width_mm", "pedicle_height_mm", "canal_width_mm", "canal_depth_mm"]
    for name in positive:
        if getattr(m, name) <= 0:
            raise InputError(f"{name} must be positive (got {getattr(m, name)} mm)")
    checks = [
        (30 <= m.body_width_mm <= 70, f"body_width_mm {m.body_width_mm:.1f} mm is outside 30-70 mm"),
        (22 <= m.body_depth_mm <= 50, f"body_depth_mm {m.body_depth_mm:.1f} mm is outside 22-50 mm"),
        (15 <= m.body_height_anterior_mm <= 40 and 15 <= m.body_height_posterior_mm <= 40,
         "body heights must be 15-40 mm"),
        (3 <= m.pedicle_width_mm <= 22, f"pedicle_width_mm {m.pedicle_width_mm:.1f} mm is outside 3-22 mm"),
        (5 <= m.pedicle_height_mm <= 20, f"pedicle_height_mm {m.pedicle_height_mm:.1f} mm is outside 5-20 mm"),
        (m.pedicle_height_mm < min(m.body_height_anterior_mm, m.body_height_posterior_mm) - 4,
         "pedicle_height_mm must be at least 4 mm less than the body heights"),
        (0 <= m.pedicle_transverse_angle_deg <= 50,
         f"pedicle_transverse_angle_deg {m.pedicle_transverse_angle_deg:.1f} deg is outside 0-50 deg"),
        (-20 <= m.pedicle_sagittal_angle_deg <= 25,
         f"pedicle_sagittal_angle_deg {m.pedicle_sagittal_angle_deg:.1f} deg is outside -20-25 deg"),
        (12 <= m.canal_width_mm <= 40, f"canal_width_mm {m.canal_width_mm:.1f} mm is outside 12-40 mm"),
        (8 <= m.canal_depth_mm <= 28, f"canal_depth_mm {m.canal_depth_mm:.1f} mm is outside 8-28 mm"),
        (-2 <= p.kidney_depth_mm <= 6, f"kidney_depth_mm {p.kidney_depth_mm} mm is outside -2-6 mm"),
        (0 <= p.endplate_concavity_superior_mm <= 4 and 0 <= p.endplate_concavity_inferior_mm <= 4,
         "endplate concavities must be 0-4 mm"),
        (0.3 <= p.endplate_concave_zone <= 0.9, "endplate_concave_zone must be 0.3-0.9"),
        (0.05 <= p.cortical_thickness_mm <= 3, "cortical_thickness_mm must be 0.05-3 mm"),
        (0.01 <= p.bone_volume_fraction <= 0.6, "bone_volume_fraction must be 0.01-0.6"),
        (0.3 <= p.voxel_mm <= 1.2, "voxel_mm must be 0.3-1.2 mm"),
        (2000 <= p.target_faces <= 500000, "target_faces must be 2000-500000"),
        (p.tp_length_mm >= 0 and p.spinous_length_mm > 0 and p.spinous_height_mm > 0,
         "process lengths must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(f"synthetic {p.level}: {message}; choose a value near the level default")


# ---------------------------------------------------------------------------------------------
# Field primitives. Each maps points (N, 3) in mm to a distance-like value (negative inside).


def _smin(a, b, k):
    """Polynomial smooth minimum (smooth union) with blend radius ``k`` (mm)."""
    h = np.clip(k - np.abs(a - b), 0.0, None) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _smax(a, b, k):
    return -_smin(-a, -b, k)


@dataclass
class _Box:
    """Rounded box: centre, orthonormal rows ``axes``, half sizes (mm) and corner radius."""

    centre: np.ndarray
    axes: np.ndarray
    half: np.ndarray
    radius: float

    def field(self, p):
        q = np.abs((p - self.centre) @ self.axes.T) - (self.half - self.radius)
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        return outside + np.minimum(q.max(axis=-1), 0.0) - self.radius

    def bounds(self):
        corner = np.abs(self.axes.T) @ self.half
        return self.centre - corner, self.centre + corner


def _frame_from(x_axis, up) -> np.ndarray:
    """Orthonormal rows (x, y, z) with x along ``x_axis`` and z as close as possible to ``up``."""
    x = np.asarray(x_axis, float) / np.linalg.norm(x_axis)
    y = np.cross(up, x)
    y /= np.linalg.norm(y)
    return np.vstack([x, y, np.cross(x, y)])


@dataclass
class _Body:
    """Vertebral body: superellipse in plan with kidney warp, wedge and concave endplates."""

    half_width: float
    half_depth: float        # of the superellipse (mid-sagittal depth + kidney depth) / 2
    centre_y: float
    kidney: float
    mean_height: float
    wedge_slope: float       # dz/dy of the superior rim plane (= -dz/dy of the inferior one)
    concave_sup: float
    concave_inf: float
    concave_zone: float
    exponent: float = 3.2
    rim_radius: float = 1.2

    def plan_radius(self, p):
        x, y = p[:, 0], p[:, 1]
        post = np.clip((self.centre_y - y) / (0.6 * self.half_depth), 0.0, 1.0)
        post = post * post * (3 - 2 * post)
        warp = self.kidney * np.exp(-(x / (0.4 * self.half_width)) ** 2) * post
        yw = y - self.centre_y - warp
        n = self.exponent
        return (np.abs(x / self.half_width) ** n + np.abs(yw / self.half_depth) ** n) ** (1 / n)

    def plan_field(self, p):
        """Distance-like field of the body outline in the axial plane (ignores z)."""
        return (self.plan_radius(p) - 1.0) * min(self.half_width, self.half_depth)

    def field(self, p):
        r = self.plan_radius(p)
        f_plan = (r - 1.0) * min(self.half_width, self.half_depth)
        zone = np.clip(1 - (r / self.concave_zone) ** 2, 0.0, None) ** 2
        top = self.mean_height / 2 + self.wedge_slope * p[:, 1] - self.concave_sup * zone
        bottom = -self.mean_height / 2 - self.wedge_slope * p[:, 1] + self.concave_inf * zone
        f_z = np.maximum(p[:, 2] - top, bottom - p[:, 2])
        return _smax(f_plan, f_z, self.rim_radius)

    def bounds(self):
        h = self.mean_height / 2 + abs(self.wedge_slope) * 2 * self.half_depth + 1
        lo = np.array([-self.half_width, self.centre_y - self.half_depth, -h])
        hi = np.array([self.half_width, self.centre_y + self.half_depth, h])
        return lo, hi


@dataclass
class _PedicleTube:
    """Elliptic tube along ``axis`` whose cross-section is narrowest (W x H) at ``centre``.

    The transverse semi-axis grows as 1 + flare * t^2 and the cranio-caudal one half as fast (t mm
    along the axis from the isthmus, capped at |t| = ``flare_span``), so the isthmus is the unique
    narrowest perpendicular cross-section.
    """

    centre: np.ndarray
    axes: np.ndarray          # rows: axis (posterior->anterior), e1 (transverse), e2 (cranial-ish)
    width: float
    height: float
    t_min: float
    t_max: float
    flare: float
    flare_span: float
    y_cut: float = math.inf   # the tube ends at this coronal plane (mm)
    x_medial: float = -math.inf   # ... and never reaches closer than this to the mid-sagittal plane

    def field(self, p):
        local = (p - self.centre) @ self.axes.T
        t = local[:, 0]
        grow = self.flare * np.minimum(t * t, self.flare_span ** 2)
        a, b = self.width / 2 * (1 + grow), self.height / 2 * (1 + 0.5 * grow)
        r = np.sqrt((local[:, 1] / a) ** 2 + (local[:, 2] / b) ** 2)
        f = (r - 1) * np.minimum(a, b)
        side = math.copysign(1.0, self.centre[0])
        clip = np.maximum(p[:, 1] - self.y_cut, self.x_medial - side * p[:, 0])
        return np.maximum(f, np.maximum(np.maximum(self.t_min - t, t - self.t_max), clip))

    def bounds(self):
        s = 1 + self.flare * self.flare_span ** 2
        ends = [self.centre + self.axes[0] * t for t in (self.t_min, self.t_max)]
        reach = max(self.width, self.height) / 2 * s
        return np.min(ends, axis=0) - reach, np.max(ends, axis=0) + reach


# ---------------------------------------------------------------------------------------------
# Geometry layout


@dataclass
class _Layout:
    """The primitives of one vertebra grouped by part, and the design values derived from them."""

    body: _Body
    pedicles: dict[str, _PedicleTube]
    arch: list            # (primitive, part name) pairs joined with _K_ARCH
    sup_plane: Plane
    inf_plane: Plane
    canal_seed: np.ndarray


def _layout(p: SyntheticParameters) -> _Layout:
    m = p.morph
    depth = m.body_depth_mm
    half_depth = (depth + p.kidney_depth_mm) / 2
    mean_h = (m.body_height_anterior_mm + m.body_height_posterior_mm) / 2
    slope = (m.body_height_anterior_mm - m.body_height_posterior_mm) / (2 * depth)
    body = _Body(m.body_width_mm / 2, half_depth, -p.kidney_depth_mm / 2, p.kidney_depth_mm, mean_h, slope,
                 p.endplate_concavity_superior_mm, p.endplate_concavity_inferior_mm, p.endplate_concave_zone)
    y_post = -depth / 2                       # posterior wall at the midline
    y_post_lat = y_post - p.kidney_depth_mm      # posterolateral corners

    pedicles, arch = {}, []
    theta_t, theta_s = np.radians(m.pedicle_transverse_angle_deg), np.radians(m.pedicle_sagittal_angle_deg)
    half_w, half_h = m.pedicle_width_mm / 2, m.pedicle_height_mm / 2
    # Isthmus far enough behind the body that no blend reaches its cross-section.
    # (the anterolateral edge of the isthmus only counts when it lies in front of the body)
    lateral_edge = m.canal_width_mm / 2 + half_w / math.cos(theta_t) + half_w * math.cos(theta_t)
    reach_y = half_h * abs(math.sin(theta_s))
    if lateral_edge < m.body_width_mm / 2 + 1.0:
        reach_y += half_w * math.sin(theta_t)
    lead = _K_PEDICLE + _ISTHMUS_CLEARANCE + reach_y + 1.0
    back = _K_ARCH + _ISTHMUS_CLEARANCE + reach_y + 4.5 + (S1_PEDICLE_EXTRA if p.level == "S1" else 0.0)
    z_ped = m.body_height_posterior_mm / 2 - half_h - 1.5 + y_post_lat * slope
    facet_angle_deg = np.radians(p.facet_angle_deg)
    # Laminae: from just below the pedicle top to 2 mm above the inferior endplate level.
    lam_top, lam_bottom = z_ped + half_h - 1.0, -m.body_height_posterior_mm / 2 + 2.0
    z_lam, lam_h = (lam_top + lam_bottom) / 2, lam_top - lam_bottom
    x_facet = m.canal_width_mm / 2 + 3.0
    sacrum = p.level == "S1"
    lamina_t = 6.0
    for side, s in (("right", 1.0), ("left", -1.0)):
        d = np.array([-s * math.sin(theta_t) * math.cos(theta_s), math.cos(theta_t) * math.cos(theta_s),
                      math.sin(theta_s)])
        e1 = np.cross([0.0, 0.0, 1.0], d)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(d, e1)
        y_cut = y_post_lat + PEDICLE_BODY_OVERLAP
        tube = _PedicleTube(np.zeros(3), np.vstack([d, e1, e2]), m.pedicle_width_mm, m.pedicle_height_mm,
                            -back - 4.0, 60.0, PEDICLE_FLARE / lead ** 2, lead)
        # Medial wall on the transverse line through the isthmus centre at canal_width_mm / 2.
        medial = brentq(lambda r: tube.field(np.array([[-s * r, 0.0, 0.0]]))[0], 0.0, 3 * half_w / math.cos(theta_t))
        # z_ped is the height of the axis where it reaches the body.
        # ... unless the axis would then reach the body too far laterally (steep S1 pedicles): the
        # axis must cross y_cut at least half a pedicle width + 2 mm inside the body's lateral edge.
        x_entry = m.body_width_mm / 2 - half_w - 2.0
        x_c = m.canal_width_mm / 2 + medial
        if p.level == "S1":
            x_c = min(x_c, x_entry + (lead + PEDICLE_BODY_OVERLAP) * math.tan(theta_t))
        tube.centre = np.array([s * x_c, y_post_lat - lead, z_ped - lead * math.tan(theta_s)])
        # The tube ends at a coronal plane inside the body: PEDICLE_BODY_OVERLAP in front of the
        # posterolateral wall, or further forward where its axis is first 2 mm inside the outline.
        steps = np.arange(0.0, 60.0, 0.5)
        inside = np.flatnonzero(body.plan_field(tube.centre + steps[:, None] * d) < -2.0)
        if len(inside) == 0:
            raise InputError(f"synthetic {p.level}: the {side} pedicle misses the vertebral body; "
                             "reduce pedicle_transverse_angle_deg or canal_width_mm")
        tube.y_cut = max(y_cut, tube.centre[1] + steps[inside[0]] * d[1] + 1.0)
        tube.t_max = (tube.y_cut - tube.centre[1]) / d[1] + max(half_w, half_h) * 1.5
        tube.x_medial = x_c - medial - PEDICLE_MEDIAL_BULGE
        pedicles[side] = tube
        pillar = tube.centre - d * back
        pillar_box = _Box(pillar + [0, 0, -2.0], np.eye(3), np.array([5.0, 4.5, mean_h * 0.42]), 2.5)
        arch.append((pillar_box, "posterior_arch"))
        # Superior articular process: rises above the pillar, facet facing medially/posteriorly.
        face_n = np.array([-s * math.cos(facet_angle_deg), -math.sin(facet_angle_deg), 0.0])
        in_plane = np.cross([0.0, 0.0, 1.0], face_n)
        sap_top = m.body_height_posterior_mm / 2 + (10.0 if not sacrum else 8.0)
        sap_h = sap_top - pillar[2]
        sap_centre = np.array([s * (x_facet + 2.5), pillar[1] - 4.0, sap_top - sap_h / 2])
        arch.append((_Box(sap_centre, _frame_from(in_plane, [0, 0, 1.0]), np.array([7.0, 2.8, sap_h / 2]), 2.4),
                     "posterior_arch"))
        if not sacrum:
            # Inferior articular process: descends below the lamina, facet facing laterally/anteriorly.
            iap_bottom = -m.body_height_posterior_mm / 2 - 11.0
            iap_h = lam_bottom + 6.0 - iap_bottom          # overlaps the lamina by 6 mm
            iap_centre = np.array([s * (x_facet - 3.5), pillar[1] - 5.0, iap_bottom + iap_h / 2])
            arch.append((_Box(iap_centre, _frame_from(in_plane, [0, 0, 1.0]), np.array([6.5, 3.0, iap_h / 2]), 2.4),
                         "posterior_arch"))
            # Transverse process: lateral and slightly posterior from the pillar.
            tp_dir = np.array([s * math.cos(np.radians(12)), -math.sin(np.radians(12)), 0.06])
            stout = p.level == "L5"
            tp_half = np.array([p.tp_length_mm / 2 + 3.0, 4.5 if stout else 3.0, 6.0 if stout else 4.5])
            tp_centre = pillar + tp_dir * (tp_half[0] + 2.0) + [0, 1.5, 2.0]
            arch.append((_Box(tp_centre, _frame_from(tp_dir, [0, 0, 1.0]), tp_half, 2.8), "posterior_arch"))
    # Laminae meet at the midline behind the canal; their anterior face there sets the canal depth.
    y_lam_front = y_post - m.canal_depth_mm - LAMINA_BLEND_FILL
    for side, s in (("right", 1.0), ("left", -1.0)):
        pillar = pedicles[side].centre - pedicles[side].axes[0] * back
        start = np.array([pillar[0] - s * 3.0, pillar[1] - 3.0, z_lam])
        end = np.array([0.0, y_lam_front - lamina_t / 2, z_lam])
        run = end - start
        length = np.linalg.norm(run)
        x_axis = run / length
        normal = np.cross([0.0, 0.0, 1.0], x_axis)        # horizontal, perpendicular to the plate
        normal *= np.sign(normal[1])                       # pointing anteriorly
        # Shift the plate so that its anterior face crosses the midline at y_lam_front.
        front_y_mid = end[1] + (lamina_t / 2) / abs(normal[1])
        centre = (start + end) / 2 + [0.0, y_lam_front - front_y_mid, 0.0] + x_axis * 1.5
        up = np.array([0.0, 0.0, 1.0]) + math.tan(np.radians(15)) * normal   # lower edge posterior
        arch.append((_Box(centre, _frame_from(x_axis, up), np.array([length / 2 + 2.5, lamina_t / 2, lam_h / 2]), 2.0),
                     "posterior_arch"))
    # Spinous process (S1: the median sacral crest tubercle), posterior and inferior.
    sp_root = np.array([0.0, y_lam_front - lamina_t, z_lam - 1.0])
    sigma = np.radians(18.0 if not sacrum else 35.0)
    sp_dir = np.array([0.0, -math.cos(sigma), -math.sin(sigma)])
    sp_half = np.array([p.spinous_length_mm / 2 + 2.0, 3.5, p.spinous_height_mm / 2])
    sp_axes = _frame_from(sp_dir, [0, 0, 1.0])     # rows: along, transverse (x), sagittal height
    sp_centre = sp_root + sp_dir * (p.spinous_length_mm / 2)
    arch.append((_Box(sp_centre, sp_axes, sp_half, 3.0), "posterior_arch"))
    tip = sp_root + sp_dir * (p.spinous_length_mm + 0.5)
    arch.append((_Box(tip, sp_axes, np.array([4.0, 4.5, p.spinous_height_mm / 2 + 1.0]), 4.0), "posterior_arch"))
    if sacrum:
        for side, s in (("right", 1.0), ("left", -1.0)):
            # Sacral ala: a wing from the lateral body wall, in front of the pedicle.
            ala_centre = np.array([s * (m.body_width_mm / 2 + 9.0), 3.0, mean_h / 2 - 8.5])
            ala_axes = _frame_from([s * math.cos(np.radians(10)), -math.sin(np.radians(10)), 0.0], [0, 0, 1.0])
            arch.append((_Box(ala_centre, ala_axes, np.array([15.0, 10.0, 8.5]), 5.0), "sacral_ala"))

    n_sup = np.array([0.0, -slope, 1.0]) / math.hypot(slope, 1.0)
    n_inf = np.array([0.0, -slope, -1.0]) / math.hypot(slope, 1.0)
    sup = Plane(np.array([0.0, 0.0, mean_h / 2]), n_sup)
    inf = Plane(np.array([0.0, 0.0, -mean_h / 2]), n_inf)
    seed = np.array([0.0, y_post - m.canal_depth_mm / 2, 0.0])
    return _Layout(body, pedicles, arch, sup, inf, seed)


# ---------------------------------------------------------------------------------------------
# Field sampling and meshing


def _sample(prims: list, voxel: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth union of ``prims`` = [(primitive, blend radius or None), ...] on a grid (mm).

    Returns the field (nx, ny, nz) and the grid origin. Each primitive is evaluated only inside
    its bounding box grown by :data:`_PAD`; elsewhere the field is the background value.
    """
    origin = np.floor(lo / voxel) * voxel
    shape = (np.ceil((hi - origin) / voxel).astype(int) + 1)
    field_ = np.full(tuple(shape), _BACKGROUND)
    axes = [origin[i] + voxel * np.arange(shape[i]) for i in range(3)]
    for prim, k in prims:
        blo, bhi = prim.bounds()
        i0 = np.clip(np.floor((blo - _PAD - origin) / voxel).astype(int), 0, shape - 1)
        i1 = np.clip(np.ceil((bhi + _PAD - origin) / voxel).astype(int) + 1, 1, shape)
        sub = np.meshgrid(*[axes[i][i0[i]:i1[i]] for i in range(3)], indexing="ij")
        pts = np.stack([c.ravel() for c in sub], axis=1)
        g = np.minimum(prim.field(pts), _BACKGROUND).reshape(sub[0].shape)
        view = field_[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]]
        view[...] = np.minimum(view, g) if k is None else _smin(view, g, k)
    return field_, origin


def _mesh_from_field(values: np.ndarray, origin: np.ndarray, voxel: float, target_faces: int,
                     what: str, genus: int, p: SyntheticParameters) -> trimesh.Trimesh:
    """Closed surface of ``values < 0`` (mm), decimated to about ``target_faces`` faces.

    The marching-cubes surface must be one closed piece of the given genus (else
    :class:`InputError`); decimation is accepted only if it keeps that (VTK quadric decimation,
    then topology-preserving decimation, then a milder reduction). Vertices are float32 values.
    """
    import pyvista as pv

    padded = np.pad(np.where(values == 0.0, 1e-6, values), 1, constant_values=_BACKGROUND)  # no exact ties
    verts, faces, _, _ = marching_cubes(padded, 0.0, spacing=(voxel,) * 3, allow_degenerate=False)
    verts += origin - voxel
    raw = trimesh.Trimesh(verts, faces, process=True)
    _check_closed(raw, what, genus, p)
    surface = pv.PolyData(verts, np.hstack([np.full((len(faces), 1), 3), faces]).ravel())
    attempts = [(target_faces, False), (target_faces, True), (int(target_faces * 1.3), False),
                (int(target_faces * 1.3), True)]
    for faces_wanted, keep_topology in attempts:
        if surface.n_cells <= faces_wanted:
            return _as_trimesh(surface)
        reduction = 1.0 - faces_wanted / surface.n_cells
        if keep_topology:
            thin = surface.decimate_pro(reduction, preserve_topology=True, splitting=False, feature_angle=45.0)
        else:
            thin = surface.decimate(reduction)
        mesh = _as_trimesh(thin.clean())
        if _closed_problems(mesh, genus) == []:
            return mesh
    return _as_trimesh(surface)    # undecimated: already checked


def _as_trimesh(surface) -> trimesh.Trimesh:
    tri = surface.faces.reshape(-1, 4)[:, 1:]
    pts = np.asarray(surface.points, dtype=np.float32).astype(np.float64)
    mesh = trimesh.Trimesh(pts, tri, process=True)
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def _closed_problems(mesh: trimesh.Trimesh, genus: int) -> list[str]:
    """What keeps ``mesh`` from being one closed, consistently wound surface of ``genus``."""
    parts = len(mesh.split(only_watertight=False))
    problems = []
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        problems.append("not a closed manifold surface")
    if parts != 1:
        problems.append(f"{parts} separate pieces")
    elif mesh.is_watertight and mesh.euler_number != 2 - 2 * genus:
        problems.append(f"genus {1 - mesh.euler_number // 2} instead of {genus}")
    return problems


def _check_closed(mesh: trimesh.Trimesh, what: str, genus: int, p: SyntheticParameters) -> None:
    problems = _closed_problems(mesh, genus)
    if problems:
        raise InputError(
            f"synthetic {p.level} {what}: {', '.join(problems)} with these parameters; the parts no "
            "longer fit together. Choose values nearer the level defaults (or a smaller voxel_mm)"
        )


# ---------------------------------------------------------------------------------------------
# Measurements on the finished mesh (ground truth = what slicing / ray casting gives)


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
    e1 = np.asarray(transverse, float) - axis * (np.dot(transverse, axis))
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    segments, face_ids = trimesh.intersections.mesh_plane(mesh, axis, centre, return_faces=True)
    if len(segments) == 0:
        raise InputError("the plane through the pedicle centre does not cut the mesh")
    cut = set(face_ids.tolist())
    adjacency = [pair for pair in mesh.face_adjacency if pair[0] in cut and pair[1] in cut]
    index = {f: i for i, f in enumerate(face_ids.tolist())}
    edges = np.array([[index[a], index[b]] for a, b in adjacency]).reshape(-1, 2)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

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


# ---------------------------------------------------------------------------------------------
# The generator


def synthesize(level: str = "L4", *, seed: int | None = None, vary: bool = False, osteoporotic: bool = False,
               terminus: TerminusParameters | None = None, **overrides: float) -> SyntheticVertebra:
    """Generate one vertebra (L1-L5) or upper-sacrum segment (S1) with its ground truth.

    Arguments as :func:`make_parameters`. With ``vary``, a random draw whose parts do not form
    one genus-1 bone (or that fails the consistency checks) is replaced by the next draw of the
    same seed, up to :data:`MAX_DRAWS`; ``parameters.draw`` records which one was used.
    ``terminus`` places the BVN terminus (default
    :class:`TerminusParameters`). Output in the vertebra frame (mm, RAS-like, origin at the body
    centre). Deterministic: the same arguments give the same mesh bytes. Raises
    :class:`InputError` for bad parameters or parameters whose parts no longer form one genus-1 bone.
    """
    terminus = terminus or TerminusParameters()
    if not vary:
        return _build(make_parameters(level, osteoporotic=osteoporotic, **overrides), terminus)
    for draw in range(MAX_DRAWS):
        try:
            params = make_parameters(level, seed=seed, vary=True, osteoporotic=osteoporotic, draw=draw,
                                     **overrides)
            return _build(params, terminus)
        except InputError as exc:
            failure = exc
    raise InputError(f"{failure} (no valid random variant in {MAX_DRAWS} draws for seed {seed})")


def _build(params: SyntheticParameters, terminus: TerminusParameters) -> SyntheticVertebra:
    lay = _layout(params)
    voxel = params.voxel_mm

    prims = [(lay.body, None)] + [(ped, _K_PEDICLE) for ped in lay.pedicles.values()]
    prims += [(prim, _K_ARCH) for prim, _ in lay.arch]
    bounds = np.array([b for prim, _ in prims for b in prim.bounds()])
    lo, hi = bounds.min(axis=0) - 3.0, bounds.max(axis=0) + 3.0
    values, origin = _sample(prims, voxel, lo, hi)
    mesh = _mesh_from_field(values, origin, voxel, params.target_faces, "vertebra", 1, params)
    _check_closed(mesh, "vertebra", 1, params)

    body_values, body_origin = _sample([(lay.body, None)], voxel, *lay.body.bounds())
    body_mesh = _mesh_from_field(body_values, body_origin, voxel, max(4000, params.target_faces // 3),
                                 "body", 0, params)
    _check_closed(body_mesh, "body", 0, params)

    canal_mesh = _canal_mesh(values < 0, origin, voxel, lay, params)
    labels = _part_labels(mesh, lay)
    landmarks = _ground_truth(params, lay, mesh, body_mesh, canal_mesh, labels, terminus)
    vertebra = Vertebra(mesh, level=params.level, patient_frame="RAS", input_units="mm",
                        source=f"synthetic {params.level} (bvn-plan generator {GENERATOR_VERSION})")
    return SyntheticVertebra(vertebra, params, landmarks, labels)


def _canal_mesh(solid: np.ndarray, origin: np.ndarray, voxel: float, lay: _Layout,
                p: SyntheticParameters) -> trimesh.Trimesh:
    """The vertebral foramen as a closed volume: the through-hole of the bone seen along z (the
    hole in the bone's projection onto the axial plane), extruded between the inferior and superior
    endplate rim planes at the midline posterior wall (mm, vertebra frame)."""
    hole = ~solid.any(axis=2)
    regions, _ = ndimage.label(hole)
    seed_idx = np.round((lay.canal_seed[:2] - origin[:2]) / voxel).astype(int)
    label = regions[seed_idx[0], seed_idx[1]]
    border = set(np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])))
    if label == 0 or label in border:
        raise InputError(f"synthetic {p.level}: the posterior arch does not close around the canal; "
                         "choose values nearer the level defaults")
    inside = regions == label
    sdf2 = (ndimage.distance_transform_edt(~inside) - ndimage.distance_transform_edt(inside) + 0.5) * voxel
    y_wall = -p.morph.body_depth_mm / 2
    z_top = lay.sup_plane.point[2] - lay.sup_plane.normal[1] / lay.sup_plane.normal[2] * y_wall
    z_bot = lay.inf_plane.point[2] - lay.inf_plane.normal[1] / lay.inf_plane.normal[2] * y_wall
    zs = np.arange(math.floor(z_bot / voxel) - 2, math.ceil(z_top / voxel) + 3) * voxel
    slab = np.maximum(zs - z_top, z_bot - zs)
    values = np.maximum(sdf2[:, :, None], slab[None, None, :])
    mesh = _mesh_from_field(values, np.array([origin[0], origin[1], zs[0]]), voxel, 4000, "canal volume", 0, p)
    _check_closed(mesh, "canal volume", 0, p)
    return mesh


def _group_fields(points: np.ndarray, lay: _Layout) -> np.ndarray:
    """Field of each part of PART_NAMES at ``points`` (mm); +inf where the level lacks the part."""
    out = np.full((len(points), len(PART_NAMES)), np.inf)
    out[:, 0] = lay.body.field(points)
    out[:, 1] = lay.pedicles["left"].field(points)
    out[:, 2] = lay.pedicles["right"].field(points)
    for prim, part in lay.arch:
        col = PART_NAMES.index(part)
        out[:, col] = np.minimum(out[:, col], prim.field(points))
    return out


def _part_labels(mesh: trimesh.Trimesh, lay: _Layout) -> np.ndarray:
    """Per-face part label (index into PART_NAMES): the part whose primitive is nearest."""
    return np.argmin(_group_fields(mesh.triangles_center, lay), axis=1).astype(np.int8)


def _face_regions(mesh: trimesh.Trimesh, labels: np.ndarray, lay: _Layout, p: SyntheticParameters) -> dict:
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


def _ground_truth(p: SyntheticParameters, lay: _Layout, mesh: trimesh.Trimesh, body_mesh: trimesh.Trimesh,
                  canal_mesh: trimesh.Trimesh, labels: np.ndarray, terminus: TerminusParameters) -> Landmarks:
    m = p.morph
    # Mid-sagittal walls at mid-height, by ray casts on the body alone.
    hits_back = _ray_hits(body_mesh, [0.0, 0.0, 0.0], [0.0, -1.0, 0.0])
    hits_front = _ray_hits(body_mesh, [0.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    y_post, y_ant = -hits_back[0], hits_front[0]

    def between(y):  # z of the inferior and superior rim planes at (0, y)
        top = lay.sup_plane.point[2] - lay.sup_plane.normal[1] / lay.sup_plane.normal[2] * y
        bottom = lay.inf_plane.point[2] - lay.inf_plane.normal[1] / lay.inf_plane.normal[2] * y
        return bottom, top

    if p.level == "S1" and terminus.s1_body_centre:
        target = np.array([0.0, (y_post + y_ant) / 2, 0.0])
    else:
        y_t = y_post + terminus.depth_fraction * (y_ant - y_post)
        bottom, top = between(y_t)
        target = np.array([0.0, y_t, bottom + terminus.height_fraction * (top - bottom)])

    pedicles, widths, heights = {}, [], []
    for side, tube in lay.pedicles.items():
        d, e1 = tube.axes[0], tube.axes[1]
        width, height = pedicle_section(mesh, tube.centre, d, e1)
        if abs(width - m.pedicle_width_mm) > 1.0 or abs(height - m.pedicle_height_mm) > 1.0:
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
    ant_bottom, ant_top = between(y_ant)
    post_bottom, post_top = between(y_post)
    measured = {
        "body_width_mm": float(np.ptp(body_mesh.vertices[:, 0])),
        "body_depth_mm": float(y_ant - y_post),
        "body_height_anterior_mm": float(ant_top - ant_bottom),
        "body_height_posterior_mm": float(post_top - post_bottom),
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


# ---------------------------------------------------------------------------------------------
# The default spine on disk (meshes/)

#: Orientation of each level in the assembled spine: rotation about +x (degrees; negative turns
#: the superior endplate to face anteriorly) giving a sacral slope of 40 deg and a lumbar lordosis
#: of about 50 deg L1-S1 [A, typical standing values].
SPINE_TILT_DEG = {"S1": -40.0, "L5": -26.0, "L4": -14.0, "L3": -4.0, "L2": 3.0, "L1": 8.0}
#: Disc height (mm) between each level and the one below it, at the endplate centres [A].
DISC_HEIGHT_MM = {"L1": 8.0, "L2": 9.0, "L3": 10.0, "L4": 11.0, "L5": 10.0}

SPINE_FRAME = ("assembled spine: mm, +x patient right, +y anterior, +z superior, origin at the S1 "
               "body centre; placement[level] maps that level's vertebra frame into it")
VERTEBRA_FRAME = ("vertebra frame: mm, +x patient right, +y anterior, +z superior (RAS-like), origin "
                  "at the body centre (mid-width, middle of the mid-sagittal depth, mid-height "
                  "between the endplate rim planes)")


def _rot_x(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[1.0, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def spine_placements(vertebrae: dict[str, SyntheticVertebra]) -> dict[str, np.ndarray]:
    """4x4 transforms (mm) from each level's vertebra frame into the assembled spine frame.

    S1 sits at the origin tilted by SPINE_TILT_DEG; each level above is placed so that the centre
    of its inferior endplate rim plane lies DISC_HEIGHT_MM above the centre of the superior rim
    plane of the level below, along their mean normal.
    """
    order = [lv for lv in reversed(LEVELS) if lv in vertebrae]
    placements: dict[str, np.ndarray] = {}
    below = None
    for level in order:
        lm = vertebrae[level].landmarks
        rot = _rot_x(SPINE_TILT_DEG[level])
        t = np.zeros(3)
        if below is not None:
            lm_b, m_b = vertebrae[below].landmarks, placements[below]
            top = m_b[:3, :3] @ lm_b.superior_endplate.point + m_b[:3, 3]
            normal = m_b[:3, :3] @ lm_b.superior_endplate.normal - rot @ lm.inferior_endplate.normal
            t = top + DISC_HEIGHT_MM[level] * normal / np.linalg.norm(normal) - rot @ lm.inferior_endplate.point
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = rot, t
        placements[level] = matrix
        below = level
    return placements


def write_ply(mesh: trimesh.Trimesh, path: str | os.PathLike, comment: str) -> None:
    """Binary little-endian PLY (float32 vertices, int32 triangles), byte-for-byte reproducible."""
    vertices = np.asarray(mesh.vertices, dtype="<f4")
    faces = np.asarray(mesh.faces, dtype="<i4")
    header = (f"ply\nformat binary_little_endian 1.0\ncomment {comment}\nelement vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    records = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    records["n"], records["v"] = 3, faces
    write_bytes_atomic(path, header.encode("ascii") + vertices.tobytes() + records.tobytes())


def _rounded(value, digits: int = 5):
    """JSON-ready copy with floats rounded (deterministic text across runs)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist(), digits)
    if isinstance(value, (float, np.floating)):
        rounded = round(float(value), digits)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_json(data: dict, path: str | os.PathLike) -> None:
    write_text_atomic(path, json.dumps(_rounded(data), indent=1, sort_keys=True) + "\n")


def landmarks_record(sv: SyntheticVertebra) -> dict:
    """The ground truth of ``sv`` as a JSON-ready dict (Landmarks.to_dict plus part-label counts)."""
    record = sv.landmarks.to_dict()
    record["units"] = "mm"
    record["frame_description"] = VERTEBRA_FRAME
    record["part_face_counts"] = {name: int(np.count_nonzero(sv.face_labels == i))
                                  for i, name in enumerate(sv.part_names)}
    record["canal_volume_mm3"] = float(sv.canal_mesh.volume)
    record["body_volume_mm3"] = float(sv.body_mesh.volume)
    return record


def write_spine(out_dir: str | os.PathLike, levels=LEVELS, *, seed: int | None = None, vary: bool = False,
                osteoporotic: bool = False) -> dict:
    """Generate ``levels`` and write them with :func:`write_vertebrae`. Returns the manifest."""
    names = [normalise_level(lv) for lv in levels]
    vertebrae = {lv: synthesize(lv, seed=seed, vary=vary, osteoporotic=osteoporotic) for lv in names}
    return write_vertebrae(out_dir, vertebrae)


def write_vertebrae(out_dir: str | os.PathLike, vertebrae: dict[str, SyntheticVertebra]) -> dict:
    """Write ``<L>.ply`` (vertebra frame, mm), ``<L>_landmarks.json`` and ``manifest.json``
    (parameters, frames, units, generator version, sha256 of each file and, for a full L1-S1 set,
    each level's placement in the assembled spine) into ``out_dir``. Returns the manifest.

    The canal and body volumes are not written: :func:`synthesize` regenerates them on demand.
    """
    os.makedirs(out_dir, exist_ok=True)
    placements = spine_placements(vertebrae) if set(vertebrae) == set(LEVELS) else {}
    manifest = {"generator": "bvn_plan.synthetic", "generator_version": GENERATOR_VERSION, "units": "mm",
                "vertebra_frame": VERTEBRA_FRAME, "spine_frame": SPINE_FRAME, "levels": {}}
    for level, sv in vertebrae.items():
        files = {"mesh": f"{level}.ply", "landmarks": f"{level}_landmarks.json"}
        write_ply(sv.mesh, os.path.join(out_dir, files["mesh"]),
                  f"bvn-plan synthetic {level}, generator {GENERATOR_VERSION}, mm, vertebra frame RAS")
        _write_json(landmarks_record(sv), os.path.join(out_dir, files["landmarks"]))
        entry = {"parameters": sv.parameters.to_dict(), "files": files, "faces": int(len(sv.mesh.faces)),
                 "sha256": {key: _sha256(os.path.join(out_dir, name)) for key, name in files.items()}}
        if level in placements:
            entry["placement"] = placements[level]
        manifest["levels"][level] = entry
    _write_json(manifest, os.path.join(out_dir, "manifest.json"))
    return _rounded(manifest)


def write_default_spine(out_dir: str | os.PathLike) -> dict:
    """Regenerate the bundled default spine L1-S1 (``meshes/``) byte-for-byte. Returns the manifest."""
    return write_spine(out_dir, LEVELS)


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


#: Largest rotation (degrees) and translation (mm, per axis) of a cohort copy: small enough that
#: a mesh in RAS stays in RAS.
COHORT_MAX_ROTATION_DEG = 8.0
COHORT_MAX_SHIFT_MM = 30.0


def write_moved_cohort(sources: dict[str, str | os.PathLike], out_dir: str | os.PathLike, count: int,
                       seed: int = 7) -> list[str]:
    """Write ``count`` copies of the meshes ``sources`` (level -> mesh file, mm), cycling through the
    levels, each moved by a random rigid motion within COHORT_MAX_*: a cohort of distinct vertebrae
    for batch runs and throughput benchmarks. Returns the files (``vNN_<level>.ply``), in order."""
    rng = np.random.default_rng(seed)
    levels = list(sources)
    files = []
    for i in range(count):
        level = levels[i % len(levels)]
        mesh = trimesh.load(sources[level], process=False)
        axis = rng.normal(size=3)
        motion = trimesh.transformations.rotation_matrix(
            np.radians(rng.uniform(-COHORT_MAX_ROTATION_DEG, COHORT_MAX_ROTATION_DEG)), axis / np.linalg.norm(axis))
        motion[:3, 3] = rng.uniform(-COHORT_MAX_SHIFT_MM, COHORT_MAX_SHIFT_MM, 3)
        mesh.apply_transform(motion)
        files.append(os.path.join(out_dir, f"v{i:02d}_{level}.ply"))
        mesh.export(files[-1])
    return files
