"""Safety zones and the trajectory checker: verdicts any clinician can audit.

Zones are geometric objects built once per vertebra from its landmarks (mm, model
coordinates). Rules say which zone an instrument or a lesion must keep clear of, by what margin,
whether a violation fails the plan or only warns, and the source of the margin. The checker
returns, for every zone, the minimum signed clearance (negative = breach) and where it occurs,
the Gertzbein-Robbins grade of a medial breach, whether the path stays in bone from its bone
entry to its tip, the verdict and the reasons in words.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..geometry.distance import GridStack, SignedDistance, SurfaceDistance, minima_together
from ..errors import AnatomyError, InputError
from ..landmarks import Landmarks
from ..levels import morphometry
from ..lesion import EllipsoidLesion
from ..paths import SAMPLE_STEP_MM, InstrumentPath, PathSamples
from .approach import ApproachGeometry, EntryJudgement, EntryWindows
from .soft_tissue import ZONE_NAMES as MODELLED_ZONE_NAMES
from .soft_tissue import ModelledZones, SoftTissueModel
from .zones import OrganZones, SkinSurface

FAIL, WARN, PASS = "fail", "warn", "pass"


@dataclass(frozen=True)
class Rule:
    """One safety rule: ``applies_to`` ("instrument" or "lesion") must keep ``margin_mm`` from
    ``zone``; breaking it gives ``severity`` ("fail" or "warn")."""

    name: str
    zone: str
    applies_to: str
    margin_mm: float
    severity: str
    source: str
    description: str


#: Level-dependent prevalence (%) of segmental arteries in the extrapedicular puncture zone
#: [V, Liu 2019 PLoS One]; none at the L1-L3 posterosuperior lateral wall [V, Xu 2022].
SEGMENTAL_ARTERY_PREVALENCE = {"L1": 5.0, "L2": 3.0, "L3": 6.0, "L4": 10.0, "L5": 17.0}

_ENDPLATE_SOURCE = "a path or lesion that breaches an endplate enters the disc; margin [A, docs/sources.md 'Safety': 2 mm]"
DEFAULT_RULES = (
    Rule("canal_instrument", "spinal_canal", "instrument", 0.0, FAIL,
         "dural sac 1.5-3.0 mm inside the medial pedicle wall [V, Ebraheim 1996; Matuoka 2002]; "
         "medial breach graded after Gertzbein-Robbins 1990",
         "no instrument inside the spinal canal"),
    Rule("canal_lesion", "spinal_canal", "lesion", 10.0, FAIL,
         "ablation zone >= 10 mm from the spinal canal [V-secondary, Huang 2022 Semin Intervent Radiol "
         "39:162]; cord/nerve injury threshold about 45 C [V, Dupuy 2000]",
         "the ablation zone keeps its margin from the spinal canal"),
    Rule("bone_instrument", "bone", "instrument", 0.0, FAIL,
         "an instrument leaving the vertebral body exposes disc, great vessels, psoas and segmental "
         "arteries [A, technique]",
         "from bone entry to tip the instrument stays inside bone"),
    Rule("superior_endplate_instrument", "superior_endplate", "instrument", 2.0, FAIL, _ENDPLATE_SOURCE,
         "the instrument keeps its margin from the superior endplate"),
    Rule("inferior_endplate_instrument", "inferior_endplate", "instrument", 2.0, FAIL, _ENDPLATE_SOURCE,
         "the instrument keeps its margin from the inferior endplate"),
    Rule("superior_endplate_lesion", "superior_endplate", "lesion", 2.0, FAIL, _ENDPLATE_SOURCE,
         "the ablation zone keeps its margin from the superior endplate"),
    Rule("inferior_endplate_lesion", "inferior_endplate", "lesion", 2.0, FAIL, _ENDPLATE_SOURCE,
         "the ablation zone keeps its margin from the inferior endplate"),
    Rule("anterior_cortex_instrument", "anterior_cortex", "instrument", 0.0, FAIL,
         "great vessels lie in front of the vertebral body [A, anatomy]",
         "the instrument does not breach the anterior cortex"),
    Rule("lateral_cortex_instrument", "lateral_cortex", "instrument", 0.0, FAIL,
         "psoas and segmental arteries lie on the lateral body wall [A, anatomy]",
         "the instrument does not breach the lateral cortex after its bone entry"),
    Rule("anterior_cortex_lesion", "anterior_cortex", "lesion", 0.0, WARN,
         "heating through the anterior cortex reaches the great vessels [A]",
         "the ablation zone stays inside the anterior cortex"),
    Rule("lateral_cortex_lesion", "lateral_cortex", "lesion", 0.0, WARN,
         "heating through the lateral cortex reaches psoas and segmental vessels [A]",
         "the ablation zone stays inside the lateral cortex"),
    Rule("exiting_root_instrument", "exiting_root", "instrument", 0.0, FAIL,
         "exiting root 1.5-2.0 mm below the pedicle [V, Ebraheim 1996; Matuoka 2002]; Kambin corridor "
         "[V, Pairaiturkar 2019]; corridor radius and course [A]",
         "the instrument does not touch the exiting nerve root corridor"),
    Rule("exiting_root_proximity", "exiting_root", "instrument", 2.0, WARN,
         "as exiting_root_instrument; proximity margin [A, 2 mm]",
         "the instrument keeps 2 mm from the exiting nerve root corridor"),
    Rule("bone_entry_window", "entry_window", "instrument", 0.0, FAIL,
         "prone posterior approach: transpedicular through the pedicle isthmus, or extrapedicular at the "
         "supero-lateral pedicle-body junction [V, Cho 2011 J Korean Neurosurg Soc 49:273] inside "
         "EntryWindows' angles (medial <= 50 deg from the sagittal plane [issue 16; A]); the disc, the canal, "
         "the neural foramen, the anterior and lateral body wall lie outside both [A, anatomy]",
         "the instrument reaches the bone through the transpedicular or the extrapedicular window"),
    Rule("organ_instrument", "organs", "instrument", 0.0, FAIL,
         "a labelled great vessel, kidney, psoas, bowel or the cord crossed by a needle [A, anatomy]; the "
         "organs come from the segmentation given (TotalSegmentator 'total' names, planning.zones.NO_GO_ORGANS)",
         "the instrument crosses no labelled organ"),
    Rule("aorta_model_instrument", "aorta_model", "instrument", 0.0, FAIL,
         "with no organ labels: the aorta on the left-anterior face of L1-L4, bifurcating at L4 (67 %) "
         "[V, Surg Radiol Anat 2002;24:308 (MRI); Surg Radiol Anat 1998;20:63 (CT)], 1-3 mm from the discs "
         "[V, Kot 2022 Surg Radiol Anat 44:431]; extents planning.soft_tissue.SoftTissueModel [A]",
         "the instrument stays out of the modelled aorta"),
    Rule("vena_cava_model_instrument", "vena_cava_model", "instrument", 0.0, FAIL,
         "with no organ labels: the inferior vena cava on the right-anterior face of L1-L5, formed at the "
         "L4-L5 disc (range L3-S1) [V, Surg Radiol Anat 1998;20:63]; extents SoftTissueModel [A]",
         "the instrument stays out of the modelled inferior vena cava"),
    Rule("iliac_vessels_model_instrument", "iliac_vessels_model", "instrument", 0.0, FAIL,
         "with no organ labels: the common iliac arteries and veins in front of L4-S1, below the bifurcation "
         "[V, Surg Radiol Anat 1998;20:63; Kot 2022]; extents SoftTissueModel [A]",
         "the instrument stays out of the modelled iliac vessels"),
    Rule("psoas_model_instrument", "psoas_model", "instrument", 0.0, WARN,
         "with no organ labels: the psoas beside the bodies L1-L5, back to the front of the transverse "
         "processes [V, Gray's Anatomy]; a warning: the posterolateral (extrapedicular) route crosses its "
         "medial edge, a direct lateral route is failed by bone_entry_window [A]",
         "the instrument stays out of the modelled psoas"),
    Rule("kidney_model_instrument", "kidney_model", "instrument", 0.0, FAIL,
         "with no organ labels: the kidneys beside T12-L3 (right) and T11-L2 (left), 2.5-9.5 cm from the "
         "midline [V, Gray's Anatomy, Morris' parallelogram]; extents SoftTissueModel [A]",
         "the instrument stays out of the modelled kidneys"),
    Rule("segmental_artery_instrument", "segmental_artery", "instrument", 2.0, WARN,
         "segmental arteries in the extrapedicular puncture zone L1-L5: 5/3/6/10/17 % "
         "[V, Liu 2019 PLoS One]; band height [A, +-6 mm about mid-body]",
         "the instrument keeps clear of the segmental artery zone on the lateral body wall"),
)


#: The surface regions whose clearances the checker reports, in its order.
REGIONS = ("superior_endplate", "inferior_endplate", "anterior_cortex", "lateral_cortex")

#: How reasons name each zone.
ZONE_WORDS = {"exiting_root": "exiting nerve root corridor", "segmental_artery": "segmental artery zone",
              **{f"{name}_model": f"modelled {words} zone" for name, words in MODELLED_ZONE_NAMES.items()}}


@dataclass(frozen=True)
class RuleSet:
    """The editable rule set: every margin, severity and source in one place."""

    rules: tuple[Rule, ...] = DEFAULT_RULES

    def __getitem__(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise InputError(f"no safety rule named {name!r}; rules: {', '.join(r.name for r in self.rules)}")

    def with_changes(self, name: str, **changes) -> "RuleSet":
        """A copy with rule ``name`` changed (e.g. ``margin_mm=8`` or ``severity="warn"``)."""
        self[name]
        if "severity" in changes and changes["severity"] not in (FAIL, WARN):
            raise InputError(f"severity must be 'fail' or 'warn', got {changes['severity']!r}")
        if "margin_mm" in changes and not np.isfinite(changes["margin_mm"]):
            raise InputError("a rule margin must be a finite number of mm")
        return RuleSet(tuple(replace(r, **changes) if r.name == name else r for r in self.rules))

    def to_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rules], indent=2)

    @classmethod
    def from_json(cls, text: str) -> "RuleSet":
        try:
            return cls(tuple(Rule(**item) for item in json.loads(text)))
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot read the rule set: {exc}") from exc


@dataclass(frozen=True)
class ExitingRootCorridor:
    """Assumed course of the exiting nerve root below one pedicle [A]: a capsule (segment + radius).

    It starts ``gap_mm`` below the pedicle's inferior edge at the canal's lateral recess and runs
    ``length_mm`` laterally, anteriorly and inferiorly through the foramen. A pedicle taller than
    its level's prior by more than ``max_height_sd`` standard deviations is taken at that height
    about its centre: surfaces that fill the vertebral notches read tall pedicles, and the root
    lies under the true pedicle, so the corridor is moved up toward its centre, not down.
    """

    gap_mm: float = 1.75          # [V] 1.5-2.0 mm below the pedicle (Ebraheim 1996, Matuoka 2002)
    radius_mm: float = 2.5        # [A] root with its sleeve
    length_mm: float = 25.0       # [A] the extraforaminal course that matters for the puncture
    direction_vf: tuple = (0.65, 0.35, -0.65)  # [A] lateral, anterior, inferior components (vertebra frame)
    max_height_sd: float = 3.0    # [A] as the anatomy's implausibility threshold


@dataclass
class ZoneClearance:
    """Minimum clearance (mm, negative = breach) from one zone and where it occurs."""

    zone: str
    applies_to: str
    clearance_mm: float
    point: list            # model coordinates, mm
    depth_mm: float | None  # along the path from its start (instrument only)


@dataclass
class RuleResult:
    rule: str
    status: str            # pass / warn / fail
    clearance_mm: float
    margin_mm: float
    reason: str


@dataclass
class CheckResult:
    """What the checker found (mm, model coordinates)."""

    verdict: str
    reasons: list[str]
    clearances: dict[str, ZoneClearance]
    rules: list[RuleResult]
    bone_entry: list | None
    bone_entry_depth_mm: float | None
    intraosseous: bool
    medial_breach_mm: float
    gertzbein_robbins_grade: int
    tip: list
    notes: list[str] = field(default_factory=list)
    #: how the path reaches the bone (:class:`bvn_plan.planning.approach.EntryJudgement` as a dict)
    entry: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["frame"] = "model coordinates (mm)"
        return out


def gertzbein_robbins_grade(breach_mm: float) -> int:
    """Gertzbein-Robbins grade of a medial breach of ``breach_mm`` (0 none, 1 < 2, 2 2-4, 3 > 4 mm)."""
    if breach_mm <= 0:
        return 0
    if breach_mm < 2:
        return 1
    return 2 if breach_mm <= 4 else 3


class SafetyZones:
    """Every zone of one vertebra, built once (mm, model coordinates) and queried per check."""

    #: Samples closer than this to the bone entry are the entry itself, not a cortex breach [A].
    ENTRY_ZONE_MM = 4.0
    #: A tip farther than this outside the bone is not a trajectory into this vertebra.
    TIP_OUTSIDE_LIMIT_MM = 10.0

    def __init__(self, mesh: trimesh.Trimesh, landmarks: Landmarks, root: ExitingRootCorridor = ExitingRootCorridor(),
                 segmental_band_mm: float = 6.0, windows: EntryWindows = EntryWindows(),
                 organs: OrganZones | None = None, soft_tissue: SoftTissueModel = SoftTissueModel(),
                 skin: SkinSurface | None = None):
        if landmarks.canal_mesh is None or not landmarks.face_regions:
            raise AnatomyError("the anatomy has no canal volume or surface regions: find the anatomy first")
        self.mesh = mesh
        self.landmarks = landmarks
        self.level = landmarks.level
        self.bone = SignedDistance(mesh, name="vertebra")
        self.canal = SignedDistance(landmarks.canal_mesh, name="spinal canal", covers=mesh.bounds)
        self.region_of_face = np.full(len(mesh.faces), "other", dtype=object)
        for name, faces in landmarks.face_regions.items():
            self.region_of_face[np.asarray(faces, int)] = name
        self._face_tree = cKDTree(mesh.triangles_center)
        self.surfaces: dict[str, SurfaceDistance] = {}
        for name in REGIONS:
            faces = np.asarray(landmarks.face_regions.get(name, []), int)
            if len(faces) == 0:
                raise AnatomyError(f"the anatomy found no {name.replace('_', ' ')}: cannot check against it")
            self.surfaces[name] = SurfaceDistance(mesh.submesh([faces], append=True), covers=mesh.bounds)
        self.segmental_band_mm = segmental_band_mm
        band = self._segmental_faces()
        self.surfaces["segmental_artery"] = SurfaceDistance(mesh.submesh([band], append=True), covers=mesh.bounds) if len(band) else None
        #: every zone's grids node by node, read at a check's points at once; inside the vertebra,
        #: where lesions lie and instruments run, every bound is tightened by exact distances but the
        #: segmental artery zone's, which a check measures only where the instrument is outside the bone
        bounded = {"vertebra": self.bone, "spinal_canal": self.canal,
                   **{name: s for name, s in self.surfaces.items() if s is not None}}
        shared = self.bone._key == self.bone._bound.key
        self.grids = GridStack(bounded, {"vertebra": self.bone, "spinal_canal": self.canal},
                               exact_within=self.bone.grid < 0 if shared else None, untightened=("segmental_artery",))
        self.root = root
        self.root_segments = self._root_segments()
        self.approach = ApproachGeometry.of_mesh(mesh, landmarks, windows)
        #: real organs from a labelmap (model coordinates = its world RAS mm), or None: modelled from the bone
        self.organs = organs
        #: where the skin lies (the organs' fat, else ``skin``, e.g. a CT's body), or None: assumed
        self.skin = organs.skin if organs is not None and organs.skin is not None else skin
        #: the soft tissue modelled from the bone when no organs are labelled (planning.soft_tissue)
        self.modelled = ModelledZones(mesh, landmarks, soft_tissue, windows) if organs is None else None

    @property
    def soft_tissue(self) -> str:
        """Which soft-tissue model the checks use, in words."""
        if self.organs is None:
            zones = ", ".join(MODELLED_ZONE_NAMES[name] for name in self.modelled.names) or "none at this level"
            return (f"soft tissue modelled from the bone (no organ labels given): zones of the {zones} "
                    "(planning.soft_tissue), and the bone-entry windows naming the great vessels, psoas, exiting "
                    "root and disc")
        return f"soft tissue from the labelled organs of {self.organs.source}: {', '.join(self.organs.organs)}"

    def _segmental_faces(self) -> np.ndarray:
        frame = self.landmarks.frame
        faces = np.asarray(self.landmarks.face_regions["lateral_cortex"], int)
        z = frame.to_local(self.mesh.triangles_center[faces])[:, 2]
        mid = 0.5 * (frame.to_local(self.landmarks.superior_endplate.point)[2]
                     + frame.to_local(self.landmarks.inferior_endplate.point)[2])
        return faces[np.abs(z - mid) <= self.segmental_band_mm]

    def _root_segments(self) -> list[tuple[np.ndarray, np.ndarray]]:
        frame = self.landmarks.frame
        prior = morphometry(self.landmarks.level)
        tallest = prior.pedicle_height_mm + self.root.max_height_sd * prior.sd("pedicle_height_mm")
        segments = []
        for side, pedicle in self.landmarks.pedicles.items():
            sign = 1.0 if side == "right" else -1.0
            centre = frame.to_local(pedicle.isthmus_centre)
            height = min(pedicle.isthmus_height_mm, tallest)
            start = centre + np.array([0.0, 0.0, -(height / 2 + self.root.gap_mm + self.root.radius_mm)])
            lateral, anterior, inferior = self.root.direction_vf
            direction = np.array([sign * lateral, anterior, inferior])
            end = start + self.root.length_mm * direction / np.linalg.norm(direction)
            segments.append((frame.to_model(start), frame.to_model(end)))
        return segments

    def root_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (mm) from points to the surface of the nearest exiting-root capsule (negative inside)."""
        best = np.full(len(points), np.inf)
        for a, b in self.root_segments:
            ab = b - a
            t = np.clip((points - a) @ ab / (ab @ ab), 0.0, 1.0)
            best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
        return best - self.root.radius_mm

    def nearest_region(self, points: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """Name of the surface region nearest to each point (only where ``where`` is true; "" elsewhere)."""
        names = np.full(len(points), "", dtype=object)
        use = np.ones(len(points), bool) if where is None else np.asarray(where, bool)
        if use.any():
            _, face = self._face_tree.query(np.asarray(points)[use])
            names[use] = self.region_of_face[face]
        return names


#: Icosphere level of an ellipsoid lesion's surface samples in every check: 642 points, about 1 mm
#: apart on the default 10 x 14 mm lesion, whose clearances lie within 0.02 mm of the exact surface's
#: (level 4, 2562 points, takes 3x longer for < 0.01 mm).
LESION_CHECK_SUBDIVISIONS = 3


def lesion_check_points(lesion) -> np.ndarray:
    """Surface samples (mm, model coordinates) of a lesion as checked; an ellipsoid's are the
    vertices of its ``surface_mesh(LESION_CHECK_SUBDIVISIONS)``, without building the mesh."""
    if isinstance(lesion, EllipsoidLesion):
        return lesion.surface_points(LESION_CHECK_SUBDIVISIONS)
    surface = lesion if isinstance(lesion, trimesh.Trimesh) else lesion.surface_mesh()
    if len(surface.vertices) < 4:
        raise InputError("the lesion surface has fewer than 4 points")
    return np.asarray(surface.vertices, float)


@dataclass
class _Course:
    """Where the instrument runs through the bone: its samples (mm, model coordinates), their signed
    bone distance (mm), the index of the bone entry, the samples outside bone after it, and the medial
    breach (mm) with its Gertzbein-Robbins grade."""

    samples: PathSamples
    bone_sd: np.ndarray
    entry: int
    exits: np.ndarray
    medial_breach_mm: float = 0.0
    grade: int = 0
    entry_judgement: EntryJudgement | None = None
    organ: str = ""   # the labelled organs crossed, in order, in words

    @property
    def intraosseous(self) -> bool:
        return len(self.exits) == 0

    def past_entry(self, depth_mm: float) -> float:
        """How far (mm) a depth along the path lies past the bone entry."""
        return depth_mm - self.samples.depth_mm[self.entry]


def check_path(zones: SafetyZones, path: InstrumentPath, lesion=None, rules: RuleSet = RuleSet()) -> CheckResult:
    """Judge an instrument path (and optionally its lesion: a trimesh surface or an object with
    ``surface_mesh()``) against every zone. All geometry in mm, model coordinates. Raises the
    :class:`InputError` that refuses the path."""
    result = check_paths(zones, [path], [lesion], rules)[0]
    if isinstance(result, InputError):
        raise result
    return result


def check_paths(zones: SafetyZones, paths: list[InstrumentPath], lesions: list | None = None,
                rules: RuleSet = RuleSet()) -> list[CheckResult | InputError]:
    """:func:`check_path` of many paths on one vertebra's zones (a robustness run), each with its
    lesion (``lesions``: one per path, or None), all geometry in mm, model coordinates. A path the
    checker refuses gives its :class:`InputError` in its place, so that one bad sample does not stop
    the run. The paths are checked together: every path's samples and lesion points are read in the
    zones' grids at once, and each zone answers all the paths' minima with two batches of exact
    queries (:meth:`bvn_plan.geometry.distance.SignedDistance.minima`)."""
    lesions = [None] * len(paths) if lesions is None else list(lesions)
    if len(lesions) != len(paths):
        raise InputError(f"check_paths got {len(paths)} paths but {len(lesions)} lesions: give one lesion per path")
    cases = []
    for path, lesion in zip(paths, lesions):
        case = _Case(path)
        try:
            case.samples = path.sample()
            try:
                case.lesion_points = None if lesion is None else lesion_check_points(lesion)
            except InputError as exc:  # reported after the path's own errors, as the check reaches the lesion
                case.lesion_error = exc
        except InputError as exc:
            case.outcome = exc
        cases.append(case)
    _check_together(zones, [case for case in cases if case.outcome is None], rules)
    return [case.outcome for case in cases]


@dataclass
class _Case:
    """One path of :func:`check_paths` on its way: its samples, its lesion's points (mm, model
    coordinates), their first rows among all the cases' points, its course and its outcome."""

    path: InstrumentPath
    samples: PathSamples | None = None
    lesion_points: np.ndarray | None = None
    lesion_error: InputError | None = None
    start: int = 0            # the row of its first sample
    lesion_start: int = 0     # the row of its first lesion point
    course: _Course | None = None
    post: np.ndarray | None = None  # the samples past the bone entry zone
    outcome: CheckResult | InputError | None = None
    clearances: dict = field(default_factory=dict)

    def record(self, zone, applies_to, value, where, depth_mm) -> None:
        self.clearances[f"{zone}:{applies_to}"] = ZoneClearance(zone, applies_to, float(value),
                                                                np.asarray(where, float).tolist(), depth_mm)


class _Groups:
    """Groups of rows (of all the cases' points) for one zone's minima: each group's rows, its offset
    (mm) and its key, concatenated as the zone's ``minima`` take them."""

    def __init__(self):
        self.keys, self._rows, self._offsets, self._arrays = [], [], [], None

    def add(self, key, rows: np.ndarray, offset: float) -> None:
        if len(rows):
            self.keys.append(key)
            self._rows.append(rows)
            self._offsets.append(offset)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows, their offsets (mm) and each group's first position."""
        if self._arrays is None:
            sizes = np.array([len(r) for r in self._rows])
            self._arrays = (np.concatenate(self._rows), np.repeat(self._offsets, sizes),
                            np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int))
        return self._arrays

    def found(self, best: np.ndarray, where: np.ndarray, rows: np.ndarray) -> dict:
        """Each group's (value, row) by key from a zone's minima or maxima over ``rows``."""
        return {key: (float(b), int(rows[w])) for key, b, w in zip(self.keys, best, where)}


