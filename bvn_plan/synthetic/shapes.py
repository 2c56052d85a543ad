"""The implicit shapes of a synthetic vertebra and their layout (vertebra frame, mm).

Each primitive maps points (N, 3) in mm to a distance-like value (negative inside): a superelliptic
vertebral body with wedge, endplate concavities, a kidney-shaped posterior wall and an optional
osteoporotic wedge or biconcave compression (:class:`Body`);
elliptic pedicle tubes narrowest at the isthmus (:class:`PedicleTube`); rounded plates
(:class:`Box`) for laminae, articular pillars, articular, transverse and spinous processes and the
sacral ala at S1. :func:`layout` places them for one :class:`SyntheticParameters`;
:func:`sample_field` joins them by smooth unions on a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..anatomy.morphometry import HEIGHT_POSITIONS
from ..coordinates import SIDE_SIGNS
from ..errors import InputError
from ..geometry.vectors import cross3, perpendicular_basis, perpendicular_part
from ..landmarks import Plane
from .parameters import SyntheticParameters

BACKGROUND_MM = 4.0    # field value far from every primitive (mm)
_PAD_MM = 7.0          # primitives are evaluated only within their box grown by this (mm)
K_PEDICLE_MM = 2.0     # smooth-union radius body/pedicle (mm)
K_ARCH_MM = 2.5        # smooth-union radius of the posterior arch (mm)
_ISTHMUS_CLEARANCE_MM = 3.0   # gap between the isthmus cross-section and any blend zone (mm)
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
#: Thickness (mm) of a lamina plate [A].
LAMINA_THICKNESS_MM = 6.0
#: The top of a sacral ala lies this far below the S1 superior endplate [A]: in a real sacrum the
#: alae slope down from the body, so a chord just under the endplate spans the body alone (VHM S1:
#: 57 mm); an ala flush with the endplate made the synthetic S1 read 96 mm wide.
ALA_DROP_MM = 6.0

_UP = np.array([0.0, 0.0, 1.0])
#: Thickness (mm) of the transverse process's root where it lies against the pedicle (tp_root_span_mm) [A].
TP_ROOT_THICKNESS_MM = 5.0


def smooth_min(a, b, k):
    """Polynomial smooth minimum (smooth union) with blend radius ``k`` (mm)."""
    h = np.clip(k - np.abs(a - b), 0.0, None) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _smooth_max(a, b, k):
    return -smooth_min(-a, -b, k)


@dataclass
class Box:
    """Rounded box: centre, orthonormal rows ``axes``, half sizes (mm) and corner radius (mm)."""

    centre: np.ndarray
    axes: np.ndarray
    half_mm: np.ndarray
    radius_mm: float

    def field(self, p):
        q = np.abs((p - self.centre) @ self.axes.T) - (self.half_mm - self.radius_mm)
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        return outside + np.minimum(q.max(axis=-1), 0.0) - self.radius_mm

    def bounds(self):
        corner = np.abs(self.axes.T) @ self.half_mm
        return self.centre - corner, self.centre + corner


def _frame_from(x_axis, up) -> np.ndarray:
    """Orthonormal rows (x, y, z) with x along ``x_axis`` and z as close as possible to ``up``."""
    x = np.asarray(x_axis, float) / np.linalg.norm(x_axis)
    return np.vstack([x, *perpendicular_basis(x, reference=-np.asarray(up, float))])


@dataclass
class Body:
    """Vertebral body: superellipse in plan with kidney warp, wedge and concave endplates (mm)."""

    half_width_mm: float
    half_depth_mm: float      # of the superellipse (mid-sagittal depth + kidney depth) / 2
    centre_y_mm: float
    kidney_mm: float
    mean_height_mm: float
    wedge_slope: float        # dz/dy of the superior rim plane (= -dz/dy of the inferior one)
    concave_superior_mm: float
    concave_inferior_mm: float
    concave_zone: float       # share of the plan radius that is concave
    exponent: float = 3.2
    rim_radius_mm: float = 1.2
    #: Osteoporotic compression (mm): the superior endplate sinks by ``wedge_drop_mm`` at
    #: ``wedge_front_y_mm``, hinged at ``wedge_hinge_y_mm`` (linear in y, none behind the hinge); both
    #: endplates sink by ``biconcave_drop_mm`` at the centre of the concave zone.
    wedge_drop_mm: float = 0.0
    wedge_hinge_y_mm: float = 0.0
    wedge_front_y_mm: float = 1.0
    biconcave_drop_mm: float = 0.0

    def plan_radius(self, p):
        x, y = p[:, 0], p[:, 1]
        post = np.clip((self.centre_y_mm - y) / (0.6 * self.half_depth_mm), 0.0, 1.0)
        post = post * post * (3 - 2 * post)
        warp = self.kidney_mm * np.exp(-(x / (0.4 * self.half_width_mm)) ** 2) * post
        yw = y - self.centre_y_mm - warp
        n = self.exponent
        return (np.abs(x / self.half_width_mm) ** n + np.abs(yw / self.half_depth_mm) ** n) ** (1 / n)

    def plan_field(self, p):
        """Distance-like field of the body outline in the axial plane (ignores z)."""
        return (self.plan_radius(p) - 1.0) * min(self.half_width_mm, self.half_depth_mm)

    def field(self, p):
        r = self.plan_radius(p)
        f_plan = (r - 1.0) * min(self.half_width_mm, self.half_depth_mm)
        zone = np.clip(1 - (r / self.concave_zone) ** 2, 0.0, None) ** 2
        top = self.mean_height_mm / 2 + self.wedge_slope * p[:, 1] - self.concave_superior_mm * zone
        bottom = -self.mean_height_mm / 2 - self.wedge_slope * p[:, 1] + self.concave_inferior_mm * zone
        if self.wedge_drop_mm or self.biconcave_drop_mm:
            hinge = np.clip((p[:, 1] - self.wedge_hinge_y_mm) / (self.wedge_front_y_mm - self.wedge_hinge_y_mm),
                            0.0, None)
            top = top - self.wedge_drop_mm * hinge - self.biconcave_drop_mm * zone
            bottom = bottom + self.biconcave_drop_mm * zone
        f_z = np.maximum(p[:, 2] - top, bottom - p[:, 2])
        return _smooth_max(f_plan, f_z, self.rim_radius_mm)

    def bounds(self):
        h = self.mean_height_mm / 2 + abs(self.wedge_slope) * 2 * self.half_depth_mm + 1
        lo = np.array([-self.half_width_mm, self.centre_y_mm - self.half_depth_mm, -h])
        hi = np.array([self.half_width_mm, self.centre_y_mm + self.half_depth_mm, h])
        return lo, hi


@dataclass
class PedicleTube:
    """Elliptic tube along ``axes[0]`` whose cross-section is narrowest (W x H mm) at ``centre``.

    The transverse semi-axis grows as 1 + flare * t^2 and the cranio-caudal one half as fast (t mm
    along the axis from the isthmus, capped at |t| = ``flare_span_mm``), so the isthmus is the
    unique narrowest perpendicular cross-section.
    """

    centre: np.ndarray
    axes: np.ndarray          # rows: axis (posterior->anterior), e1 (transverse), e2 (cranial-ish)
    width_mm: float
    height_mm: float
    t_min_mm: float
    t_max_mm: float
    flare_per_mm2: float
    flare_span_mm: float
    y_cut_mm: float = math.inf   # the tube ends at this coronal plane (mm)
    x_medial_mm: float = -math.inf   # ... and never reaches closer than this to the mid-sagittal plane

    def field(self, p):
        local = (p - self.centre) @ self.axes.T
        t = local[:, 0]
        grow = self.flare_per_mm2 * np.minimum(t * t, self.flare_span_mm ** 2)
        a, b = self.width_mm / 2 * (1 + grow), self.height_mm / 2 * (1 + 0.5 * grow)
        r = np.sqrt((local[:, 1] / a) ** 2 + (local[:, 2] / b) ** 2)
        f = (r - 1) * np.minimum(a, b)
        side = math.copysign(1.0, self.centre[0])
        clip = np.maximum(p[:, 1] - self.y_cut_mm, self.x_medial_mm - side * p[:, 0])
        return np.maximum(f, np.maximum(np.maximum(self.t_min_mm - t, t - self.t_max_mm), clip))

    def bounds(self):
        s = 1 + self.flare_per_mm2 * self.flare_span_mm ** 2
        ends = [self.centre + self.axes[0] * t for t in (self.t_min_mm, self.t_max_mm)]
        reach = max(self.width_mm, self.height_mm) / 2 * s
        return np.min(ends, axis=0) - reach, np.max(ends, axis=0) + reach


@dataclass
class Layout:
    """The primitives of one vertebra grouped by part, and the design values derived from them."""

    body: Body
    pedicles: dict[str, PedicleTube]
    arch: list            # (primitive, part name) pairs joined with K_ARCH_MM
    sup_plane: Plane
    inf_plane: Plane
    canal_seed: np.ndarray

    def rim_z(self, y):
        """z (mm) of the inferior and superior endplate rim planes on the mid-sagittal plane at ``y``."""
        top = self.sup_plane.point[2] - self.sup_plane.normal[1] / self.sup_plane.normal[2] * y
        bottom = self.inf_plane.point[2] - self.inf_plane.normal[1] / self.inf_plane.normal[2] * y
        return bottom, top


@dataclass
class _Design:
    """Design values shared by the layout steps (mm, radians): the posterior wall at the midline
    (``y_post``) and at the posterolateral corners (``y_post_lat``), the pedicle angles and
    half-sizes, how far the isthmus lies behind the body (``lead``) and in front of the pillar
    (``back``), the pedicle height where it reaches the body (``z_ped``), the laminae's mid-height
    and height, the x of the facets and the body's mean height."""

    y_post: float
    y_post_lat: float
    theta_t: float
    theta_s: float
    half_w: float
    half_h: float
    lead: float
    back: float
    z_ped: float
    z_lam: float
    lam_h: float
    lam_bottom: float
    x_facet: float
    mean_h: float


