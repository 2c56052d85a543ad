"""The approach from the back, patient prone: where and from which side a path may enter the bone.

A posterior BVN ablation path reaches the vertebral body through one of two windows:

* transpedicular: the introducer enters the posterior elements behind the pedicle and runs through
  the pedicle isthmus (its axis crosses the isthmus section within the half width and half height
  plus ``pedicle_tolerance_mm``);
* extrapedicular: the introducer enters the posterolateral body wall at the pedicle-body junction,
  lateral to the pedicle, no lower than the pedicle's inferior edge ("the supero-lateral aspect of
  the junction between the pedicle and vertebral body", [V, Cho 2011 J Korean Neurosurg Soc
  49:273]), its medial angle from the sagittal plane and its cranio-caudal angle inside a window
  (medial <= 50 deg as issue 16 asks; no source found for this procedure allowing more [A]).

Anything else fails, the reason naming the structure at risk: the disc space crossed outside the
bone or an endplate entered from the disc; the spinal canal; the neural foramen below the pedicle
(exiting root); the anterior or anterolateral body wall (great vessels in front of the body); the
lateral body wall outside the window (psoas, segmental vessels). Geometry in the vertebra frame
(x patient right, y anterior, z superior; mm and degrees), points in model coordinates (mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from ..landmarks import Landmarks
from ..levels import morphometry


#: Skin-to-bone depth (mm) along the introducer line when neither a CT nor a subcutaneous-fat label
#: shows the skin [A: posterior lumbar soft tissue from the skin to the pedicle entry is about
#: 40-80 mm in adults, more with a high body-mass index]; the plan says the skin entry was assumed.
SKIN_TO_BONE_MM = 60.0


@dataclass(frozen=True)
class EntryWindows:
    """The allowed bone entries (mm, degrees, vertebra frame) [rule ``bone_entry_window``].

    * ``extrapedicular_medial_deg``: (min, max) medial angle of an extrapedicular introducer from
      the sagittal plane, positive toward the midline; max 50 deg [issue 16; A], min 15 deg [A: below
      it a line lateral to the pedicle cannot reach the midline terminus].
    * ``extrapedicular_craniocaudal_deg``: (min, max) cranio-caudal angle, cranial positive [A].
    * ``extrapedicular_entry_mm``: (min, max) distance of the bone entry anterior of the
      pedicle-body junction [A: "at the pedicle-body junction lateral to the pedicle", Cho 2011].
    * ``pedicle_tolerance_mm``: added to the isthmus half width and half height when deciding that
      an introducer runs through the pedicle [A].
    * ``max_pedicle_height_sd``: a pedicle taller than its level's prior by more than this many
      standard deviations is taken at that height about its centre (as the exiting-root corridor).
    * ``disc_height_mm``: the disc space is taken this far beyond each endplate plane, over the
      endplates' outline [A: lumbar discs 8-12 mm].
    * ``great_vessel_sector_deg``: a bone entry within this angle of the anterior axis, seen from
      the body centre in the axial plane, lies on the anterior or anterolateral wall, in front of
      which run the aorta, the vena cava and the iliac vessels; beyond it the lateral wall, covered
      by the psoas [A, anatomy].
    """

    extrapedicular_medial_deg: tuple[float, float] = (15.0, 50.0)
    extrapedicular_craniocaudal_deg: tuple[float, float] = (-15.0, 15.0)
    extrapedicular_entry_mm: tuple[float, float] = (-5.0, 12.0)
    pedicle_tolerance_mm: float = 1.0
    max_pedicle_height_sd: float = 3.0
    disc_height_mm: float = 12.0
    great_vessel_sector_deg: float = 60.0

    def angles_inside(self, medial_deg, cc_deg, strict: bool = False) -> np.ndarray:
        """Whether extrapedicular introducer angles (degrees) lie inside the window (``strict``:
        not on its edge either, as the planner searches)."""
        (m0, m1), (c0, c1) = self.extrapedicular_medial_deg, self.extrapedicular_craniocaudal_deg
        medial, cc = np.asarray(medial_deg, float), np.asarray(cc_deg, float)
        if strict:
            return (medial > m0) & (medial < m1) & (cc > c0) & (cc < c1)
        return (medial >= m0) & (medial <= m1) & (cc >= c0) & (cc <= c1)


def introducer_angles(direction_local: np.ndarray, side_sign: float) -> tuple[float, float]:
    """Medial angle from the sagittal plane (positive toward the midline of a path on the side of
    ``side_sign``, +1 right) and cranio-caudal angle (positive cranial) of a direction in the
    vertebra frame, degrees."""
    x, y, z = direction_local
    medial = float(np.degrees(np.arctan2(-side_sign * x, y)))
    craniocaudal = float(np.degrees(np.arctan2(z, np.hypot(x, y))))
    return medial, craniocaudal


@dataclass
class EntryJudgement:
    """How a path reaches the bone: ``window`` ("transpedicular", "extrapedicular" or None), the
    structure at risk when None, the introducer's angles at the entry (degrees), the bone entry's
    distance anterior of the pedicle-body junction (mm) and the reason in words."""

    window: str | None
    structure: str
    side: str
    medial_deg: float
    craniocaudal_deg: float
    entry_past_junction_mm: float
    slack_mm: float
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ApproachGeometry:
    """One vertebra's entry windows and disc spaces (built once per vertebra; mm, model coordinates)."""

    def __init__(self, landmarks: Landmarks, endplate_points: np.ndarray, windows: EntryWindows = EntryWindows()):
        self.lm, self.windows, self.frame = landmarks, windows, landmarks.frame
        # the disc spaces lie over the endplates' outline in the axial projection
        outline = self.frame.to_local(np.asarray(endplate_points, float))[:, :2]
        self._outline = Delaunay(outline)
        prior = morphometry(landmarks.level)
        self._tallest = prior.pedicle_height_mm + windows.max_pedicle_height_sd * prior.sd("pedicle_height_mm")
        #: per side, the pedicle's box, body junction and axis in the vertebra frame, made once (a
        #: check judges one entry; the landmarks' frame transforms cost more than the judgement)
        self._sides: dict[str, tuple] = {}
        self._top = float(self.frame.to_local(landmarks.superior_endplate.point)[2])

    @classmethod
    def of_mesh(cls, mesh, landmarks: Landmarks, windows: EntryWindows = EntryWindows()) -> "ApproachGeometry":
        """From the vertebra ``mesh`` and its landmarks' endplate face regions."""
        faces = np.concatenate([np.asarray(landmarks.face_regions.get(n, []), int)
                                for n in ("superior_endplate", "inferior_endplate")])
        return cls(landmarks, mesh.vertices[np.unique(mesh.faces[faces])], windows)

    def pedicle_box(self, side: str) -> tuple[np.ndarray, float, float]:
        """The isthmus centre (vertebra frame), its half width and half height (mm, height capped)."""
        return self._side(side)[:3]

    def _side(self, side: str) -> tuple:
        """The pedicle box of :meth:`pedicle_box`, then its body junction and its axis (vertebra frame)."""
        if side not in self._sides:
            ped = self.lm.pedicles[side]
            self._sides[side] = (self.frame.to_local(ped.isthmus_centre), ped.isthmus_width_mm / 2,
                                 min(ped.isthmus_height_mm, self._tallest) / 2, self.frame.to_local(ped.body_junction),
                                 self.frame.direction_to_local(ped.axis_direction))
        return self._sides[side]

    def window_faces(self, mesh, side: str) -> np.ndarray:
        """Indices of the lateral-cortex faces of ``mesh`` (the vertebra) on ``side`` where an
        extrapedicular introducer may enter: lateral to the pedicle, ``extrapedicular_entry_mm``
        anterior of the pedicle-body junction, from the pedicle's inferior edge to the superior endplate."""
        frame, sign = self.frame, (1.0 if side == "right" else -1.0)
        centre, _, half_h, junction, _ = self._side(side)
        faces = np.asarray(self.lm.face_regions["lateral_cortex"], int)
        local = frame.to_local(mesh.triangles_center[faces])
        past = local[:, 1] - junction[1]
        lo, hi = self.windows.extrapedicular_entry_mm
        ok = ((sign * local[:, 0] > sign * centre[0]) & (past >= lo) & (past <= hi)
              & (local[:, 2] >= centre[2] - half_h) & (local[:, 2] <= self._top))
        return faces[ok]

    def in_disc(self, points: np.ndarray, local: np.ndarray | None = None) -> np.ndarray:
        """Whether points (model coordinates) lie in a disc space next to this vertebra (``local``:
        the points in the vertebra frame, if known)."""
        points = np.asarray(points, float)
        local = self.frame.to_local(points) if local is None else local
        over = self._outline.find_simplex(local[:, :2]) >= 0
        h = self.windows.disc_height_mm
        above = self.lm.superior_endplate.signed_distance(points)
        below = self.lm.inferior_endplate.signed_distance(points)
        return over & (((above > 0) & (above <= h)) | ((below > 0) & (below <= h)))

    def _through_pedicle(self, side: str, local: np.ndarray, entry: int) -> float:
        """How far (mm) inside the isthmus section the path crosses it after its bone entry
        (negative: outside, or no crossing)."""
        centre, half_w, half_h, _, axis = self._side(side)
        s = (local - centre) @ axis
        cross = np.flatnonzero((s[:-1] < 0) & (s[1:] >= 0))
        cross = cross[cross + 1 >= entry]
        if len(cross) == 0:
            return -np.inf
        k = cross[0]
        q = local[k] + (local[k + 1] - local[k]) * (-s[k] / (s[k + 1] - s[k]))
        r = q - centre
        tol = self.windows.pedicle_tolerance_mm
        a, b = half_w + tol, half_h + tol
        rho = np.hypot(np.hypot(r[0], r[1]) / a, r[2] / b)
        return float((1.0 - rho) * min(a, b))

    def judge(self, points: np.ndarray, entry: int, crosses_canal: bool, nearest_region: str) -> EntryJudgement:
        """Judge the bone entry at sample ``entry`` of a path's samples ``points`` (model
        coordinates, start to tip); ``crosses_canal``: whether the path runs in the spinal canal;
        ``nearest_region``: the surface region at the entry."""
        frame, w = self.frame, self.windows
        local = frame.to_local(points)
        e = local[entry]
        d = local[min(entry + 1, len(local) - 1)] - local[max(entry - 1, 0)]
        d /= np.linalg.norm(d)
        side = "right" if (e[0] if abs(e[0]) > 1e-6 else local[0, 0]) >= 0 else "left"
        sign = 1.0 if side == "right" else -1.0
        medial, cc = introducer_angles(d, sign)
        ped = self.lm.pedicles.get(side)
        centre, _, half_h, junction, _ = self._side(side) if ped is not None else (np.zeros(3), 0.0, 0.0, np.zeros(3), None)
        past = float(e[1] - junction[1])
        nearest_window = -float(min(np.linalg.norm(e - centre), np.linalg.norm(e - junction)))

        def verdict(window, structure, slack, reason):
            return EntryJudgement(window, structure, side, medial, cc, past, float(slack), reason)
        where = (f"bone entry {past:+.1f} mm anterior of the {side} pedicle-body junction, introducer "
                 f"{medial:.0f} deg medial and {cc:+.0f} deg cranio-caudal")
        before = np.arange(entry)
        if len(before) and self.in_disc(points[before], local[before]).any():
            return verdict(None, "disc", nearest_window, f"the instrument crosses the disc space outside the bone "
                           f"before its bone entry ({where})")
        if nearest_region in ("superior_endplate", "inferior_endplate"):
            return verdict(None, "endplate", nearest_window, f"the instrument enters the bone through the "
                           f"{nearest_region.replace('_', ' ')} from the disc ({where})")
        if crosses_canal:
            return verdict(None, "canal", nearest_window, f"the instrument crosses the spinal canal ({where})")
        if ped is not None:
            inside = self._through_pedicle(side, local, entry)
            if inside >= 0:
                return verdict("transpedicular", "", inside, f"transpedicular: the introducer runs through the "
                               f"{side} pedicle isthmus {inside:.1f} mm inside its section")
        lo, hi = w.extrapedicular_entry_mm
        lateral = ped is not None and sign * e[0] > sign * centre[0]
        low = ped is not None and e[2] < centre[2] - half_h
        if ped is not None and e[1] <= junction[1] + hi and low and sign * e[0] > 0:
            return verdict(None, "exiting root", nearest_window, f"the instrument reaches the bone through the "
                           f"neural foramen below the {side} pedicle, where the exiting nerve root runs ({where})")
        in_window = lateral and lo <= past <= hi and not low and bool(w.angles_inside(medial, cc))
        if in_window and e[2] <= self._top:
            (m0, m1), (c0, c1) = w.extrapedicular_medial_deg, w.extrapedicular_craniocaudal_deg
            return verdict("extrapedicular", "", min(past - lo, hi - past), f"extrapedicular: {where}, inside "
                           f"the window ({lo:.0f} to {hi:.0f} mm, {m0:.0f}-{m1:.0f} deg medial, {c0:+.0f} to "
                           f"{c1:+.0f} deg cranio-caudal)")
        if np.degrees(np.arctan2(abs(e[0]), e[1])) < w.great_vessel_sector_deg:
            return verdict(None, "great vessels", nearest_window, f"the instrument enters the anterior or "
                           f"anterolateral body wall, in front of which lie the great vessels (aorta, vena cava, "
                           f"iliac vessels) ({where})")
        if ped is not None and e[1] < junction[1] + lo:
            return verdict(None, "posterior elements", nearest_window, f"the instrument enters the posterior "
                           f"elements outside the {side} pedicle and does not run through its isthmus ({where})")
        (m0, m1), (c0, c1) = w.extrapedicular_medial_deg, w.extrapedicular_craniocaudal_deg
        return verdict(None, "psoas", nearest_window, f"the instrument enters the lateral body wall outside the "
                       f"extrapedicular window ({lo:.0f} to {hi:.0f} mm past the junction, {m0:.0f}-{m1:.0f} deg "
                       f"medial, {c0:+.0f} to {c1:+.0f} deg cranio-caudal), through the psoas and past the "
                       f"segmental vessels ({where})")