def _check_together(zones: SafetyZones, cases: list[_Case], rules: RuleSet) -> None:
    """Set each case's outcome: its CheckResult or the InputError that refuses it."""
    if not cases:
        return
    count = 0
    for case in cases:
        case.start, count = count, count + len(case.samples.points)
    instrument_rows = count
    for case in cases:
        if case.lesion_points is not None:
            case.lesion_start, count = count, count + len(case.lesion_points)
    points = np.vstack([c.samples.points for c in cases] + [c.lesion_points for c in cases if c.lesion_points is not None])
    read = zones.grids.read(points)  # every zone's grid at every point, one gather
    bone_sd = zones.bone.refine(points, np.add(*read.signed["vertebra"]))
    canal_sd = zones.canal.refine(points[:instrument_rows], np.add(*(a[:instrument_rows] for a in read.signed["spinal_canal"])))

    checked = _enter_bone(cases, bone_sd)
    if not checked:
        return
    region_of, region_rows = _name_regions(zones, checked, points, bone_sd)

    canal, bone = _Groups(), _Groups()
    regions = {name: (_Groups(), _Groups()) for name in REGIONS}  # minima inside the bone, maxima outside
    segmental = _Groups()
    for case in checked:
        radius, course, n = case.samples.radius_mm, case.course, id(case)
        samples = np.arange(case.start, case.start + len(case.samples.points))
        canal.add((n, "instrument"), samples, radius)
        bone.add(n, case.start + case.post, radius)
        rows = region_rows[n]
        sets = [("instrument", rows, radius)]
        if case.lesion_points is not None:
            lesion = np.arange(case.lesion_start, case.lesion_start + len(case.lesion_points))
            canal.add((n, "lesion"), lesion, 0.0)
            sets.append(("lesion", lesion, 0.0))
        for applies_to, rows, offset in sets:
            inside = bone_sd[rows] < 0
            outside = rows[~inside]
            names = region_of[outside]
            for name, (least, deepest) in regions.items():
                least.add((n, applies_to), rows[inside], offset)
                deepest.add((n, applies_to), outside[names == name] if len(outside) else outside, offset)
        if zones.surfaces["segmental_artery"] is not None:
            segmental.add(n, samples[course.bone_sd >= -radius], radius)

    # every zone's minima in one search: two batches of exact queries per zone for all the cases
    searches = [(zones.canal, canal, {"sign": 1.0, "read": _taken(read, "spinal_canal", canal)}),
                (zones.bone, bone, {"sign": -1.0, "read": _taken(read, "vertebra", bone)})]
    searches += [(zones.surfaces[name], least, {"lower": _taken(read, name, least)}) for name, (least, _) in regions.items()]
    if segmental.keys:
        searches.append((zones.surfaces["segmental_artery"], segmental, {"lower": _taken(read, "segmental_artery", segmental)}))
    searches = [(surface, groups, groups.arrays(), options) for surface, groups, options in searches if groups.keys]
    found = minima_together([(surface, points[rows], offset, starts, options)
                             for surface, _, (rows, offset, starts), options in searches])
    found = {id(groups): groups.found(*result, arrays[0]) for (_, groups, arrays, _), result in zip(searches, found)}
    canal_min, bone_min = found.get(id(canal), {}), found.get(id(bone), {})
    segmental_min = found.get(id(segmental), {})
    region_min, region_max = {}, {}
    for name, (least, deepest) in regions.items():
        region_min[name] = found.get(id(least), {})
        if deepest.keys:
            rows, _, starts = deepest.arrays()
            region_max[name] = deepest.found(*zones.surfaces[name].maxima(points[rows], starts), rows)
        else:
            region_max[name] = {}
    root = zones.root_distance(points[:instrument_rows])

    for case in checked:
        n, course, radius = id(case), case.course, case.samples.radius_mm
        depth, local = case.samples.depth_mm, (lambda row: row - case.start)
        crosses = bool((canal_sd[case.start:case.start + len(depth)] < 0).any())
        course.entry_judgement = zones.approach.judge(case.samples.points, course.entry, crosses,
                                                      region_of[case.start + course.entry])
        value, row = canal_min[(n, "instrument")]
        case.record("spinal_canal", "instrument", value, points[row], float(depth[local(row)]))
        course.medial_breach_mm = max(0.0, -value)
        course.grade = gertzbein_robbins_grade(course.medial_breach_mm)
        if n in bone_min:
            value, row = bone_min[n]
            case.record("bone", "instrument", value, points[row], float(depth[local(row)]))
        for name in REGIONS:
            value, row = _region_clearance(region_min[name], region_max[name], (n, "instrument"), radius,
                                           region_rows[n][0])
            case.record(name, "instrument", value, points[row], float(depth[local(row)]))
        if zones.organs is not None:
            _organ_clearance(zones.organs, course, case.record)
        else:
            _modelled_clearances(zones.modelled, course, case.record)
        k = int(np.argmin(root[case.start:case.start + len(depth)] - radius))
        case.record("exiting_root", "instrument", root[case.start + k] - radius, points[case.start + k], float(depth[k]))
        if n in segmental_min:
            value, row = segmental_min[n]
            case.record("segmental_artery", "instrument", value, points[row], float(depth[local(row)]))
        if case.lesion_points is not None:
            value, row = canal_min[(n, "lesion")]
            case.record("spinal_canal", "lesion", value, points[row], None)
            for name in REGIONS:
                value, row = _region_clearance(region_min[name], region_max[name], (n, "lesion"), 0.0, case.lesion_start)
                case.record(name, "lesion", value, points[row], None)
        case.outcome = _verdict(zones, case, rules)