def layout(p: SyntheticParameters) -> Layout:
    """Place every primitive of the vertebra of ``p`` (vertebra frame, mm)."""
    body = _body(p)
    design = _design(p, body)
    pedicles, arch = {}, []
    for side, s in SIDE_SIGNS:
        pedicles[side] = _pedicle(p, body, design, side, s)
        arch += _side_arch(p, design, pedicles[side], s)
    y_lam_front = design.y_post - p.morph.canal_depth_mm - LAMINA_BLEND_FILL
    arch += [_lamina(design, pedicles[side], s, y_lam_front) for side, s in SIDE_SIGNS]
    arch += _spinous_process(p, design, y_lam_front)
    if p.level == "S1":
        arch += [_ala(p, design, s) for _, s in SIDE_SIGNS]
    slope = body.wedge_slope
    n_sup = np.array([0.0, -slope, 1.0]) / math.hypot(slope, 1.0)
    n_inf = np.array([0.0, -slope, -1.0]) / math.hypot(slope, 1.0)
    sup = Plane(np.array([0.0, 0.0, body.mean_height_mm / 2]), n_sup)
    inf = Plane(np.array([0.0, 0.0, -body.mean_height_mm / 2]), n_inf)
    seed = np.array([0.0, design.y_post - p.morph.canal_depth_mm / 2, 0.0])
    return Layout(body, pedicles, arch, sup, inf, seed)