def _enter_bone(cases: list[_Case], bone_sd: np.ndarray) -> list[_Case]:
    """The cases whose path enters the bone and ends in it, each with its course; the others get the
    InputError that refuses them as their outcome."""
    checked = []
    for case in cases:
        sd = bone_sd[case.start:case.start + len(case.samples.points)]
        inside = np.flatnonzero(sd < 0)
        if len(inside) == 0:
            case.outcome = InputError("the path never enters the vertebra: check its points and their frame/units")
        elif sd[-1] > SafetyZones.TIP_OUTSIDE_LIMIT_MM:
            case.outcome = InputError(f"the tip lies {sd[-1]:.1f} mm outside the vertebra: a trajectory must end in the bone")
        elif case.lesion_error is not None:
            case.outcome = case.lesion_error
        else:
            entry = int(inside[0])
            after = np.arange(entry, len(sd))
            case.course = _Course(case.samples, sd, entry, after[sd[after] > 0])
            checked.append(case)
    return checked


def _name_regions(zones: SafetyZones, checked: list[_Case], points: np.ndarray, bone_sd: np.ndarray):
    """The region named at the rows the checker names one for (each bone entry, and the instrument's
    and the lesions' points outside the bone among those checked against the regions): per row a
    region name ("" where none is named), and per case (by id) its instrument rows checked against
    the regions (past the entry zone, or the tip)."""
    region_rows = {}
    named = [np.array([c.start + c.course.entry for c in checked])]
    for case in checked:
        course = case.course
        depth = case.samples.depth_mm
        after = np.arange(course.entry, len(depth))
        post = after[depth[after] - depth[course.entry] >= SafetyZones.ENTRY_ZONE_MM]
        case.post = post
        region_rows[id(case)] = case.start + (post if len(post) else np.array([len(depth) - 1]))
        named.append(region_rows[id(case)][bone_sd[region_rows[id(case)]] >= 0])
        if case.lesion_points is not None:
            lesion = np.arange(case.lesion_start, case.lesion_start + len(case.lesion_points))
            named.append(lesion[bone_sd[lesion] >= 0])
    named = np.concatenate(named)
    region_of = np.full(len(points), "", dtype=object)
    region_of[named] = zones.nearest_region(points[named])
    return region_of, region_rows


def _taken(read, name: str, groups: _Groups):
    """The grid read of zone ``name`` at the rows of ``groups``: (signed grid values, overshoot) and
    lower bounds for a signed zone, lower bounds alone for an unsigned one."""
    if not groups.keys:
        return None
    rows = groups.arrays()[0]
    if name in read.signed:
        values, overshoot = read.signed[name]
        return (values[rows], overshoot[rows]), read.lower[name][rows]
    return read.lower[name][rows]


def _region_clearance(least: dict, deepest: dict, key, offset: float, first_row: int) -> tuple[float, int]:
    """A region's signed clearance (mm) and its row for one case's instrument or lesion (``key``):
    the least distance of its points inside the bone (``least``), or minus the greatest distance of
    those outside that left through the region (``deepest``), less ``offset``, whichever is lower;
    (inf, ``first_row``) if it has neither."""
    found = []
    if key in least:
        found.append(least[key])
    if key in deepest:
        value, row = deepest[key]
        found.append((-value - offset, row))
    return min(found) if found else (float("inf"), first_row)


def _verdict(zones: SafetyZones, case: _Case, rules: RuleSet) -> CheckResult:
    """The CheckResult of a case whose clearances are recorded."""
    course, points, depth = case.course, case.samples.points, case.samples.depth_mm
    results = _apply_rules(rules, case.clearances, zones, course)
    verdict = FAIL if any(r.status == FAIL for r in results) else WARN if any(r.status == WARN for r in results) else PASS
    reasons = [r.reason for r in results if r.status != PASS]
    if verdict == PASS:
        reasons = ["every rule holds: " + ", ".join(f"{r.rule} {r.clearance_mm:+.1f} mm" for r in results)]
    return CheckResult(verdict, reasons, case.clearances, results, points[course.entry].tolist(),
                       float(depth[course.entry]), course.intraosseous, float(course.medial_breach_mm), course.grade,
                       case.path.tip.tolist(), [zones.soft_tissue], course.entry_judgement.to_dict())