def _body(p: SyntheticParameters) -> Body:
    m = p.morph
    depth = m.body_depth_mm
    half_depth = (depth + p.kidney_depth_mm) / 2
    mean_h = (m.body_height_anterior_mm + m.body_height_posterior_mm) / 2
    slope = (m.body_height_anterior_mm - m.body_height_posterior_mm) / (2 * depth)
    # Compression measured where the anatomy measures heights: shares of the depth from the posterior wall.
    y_at = {where: depth * (share - 0.5) for where, share in HEIGHT_POSITIONS.items()}
    front_height = mean_h + 2 * slope * y_at["anterior"]
    middle_height = mean_h - p.endplate_concavity_superior_mm - p.endplate_concavity_inferior_mm
    return Body(m.body_width_mm / 2, half_depth, -p.kidney_depth_mm / 2, p.kidney_depth_mm, mean_h, slope,
                p.endplate_concavity_superior_mm, p.endplate_concavity_inferior_mm, p.endplate_concave_zone,
                wedge_drop_mm=p.wedge_compression * front_height, wedge_hinge_y_mm=y_at["posterior"],
                wedge_front_y_mm=y_at["anterior"], biconcave_drop_mm=p.biconcave_compression * middle_height / 2)


def _design(p: SyntheticParameters, body: Body) -> _Design:
    m = p.morph
    y_post = -m.body_depth_mm / 2                  # posterior wall at the midline
    y_post_lat = y_post - p.kidney_depth_mm        # posterolateral corners
    theta_t, theta_s = np.radians(m.pedicle_transverse_angle_deg), np.radians(m.pedicle_sagittal_angle_deg)
    half_w, half_h = m.pedicle_width_mm / 2, m.pedicle_height_mm / 2
    # The isthmus lead is set by the wider / steeper side (asymmetric pedicles).
    sides = [side_pedicle(p, s) for _, s in SIDE_SIGNS]
    lead_w, lead_t = max(w for w, _ in sides) / 2, max(t for _, t in sides)
    # Isthmus far enough behind the body that no blend reaches its cross-section.
    # (the anterolateral edge of the isthmus only counts when it lies in front of the body)
    lateral_edge = m.canal_width_mm / 2 + lead_w / math.cos(lead_t) + lead_w * math.cos(lead_t)
    reach_y = half_h * abs(math.sin(theta_s))
    if lateral_edge < m.body_width_mm / 2 + 1.0:
        reach_y += lead_w * math.sin(lead_t)
    lead = K_PEDICLE_MM + _ISTHMUS_CLEARANCE_MM + reach_y + 1.0
    back = K_ARCH_MM + _ISTHMUS_CLEARANCE_MM + reach_y + 4.5 + (S1_PEDICLE_EXTRA if p.level == "S1" else 0.0)
    z_ped = m.body_height_posterior_mm / 2 - half_h - 1.5 + y_post_lat * body.wedge_slope
    # Laminae: from just below the pedicle top to 2 mm above the inferior endplate level.
    lam_top, lam_bottom = z_ped + half_h - 1.0, -m.body_height_posterior_mm / 2 + 2.0
    return _Design(y_post, y_post_lat, theta_t, theta_s, half_w, half_h, lead, back, z_ped,
                   (lam_top + lam_bottom) / 2, lam_top - lam_bottom, lam_bottom, m.canal_width_mm / 2 + 3.0,
                   body.mean_height_mm)