def _organ_clearance(organs: OrganZones, course: _Course, record) -> None:
    """Record the instrument's clearance from the labelled organs: minus the length (mm) run inside
    the first organ crossed, else the least distance of its surface from any organ voxel."""
    points, depth, radius = course.samples.points, course.samples.depth_mm, course.samples.radius_mm
    label = organs.label_at(points)
    crossed = np.flatnonzero(label > 0)
    if len(crossed):
        first = label[crossed[0]]
        run = crossed[label[crossed] == first]
        order = dict.fromkeys(int(v) for v in label[crossed])  # the organs crossed, in order
        course.organ = " and the ".join(organs.words[v] for v in order)
        value = -max(float(depth[run[-1]] - depth[run[0]]), SAMPLE_STEP_MM)
        record("organs", "instrument", value, points[run[0]], float(depth[run[0]]))
        return
    distance = organs.distance(points) - radius
    k = int(np.argmin(distance))
    record("organs", "instrument", distance[k], points[k], float(depth[k]))


def _modelled_clearances(modelled: ModelledZones, course: _Course, record) -> None:
    """Record the instrument's clearance from each modelled soft-tissue zone, outside the bone only
    (inside it the bone rules judge): minus the length (mm) run inside the zone, else the least
    distance of the instrument's surface from it."""
    points, depth, radius = course.samples.points, course.samples.depth_mm, course.samples.radius_mm
    outside = np.flatnonzero(course.bone_sd >= -radius)
    if len(outside) == 0:
        return
    for name, (within, distance) in modelled.lookup(points[outside]).items():
        inside = outside[within]
        if len(inside):
            value = -max(float(depth[inside[-1]] - depth[inside[0]]), SAMPLE_STEP_MM)
            record(f"{name}_model", "instrument", value, points[inside[0]], float(depth[inside[0]]))
            continue
        k = int(np.argmin(distance))
        record(f"{name}_model", "instrument", float(distance[k] - radius), points[outside[k]], float(depth[outside[k]]))