def side_pedicle(p: SyntheticParameters, s: float) -> tuple[float, float]:
    """Isthmus width (mm) and transverse angle (radians) of the pedicle on side ``s`` (+1 right,
    -1 left): the level's values plus (right) or minus (left) half of the parameters' asymmetries."""
    m = p.morph
    return (m.pedicle_width_mm + s * p.pedicle_width_asymmetry_mm / 2,
            np.radians(m.pedicle_transverse_angle_deg + s * p.pedicle_transverse_asymmetry_deg / 2))


def _pedicle(p: SyntheticParameters, body: Body, g: _Design, side: str, s: float) -> PedicleTube:
    """The pedicle tube on one side (``s`` +1 right, -1 left), its medial wall on the transverse
    line through the isthmus centre at canal_width_mm / 2."""
    m = p.morph
    theta_s, half_h, lead = g.theta_s, g.half_h, g.lead
    width, theta_t = side_pedicle(p, s)
    half_w = width / 2
    d = np.array([-s * math.sin(theta_t) * math.cos(theta_s), math.cos(theta_t) * math.cos(theta_s),
                  math.sin(theta_s)])
    e1, e2 = perpendicular_basis(d, reference=-_UP)
    y_cut = g.y_post_lat + PEDICLE_BODY_OVERLAP
    tube = PedicleTube(np.zeros(3), np.vstack([d, e1, e2]), width, m.pedicle_height_mm,
                       -g.back - 4.0, 60.0, PEDICLE_FLARE / lead ** 2, lead)
    medial = brentq(lambda r: tube.field(np.array([[-s * r, 0.0, 0.0]]))[0], 0.0, 3 * half_w / math.cos(theta_t))
    # z_ped is the height of the axis where it reaches the body.
    # ... unless the axis would then reach the body too far laterally (steep S1 pedicles): the
    # axis must cross y_cut at least half a pedicle width + 2 mm inside the body's lateral edge.
    x_entry = m.body_width_mm / 2 - half_w - 2.0
    x_c = m.canal_width_mm / 2 + medial
    if p.level == "S1":
        x_c = min(x_c, x_entry + (lead + PEDICLE_BODY_OVERLAP) * math.tan(theta_t))
    tube.centre = np.array([s * x_c, g.y_post_lat - lead, g.z_ped - lead * math.tan(theta_s)])
    # The tube ends at a coronal plane inside the body: PEDICLE_BODY_OVERLAP in front of the
    # posterolateral wall, or further forward where its axis is first 2 mm inside the outline.
    steps = np.arange(0.0, 60.0, 0.5)
    inside = np.flatnonzero(body.plan_field(tube.centre + steps[:, None] * d) < -2.0)
    if len(inside) == 0:
        raise InputError(f"synthetic {p.level}: the {side} pedicle misses the vertebral body; "
                         "reduce pedicle_transverse_angle_deg or canal_width_mm")
    tube.y_cut_mm = max(y_cut, tube.centre[1] + steps[inside[0]] * d[1] + 1.0)
    tube.t_max_mm = (tube.y_cut_mm - tube.centre[1]) / d[1] + max(half_w, half_h) * 1.5
    tube.x_medial_mm = x_c - medial - PEDICLE_MEDIAL_BULGE
    return tube