def _apply_rules(rules: RuleSet, clearances: dict[str, ZoneClearance], zones: SafetyZones,
                 course: _Course) -> list[RuleResult]:
    """Every rule's status, clearance and reason in words from the clearances and the course."""
    results = []
    for rule in rules.rules:
        key = f"{rule.zone}:{rule.applies_to}"
        if rule.zone == "bone":
            results.append(_bone_rule(rule, clearances.get(key), zones, course))
        elif rule.zone == "entry_window":
            j = course.entry_judgement
            status = PASS if j.window is not None else rule.severity
            reason = j.reason if j.window is None else f"{rule.description}: {j.reason}"
            results.append(RuleResult(rule.name, status, j.slack_mm, rule.margin_mm, reason))
        elif key in clearances:
            results.append(_zone_rule(rule, clearances[key], zones, course))
    return results


def _bone_rule(rule: Rule, c: ZoneClearance | None, zones: SafetyZones, course: _Course) -> RuleResult:
    """The bone rule: intraosseous from the entry to the tip, with the least bone around the instrument."""
    value = c.clearance_mm if c is not None else float("nan")
    ok = course.intraosseous and not value < rule.margin_mm
    points, depth, radius = course.samples.points, course.samples.depth_mm, course.samples.radius_mm
    if ok:
        reason = f"{rule.description}: {value:.1f} mm of bone around the instrument at the least"
    elif not course.intraosseous:
        worst = course.exits[np.argmax(course.bone_sd[course.exits])]
        value = -float(course.bone_sd[worst]) - radius
        region = zones.nearest_region(points[worst:worst + 1])[0].replace("_", " ")
        reason = (f"the instrument leaves the bone through the {region}: its axis runs "
                  f"{-value - radius:.1f} mm beyond the surface at "
                  f"{course.past_entry(depth[worst]):.1f} mm past the bone entry")
    else:
        region = zones.nearest_region(np.asarray([c.point]))[0].replace("_", " ")
        reason = (f"the instrument wall breaches the {region} cortex by {-value:.1f} mm at "
                  f"{course.past_entry(c.depth_mm):.1f} mm past the bone entry ({rule.description})")
    return RuleResult(rule.name, PASS if ok else rule.severity, value, rule.margin_mm, reason)