def _side_arch(p: SyntheticParameters, g: _Design, tube: PedicleTube, s: float) -> list:
    """The articular pillar behind the pedicle ``tube``, its superior articular process and (not
    at S1) its inferior articular and transverse processes, as (Box, part) pairs."""
    m = p.morph
    sacrum = p.level == "S1"
    facet_angle = np.radians(p.facet_angle_deg)
    pillar = tube.centre - tube.axes[0] * g.back
    arch = [(Box(pillar + [0, 0, -2.0], np.eye(3), np.array([5.0, 4.5, g.mean_h * 0.42]), 2.5), "posterior_arch")]
    # Superior articular process: rises above the pillar, facet facing medially/posteriorly.
    face_n = np.array([-s * math.cos(facet_angle), -math.sin(facet_angle), 0.0])
    in_plane = cross3(_UP, face_n)
    sap_top = m.body_height_posterior_mm / 2 + (10.0 if not sacrum else 8.0)
    sap_h = sap_top - pillar[2]
    sap_centre = np.array([s * (g.x_facet + 2.5), pillar[1] - 4.0, sap_top - sap_h / 2])
    arch.append((Box(sap_centre, _frame_from(in_plane, [0, 0, 1.0]), np.array([7.0, 2.8, sap_h / 2]), 2.4),
                 "posterior_arch"))
    if sacrum:
        return arch
    # Inferior articular process: descends below the lamina, facet facing laterally/anteriorly.
    iap_bottom = -m.body_height_posterior_mm / 2 - 11.0
    iap_h = g.lam_bottom + 6.0 - iap_bottom          # overlaps the lamina by 6 mm
    iap_centre = np.array([s * (g.x_facet - 3.5), pillar[1] - 5.0, iap_bottom + iap_h / 2])
    arch.append((Box(iap_centre, _frame_from(in_plane, [0, 0, 1.0]), np.array([6.5, 3.0, iap_h / 2]), 2.4),
                 "posterior_arch"))
    # Transverse process: lateral and slightly posterior from the pillar.
    tp_dir = np.array([s * math.cos(np.radians(12)), -math.sin(np.radians(12)), 0.06])
    stout = p.level == "L5"
    tp_half = np.array([p.tp_length_mm / 2 + 3.0, 4.5 if stout else 3.0, 6.0 if stout else 4.5])
    tp_centre = pillar + tp_dir * (tp_half[0] + 2.0) + [0, 1.5, 2.0]
    arch.append((Box(tp_centre, _frame_from(tp_dir, [0, 0, 1.0]), tp_half, 2.8), "posterior_arch"))
    if p.tp_root_span_mm > 0:
        arch.append((_tp_root(p, g, tube, s), "posterior_arch"))
    return arch


def _tp_root(p: SyntheticParameters, g: _Design, tube: PedicleTube, s: float) -> Box:
    """The transverse process's root as a plate as tall as the pedicle against its lateral wall, from
    the pillar forward along the axis for ``tp_root_span_mm``: the pedicle then has no narrowing
    (a real L5's process joins its pedicle over its whole height)."""
    d = tube.axes[0]
    lateral = perpendicular_part(np.array([s, 0.0, 0.0]), d)
    lateral /= np.linalg.norm(lateral)
    half = np.array([p.tp_root_span_mm / 2, TP_ROOT_THICKNESS_MM / 2, g.half_h + 1.0])
    centre = tube.centre + d * (p.tp_root_span_mm / 2 - g.back) + lateral * (tube.width_mm / 2 + half[1] - 1.0)
    return Box(centre, np.vstack([d, lateral, cross3(d, lateral)]), half, 1.5)