def _zone_rule(rule: Rule, c: ZoneClearance, zones: SafetyZones, course: _Course) -> RuleResult:
    """A zone rule: the clearance against the rule's margin, and why in words."""
    ok = c.clearance_mm >= rule.margin_mm
    status = PASS if ok else rule.severity
    what = "the instrument" if rule.applies_to == "instrument" else "the ablation zone"
    zone_words = ZONE_WORDS.get(rule.zone, rule.zone.replace("_", " "))
    if ok:
        reason = f"{rule.description}: {c.clearance_mm:.1f} mm (margin {rule.margin_mm:.1f} mm)"
    elif rule.zone == "organs":
        past = course.past_entry(c.depth_mm)
        reason = (f"the instrument crosses the {course.organ} (labelled in {zones.organs.source}), the first "
                  f"over {-c.clearance_mm:.1f} mm from {-past:.1f} mm before the bone entry ({rule.description})"
                  if c.clearance_mm < 0 else
                  f"the instrument comes within {c.clearance_mm:.1f} mm of a labelled organ, inside its "
                  f"{rule.margin_mm:.1f} mm margin ({rule.description})")
    elif rule.zone.endswith("_model") and c.clearance_mm < 0:
        past = course.past_entry(c.depth_mm)
        where = f"{-past:.1f} mm before the bone entry" if past < 0 else f"{past:.1f} mm past the bone entry"
        reason = (f"{what} crosses the {zone_words} over {-c.clearance_mm:.1f} mm from {where} "
                  f"({rule.description})")
    elif rule.name == "canal_instrument":
        past = course.past_entry(c.depth_mm)
        where = f"{past:.1f} mm past the bone entry" if past >= 0 else f"{-past:.1f} mm before the bone entry"
        reason = (f"medial pedicle wall breached: the instrument enters the spinal canal by "
                  f"{course.medial_breach_mm:.1f} mm at {where}: Gertzbein-Robbins grade {course.grade}")
    elif c.clearance_mm < 0:
        reason = f"{what} breaches the {zone_words} by {-c.clearance_mm:.1f} mm ({rule.description})"
    else:
        reason = (f"{what} comes within {c.clearance_mm:.1f} mm of the {zone_words}, inside its "
                  f"{rule.margin_mm:.1f} mm margin ({rule.description})")
    if rule.zone == "segmental_artery" and not ok:
        pct = SEGMENTAL_ARTERY_PREVALENCE.get(zones.level)
        if pct is not None:
            reason += f"; segmental arteries lie in this zone in {pct:.0f}% at {zones.level} (Liu 2019)"
    return RuleResult(rule.name, status, float(c.clearance_mm), rule.margin_mm, reason)