def _lamina(g: _Design, tube: PedicleTube, s: float, y_lam_front: float) -> tuple:
    """The lamina plate from the pillar behind ``tube`` to the midline, whose anterior face crosses
    the midline at ``y_lam_front`` (which sets the canal depth), as a (Box, part) pair."""
    pillar = tube.centre - tube.axes[0] * g.back
    start = np.array([pillar[0] - s * 3.0, pillar[1] - 3.0, g.z_lam])
    end = np.array([0.0, y_lam_front - LAMINA_THICKNESS_MM / 2, g.z_lam])
    run = end - start
    length = np.linalg.norm(run)
    x_axis = run / length
    normal = cross3(_UP, x_axis)        # horizontal, perpendicular to the plate
    normal *= np.sign(normal[1])                       # pointing anteriorly
    # Shift the plate so that its anterior face crosses the midline at y_lam_front.
    front_y_mid = end[1] + (LAMINA_THICKNESS_MM / 2) / abs(normal[1])
    centre = (start + end) / 2 + [0.0, y_lam_front - front_y_mid, 0.0] + x_axis * 1.5
    up = np.array([0.0, 0.0, 1.0]) + math.tan(np.radians(15)) * normal   # lower edge posterior
    return (Box(centre, _frame_from(x_axis, up), np.array([length / 2 + 2.5, LAMINA_THICKNESS_MM / 2, g.lam_h / 2]),
                2.0), "posterior_arch")


def _spinous_process(p: SyntheticParameters, g: _Design, y_lam_front: float) -> list:
    """The spinous process (S1: the median sacral crest tubercle), posterior and inferior, and its tip."""
    sp_root = np.array([0.0, y_lam_front - LAMINA_THICKNESS_MM, g.z_lam - 1.0])
    sigma = np.radians(18.0 if p.level != "S1" else 35.0)
    sp_dir = np.array([0.0, -math.cos(sigma), -math.sin(sigma)])
    sp_half = np.array([p.spinous_length_mm / 2 + 2.0, 3.5, p.spinous_height_mm / 2])
    sp_axes = _frame_from(sp_dir, [0, 0, 1.0])     # rows: along, transverse (x), sagittal height
    sp_centre = sp_root + sp_dir * (p.spinous_length_mm / 2)
    tip = sp_root + sp_dir * (p.spinous_length_mm + 0.5)
    return [(Box(sp_centre, sp_axes, sp_half, 3.0), "posterior_arch"),
            (Box(tip, sp_axes, np.array([4.0, 4.5, p.spinous_height_mm / 2 + 1.0]), 4.0), "posterior_arch")]


def _ala(p: SyntheticParameters, g: _Design, s: float) -> tuple:
    """Sacral ala: a wing from the lateral body wall, in front of the pedicle, as a (Box, part) pair."""
    ala_centre = np.array([s * (p.morph.body_width_mm / 2 + 9.0), 3.0, g.mean_h / 2 - ALA_DROP_MM - 8.5])
    ala_axes = _frame_from([s * math.cos(np.radians(10)), -math.sin(np.radians(10)), 0.0], [0, 0, 1.0])
    return (Box(ala_centre, ala_axes, np.array([15.0, 10.0, 8.5]), 5.0), "sacral_ala")


def sample_field(prims: list, voxel: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth union of ``prims`` = [(primitive, blend radius or None), ...] on a grid (mm).

    Returns the field (nx, ny, nz) and the grid origin. Each primitive is evaluated only inside
    its bounding box grown by :data:`_PAD_MM`; elsewhere the field is the background value.
    """
    origin = np.floor(lo / voxel) * voxel
    shape = (np.ceil((hi - origin) / voxel).astype(int) + 1)
    field_ = np.full(tuple(shape), BACKGROUND_MM)
    axes = [origin[i] + voxel * np.arange(shape[i]) for i in range(3)]
    for prim, k in prims:
        blo, bhi = prim.bounds()
        i0 = np.clip(np.floor((blo - _PAD_MM - origin) / voxel).astype(int), 0, shape - 1)
        i1 = np.clip(np.ceil((bhi + _PAD_MM - origin) / voxel).astype(int) + 1, 1, shape)
        sub = np.meshgrid(*[axes[i][i0[i]:i1[i]] for i in range(3)], indexing="ij")
        pts = np.stack([c.ravel() for c in sub], axis=1)
        g = np.minimum(prim.field(pts), BACKGROUND_MM).reshape(sub[0].shape)
        view = field_[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]]
        view[...] = np.minimum(view, g) if k is None else smooth_min(view, g, k)
    return field_, origin
