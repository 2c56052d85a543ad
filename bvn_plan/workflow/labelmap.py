"""NIfTI labelmaps (TotalSegmentator, VerSe) -> per-level vertebra surfaces in RAS+ millimetres.

Inputs accepted:

* one multilabel NIfTI file. Label names come from, in order: ``names`` given by the caller; the
  label table TotalSegmentator writes into a NIfTI header extension (CIFTI/Caret XML
  ``<Label Key="27">vertebrae_L5</Label>``); or a numbering ``scheme`` the caller names:
  ``"totalseg"`` (TotalSegmentator v2 "total" task: 25 sacrum, 26 vertebrae_S1, 27 L5 ... 31 L1,
  32 T12 ... 43 T1, 44 C7 ... 50 C1, 79 spinal_cord) or ``"verse"`` (VerSe: 1-7 C1-C7, 8-19
  T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13);
* a folder of per-class binary masks named like TotalSegmentator's ``segmentations/`` output
  (``vertebrae_L4.nii.gz``, ``sacrum.nii.gz``, ``spinal_cord.nii.gz``, ``spinal_canal.nii.gz``).

Surfaces are built in the **world frame of the file** (NIfTI world = RAS+, mm) by applying the
image affine (sform preferred over qform, as nibabel does) to marching-cubes vertices. The
largest 26-connected piece of the label is kept and its internal cavities are filled first. The
voxel staircase is smoothed with a windowed-sinc filter (:func:`bvn_plan.geometry.meshing.taubin_smooth`), which barely
shrinks the surface (trimesh's Taubin filter, 10 iterations, lost ~15% of the volume of these
thin-walled 3 mm labels; a Gaussian blur of the mask, sigma 0.7 voxel, ~7%): on the 3 mm TotalSegmentator
example the enclosed volume is 2.2-2.7% below the voxel-count volume with the default 20
iterations (1.6-1.9% below without smoothing; marching cubes at 0.5 cuts voxel corners).

A mirrored (left/right flipped) labelmap cannot be told from its header: :attr:`Labelmap.
determinant_sign` is exposed, and the anatomy recogniser must check left/right by anatomy.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy import ndimage as ndi

from ..errors import InputError, note
from ..geometry.meshing import mask_surface
from ..imaging import nifti_stem, read_nifti
from ..levels import SPINE_ORDER, VARIANT_LEVELS, normalise_level
from ..vertebra import Vertebra

#: TotalSegmentator v2 "total" task numbering (spine classes only; TotalSegmentator's
#: ``map_to_binary.py``, class_map["total"]).
TOTALSEG_TOTAL_LABELS = {25: "sacrum", 26: "vertebrae_S1", 79: "spinal_cord"}
TOTALSEG_TOTAL_LABELS.update({27 + i: f"vertebrae_L{5 - i}" for i in range(5)})
TOTALSEG_TOTAL_LABELS.update({32 + i: f"vertebrae_T{12 - i}" for i in range(12)})
TOTALSEG_TOTAL_LABELS.update({44 + i: f"vertebrae_C{7 - i}" for i in range(7)})

#: VerSe challenge numbering (Sekuboyina et al. 2021, Med Image Anal 73:102166).
VERSE_LABELS = {i: f"vertebrae_C{i}" for i in range(1, 8)}
VERSE_LABELS.update({7 + i: f"vertebrae_T{i}" for i in range(1, 13)})
VERSE_LABELS.update({19 + i: f"vertebrae_L{i}" for i in range(1, 7)})
VERSE_LABELS.update({26: "sacrum", 28: "vertebrae_T13"})

#: Organs of the same numbering that lie on one side (class_map["total"] 1-6); they let a
#: left/right mirrored labelmap be noticed, which the symmetric vertebrae cannot.
TOTALSEG_TOTAL_LABELS.update({1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver",
                              6: "stomach"})

SCHEMES = {"totalseg": TOTALSEG_TOTAL_LABELS, "verse": VERSE_LABELS}
#: Side of the spine each organ lies on in normal anatomy (situs solitus): +1 patient right
#: (+x in RAS), -1 left. Organs found on the other side mean the affine mirrors left and right
#: (or, rarely, situs inversus, about 1 in 10,000 births).
SIDED_ORGANS = {"liver": 1, "gallbladder": 1, "kidney_right": 1, "spleen": -1, "stomach": -1, "kidney_left": -1}
#: Class names of the canal zone, best first: the canal itself (TotalSpineSeg, SPINEPS files
#: with names), else the spinal cord (TotalSegmentator), which ends near L1-L2.
CANAL_CLASSES = ("spinal_canal", "spinal_cord")
#: Class names (file names without .nii/.nii.gz) loaded from a folder of per-class masks.
FOLDER_CLASSES = re.compile(r"^(vertebrae_[CTLS]\d+|sacrum|spinal_cord|spinal_canal)$")

#: Smallest label accepted for meshing (mm^3). [A] A whole adult lumbar vertebra is ~45-80 cm^3
#: (VHM meshes 69-81 cm^3; TotalSegmentator example 48-65 cm^3); 5 cm^3 is a fragment or a
#: vertebra cut by the field of view.
MIN_MESH_VOLUME_MM3 = 5_000.0
#: Plausible whole-vertebra volume per region (cm^3) [A, broad]: from the VHM and
#: TotalSegmentator example volumes above and roughly scaled for cervical/thoracic/sacral size.
VOLUME_RANGE_CM3 = {"C": (2.0, 40.0), "T": (8.0, 110.0), "L": (25.0, 160.0), "S": (20.0, 400.0)}
#: Largest volume ratio between neighbouring levels before it is flagged [A]: adjacent lumbar
#: vertebrae differ by well under 30%; a ratio of 1.6 suggests a merged, split or mislabelled level.
VOLUME_JUMP_RATIO = 1.6
#: A second connected piece this large (fraction of the largest) flags a label covering two
#: bones [A].
SECOND_PIECE_FRACTION = 0.10
#: Windowed-sinc smoothing iterations of a level's surface (geometry.meshing.taubin_smooth).
DEFAULT_SMOOTHING_ITERATIONS = 20


@dataclass(frozen=True)
class Finding:
    """One doubt about the labelling: ``kind`` (order, gap, volume, jump, truncated, pieces, absent,
    mirrored)."""

    kind: str
    levels: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class LevelStats:
    """One level's label: volume (cm^3), centroid (RAS mm), whether it touches the image border
    and the size of its second-largest piece (fraction of the largest)."""

    volume_cm3: float
    centroid: np.ndarray
    touches_border: bool
    second_piece: float


class Labelmap:
    """A labelled volume: integer voxels, a voxel -> world (RAS+ mm) affine, and class names.

    ``names`` maps label values to class names (``"vertebrae_L4"``, ``"sacrum"``,
    ``"spinal_cord"``); ``source`` names the file or folder for messages and provenance.
    """

    def __init__(self, data: np.ndarray, affine: np.ndarray, names: dict[int, str], source: str,
                 notes: list[str] | None = None):
        self.data = data
        self.affine = np.asarray(affine, dtype=float)
        self.names = dict(names)
        self.source = source
        self.notes = list(notes or [])
        values, counts = np.unique(data, return_counts=True)
        self._counts = {int(v): int(c) for v, c in zip(values, counts) if v != 0}
        self._boxes: dict[int, tuple[slice, ...]] = {}

    # -- geometry of the grid -------------------------------------------------------------
    @property
    def determinant_sign(self) -> int:
        """Sign of the affine's 3x3 determinant: -1 for a radiological (LAS-like) voxel order."""
        return int(np.sign(np.linalg.det(self.affine[:3, :3])))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices (..., 3) -> world RAS+ mm."""
        return np.asarray(ijk, dtype=float) @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, points: np.ndarray) -> np.ndarray:
        """World RAS+ mm (..., 3) -> fractional voxel indices."""
        inverse = np.linalg.inv(self.affine)
        return np.asarray(points, dtype=float) @ inverse[:3, :3].T + inverse[:3, 3]

    # -- what is in it --------------------------------------------------------------------
    def labels(self) -> dict[str, int]:
        """Class name -> label value for every named label present in the volume."""
        return {self.names[v]: v for v in sorted(self._counts) if v in self.names}

    def spine_levels(self) -> list[str]:
        """Every vertebra level present (C1 ... S1, including thoracic), superior to inferior."""
        present = set(self._level_values())
        return [level for level in SPINE_ORDER if level in present]

    def levels(self) -> list[str]:
        """Levels bvn-plan can plan on (L1-L6, S1) present in the volume, superior to inferior."""
        return [level for level in self.spine_levels() if level[0] in "LS"]

    def label_value(self, level: str) -> int:
        """Label value holding ``level`` (S1 falls back to the whole ``sacrum`` class)."""
        values = self._level_values()
        name = _spine_level_name(level)
        if name not in values:
            raise InputError(
                f"level {name} is not labelled in {self.source}; labelled levels: "
                f"{', '.join(self.spine_levels()) or 'none'}"
            )
        return values[name]

    def voxel_count(self, level: str) -> int:
        return self._counts[self.label_value(level)]

    def mask(self, level: str) -> np.ndarray:
        """Boolean voxel mask of ``level`` on the whole grid."""
        return self.data == self.label_value(level)

    def _box(self, value: int) -> tuple[slice, ...]:
        """The bounding box (voxel slices) of label ``value``, found once."""
        if value not in self._boxes:
            self._boxes[value] = ndi.find_objects((self.data == value).astype(np.uint8))[0]
        return self._boxes[value]

    def _cropped_mask(self, value: int) -> tuple[np.ndarray, tuple[slice, ...]]:
        """Mask of label ``value`` cropped to its bounding box, and that box (voxel slices)."""
        box = self._box(value)
        return self.data[box] == value, box

    # -- surfaces -------------------------------------------------------------------------
    def vertebra(self, level: str, smoothing: int = DEFAULT_SMOOTHING_ITERATIONS,
                 cut_ok: bool = False) -> Vertebra:
        """Surface of ``level`` as a :class:`Vertebra` in world RAS+ mm (``patient_frame="RAS"``).

        ``smoothing``: windowed-sinc iterations (0 keeps the marching-cubes staircase).
        Raises :class:`InputError` when the level is absent, too small to be a vertebra, or cut by
        the image border (its shape incomplete: no anatomy, plan or check on it can be trusted),
        unless ``cut_ok`` (to look at or export the surface, or to measure what lies beside it).
        """
        level = normalise_level(level)
        value = self.label_value(level)
        name = self.names[value]
        volume = self._counts[value] * self.voxel_volume_mm3
        if volume < MIN_MESH_VOLUME_MM3:
            raise InputError(
                f"{name} in {self.source} has only {self._counts[value]} voxels ({volume / 1000:.1f} cm^3); "
                f"a vertebra is over {MIN_MESH_VOLUME_MM3 / 1000:.0f} cm^3: the label is a fragment or "
                "cut by the field of view. Re-segment a scan that covers the whole level"
            )
        if not cut_ok and self._touches_border(value):
            raise InputError(
                f"{name} in {self.source} touches the image border: the field of view cuts it, so its "
                "shape is incomplete and no plan or check on it can be trusted. Use a scan that covers "
                "the whole level (the neighbours may still be planned)"
            )
        source = f"{self.source}:label {value} ({name})"
        notes: list[str] = []
        if level == "S1" and name == "sacrum":
            note(notes, f"{source}: no vertebrae_S1 label; S1 is the whole sacrum")
        mesh = self._surface(value, source, notes, smoothing)
        vertebra = Vertebra.from_mesh(mesh, level=level, units="mm", frame="RAS", source=source)
        vertebra.notes = notes + vertebra.notes
        return vertebra

    def canal_mesh(self, smoothing: int = DEFAULT_SMOOTHING_ITERATIONS) -> trimesh.Trimesh | None:
        """Surface (world RAS+ mm) of the spinal canal label, else the spinal cord, else ``None``.

        The surface's ``metadata["label_name"]`` says which class it is. A spinal cord label
        stops near L1-L2 (the canal below holds the cauda equina).
        """
        present = self.labels()
        for name in CANAL_CLASSES:
            if name in present:
                source = f"{self.source}:label {present[name]} ({name})"
                mesh = self._surface(present[name], source, self.notes, smoothing)
                mesh.metadata["label_name"] = name
                return mesh
        return None

    def _surface(self, value: int, source: str, notes: list[str], smoothing: int) -> trimesh.Trimesh:
        cropped, box = self._cropped_mask(value)
        mask = _largest_piece_filled(cropped, source, notes)
        return mask_surface(mask, self.affine, np.array([s.start for s in box]), smoothing=smoothing)

    # -- plausibility ---------------------------------------------------------------------
    def plausibility(self, levels: list[str] | None = None) -> list[Finding]:
        """Check the level labelling; every finding is also raised as a :class:`BvnPlanWarning`.

        Checks the levels from the most superior to the most inferior of ``levels`` (default:
        every labelled vertebra): requested levels present; no level missing in between;
        centroids ordered superior to inferior along RAS z; per-level volume within
        :data:`VOLUME_RANGE_CM3`; no label cut by the image border; no label in two large
        pieces; neighbour volume ratio under :data:`VOLUME_JUMP_RATIO`; labelled organs of
        :data:`SIDED_ORGANS` on their own side of the spine (else left and right are mirrored).
        """
        present = self.spine_levels()
        wanted = [_spine_level_name(level) for level in levels] if levels else present
        findings, checked = _labelling_findings(present, wanted, self.source)
        stats = {level: self._level_stats(level) for level in checked}
        findings += _size_findings(stats) + _neighbour_findings(stats) + self._situs_findings()
        for finding in findings:
            note(self.notes, f"{self.source}: {finding.message}")
        return findings

    def _situs_findings(self) -> list[Finding]:
        """A finding when labelled one-sided organs lie on the wrong side of the spine (RAS x)."""
        labels = self.labels()
        spine = [self.label_value(level) for level in self.spine_levels()]
        organs = [name for name in SIDED_ORGANS if name in labels]
        if not spine or not organs:
            return []

        def centre_x(values) -> float:
            return float(self.voxel_to_world(np.argwhere(np.isin(self.data, values)).mean(axis=0))[0])

        spine_x = centre_x(spine)
        wrong = [name for name in organs if SIDED_ORGANS[name] * (centre_x([labels[name]]) - spine_x) < 0]
        if not wrong:
            return []
        return [Finding("mirrored", tuple(self.spine_levels()), f"{', '.join(wrong)} lie(s) on the wrong side of the "
                        "spine (RAS x): the affine mirrors left and right (or situs inversus); fix the image "
                        "orientation before trusting the side of any plan")]

    def _level_values(self) -> dict[str, int]:
        """Spine level -> label value; S1 maps to ``sacrum`` when no vertebrae_S1 is labelled."""
        values: dict[str, int] = {}
        for name, value in self.labels().items():
            match = re.fullmatch(r"vertebrae_([CTLS]\d+)", name)
            if match and match.group(1) in SPINE_ORDER:
                values[match.group(1)] = value
        if "S1" not in values and "sacrum" in self.labels():
            values["S1"] = self.labels()["sacrum"]
        return values

    def _level_stats(self, level: str) -> "LevelStats":
        """Size, place and completeness of the label of ``level``."""
        mask, box = self._cropped_mask(self.label_value(level))
        volume = mask.sum() * self.voxel_volume_mm3 / 1000.0
        centroid = self.voxel_to_world(np.argwhere(mask).mean(axis=0) + [s.start for s in box])
        border = self._touches_border(self.label_value(level))
        pieces, count = ndi.label(mask, structure=np.ones((3, 3, 3)))
        sizes = np.sort(np.bincount(pieces.ravel())[1:])[::-1]
        second = float(sizes[1] / sizes[0]) if count > 1 else 0.0
        return LevelStats(float(volume), centroid, border, second)

    def _touches_border(self, value: int) -> bool:
        """Whether label ``value``'s voxels reach the image border (the field of view cuts it)."""
        return any(s.start == 0 or s.stop == n for s, n in zip(self._box(value), self.data.shape))

    def __repr__(self) -> str:
        return f"Labelmap({self.source!r}, shape={self.data.shape}, levels={self.spine_levels()})"


def _labelling_findings(present: list[str], wanted: list[str], source: str) -> tuple[list[Finding], list[str]]:
    """Findings for requested levels absent from ``present`` and for levels missing between the
    most superior and most inferior ``wanted`` level (variants excepted), and the present levels
    in that span (superior to inferior)."""
    findings = [Finding("absent", (level,), f"{level} is not labelled in {source}")
                for level in wanted if level not in present]
    span = [SPINE_ORDER.index(level) for level in wanted]
    if not span:
        return findings, []
    lo, hi = min(span), max(span)
    for level in SPINE_ORDER[lo:hi + 1]:
        if level not in present and level not in wanted and level not in VARIANT_LEVELS:
            findings.append(Finding("gap", (level,), f"{level} is missing between labelled levels "
                                    f"{SPINE_ORDER[lo]} and {SPINE_ORDER[hi]}: a level may be "
                                    "unlabelled or the labels shifted"))
    return findings, [level for level in present if lo <= SPINE_ORDER.index(level) <= hi]


def _size_findings(stats: dict[str, LevelStats]) -> list[Finding]:
    """Per level: cut by the image border, else a volume outside VOLUME_RANGE_CM3; a large second piece."""
    findings = []
    for level, st in stats.items():
        low, high = VOLUME_RANGE_CM3[level[0]]
        if st.touches_border:
            findings.append(Finding("truncated", (level,), f"{level} touches the image border: it is "
                                    "cut by the field of view, its size and shape are incomplete"))
        elif not low <= st.volume_cm3 <= high:
            findings.append(Finding("volume", (level,), f"{level} volume {st.volume_cm3:.1f} cm^3 is outside "
                                    f"the plausible {low:.0f}-{high:.0f} cm^3"))
        if st.second_piece >= SECOND_PIECE_FRACTION:
            findings.append(Finding("pieces", (level,), f"{level} has a second piece {st.second_piece:.0%} "
                                    "the size of the main one: the label may cover two bones"))
    return findings


def _neighbour_findings(stats: dict[str, LevelStats]) -> list[Finding]:
    """Per pair of neighbouring levels (``stats`` superior to inferior): centroids out of order
    along RAS z, or volumes differing more than VOLUME_JUMP_RATIO-fold (neither cut by the border)."""
    findings = []
    levels = list(stats)
    for upper, lower in zip(levels, levels[1:]):
        up, low = stats[upper], stats[lower]
        if up.centroid[2] <= low.centroid[2]:
            findings.append(Finding("order", (upper, lower), f"{upper} centroid (z = {up.centroid[2]:.1f} mm) is "
                                    f"not above {lower} (z = {low.centroid[2]:.1f} mm) in RAS: levels swapped "
                                    "or the affine is wrong"))
        ratio = max(up.volume_cm3, low.volume_cm3) / max(min(up.volume_cm3, low.volume_cm3), 1e-9)
        if ratio > VOLUME_JUMP_RATIO and not (up.touches_border or low.touches_border):
            findings.append(Finding("jump", (upper, lower), f"{upper} ({up.volume_cm3:.1f} cm^3) and {lower} "
                                    f"({low.volume_cm3:.1f} cm^3) differ {ratio:.2f}-fold: a level may be merged, "
                                    "split or mislabelled"))
    return findings


def load_labelmap(path: str | os.PathLike, names: dict[int, str] | None = None, scheme: str = "auto") -> Labelmap:
    """Read a multilabel NIfTI file, or a folder of per-class masks (see the module docstring).

    ``names``: label value -> class name (``{28: "vertebrae_L4"}``), overriding everything.
    ``scheme``: ``"auto"`` (names from the header extension, else refuse), ``"totalseg"``
    (header names, else TotalSegmentator's "total" numbering) or ``"verse"``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"labelmap not found: {path}")
    if path.is_dir():
        return load_labelmap_folder(path)
    scheme = str(scheme).strip().lower()
    if scheme not in ("auto",) + tuple(SCHEMES):
        raise InputError(f"unknown label scheme {scheme!r}: use auto, {', '.join(SCHEMES)}")
    image = read_nifti(path)
    notes: list[str] = []
    data = _integer_labels(image, path)
    header_names = _header_label_names(image, path, notes)
    if names is not None:
        table = {int(k): str(v) for k, v in names.items()}
    elif scheme == "verse":
        if header_names:
            note(notes, f"{path.name}: label names in the header ignored because scheme 'verse' was requested")
        table = VERSE_LABELS
    elif header_names:
        table = header_names
    elif scheme == "totalseg":
        table = TOTALSEG_TOTAL_LABELS
    else:
        raise InputError(
            f"{path.name} carries no label names: say which numbering it uses, scheme='totalseg' "
            "(TotalSegmentator 'total') or scheme='verse' (VerSe 20-25 = L1-L6), or give names={value: name}"
        )
    labelmap = Labelmap(data, _checked_affine(image, path, notes), table, path.name, notes)
    if not labelmap.spine_levels():
        raise InputError(
            f"{path.name} holds no vertebra labels under its label names (values present: "
            f"{', '.join(map(str, sorted(labelmap._counts))) or 'none'}); check the label scheme"
        )
    return labelmap


def load_labelmap_folder(folder: str | os.PathLike) -> Labelmap:
    """Combine per-class binary masks (``vertebrae_L4.nii.gz``, ``sacrum.nii.gz``,
    ``spinal_cord.nii.gz``, ``spinal_canal.nii.gz``) sharing one grid into one :class:`Labelmap`."""
    folder = Path(folder)
    files = {}
    for entry in sorted(folder.iterdir()):
        stem = nifti_stem(entry.name)
        if stem is not None and FOLDER_CLASSES.match(stem):
            files[stem] = entry
    if not any(stem.startswith("vertebrae_") or stem == "sacrum" for stem in files):
        raise InputError(
            f"{folder} holds no vertebra masks: expected files like vertebrae_L4.nii.gz or sacrum.nii.gz "
            "(TotalSegmentator's segmentations/ folder)"
        )
    notes: list[str] = []
    data = affine = None
    names: dict[int, str] = {}
    for value, (stem, file) in enumerate(files.items(), start=1):
        image = read_nifti(file)
        mask = _integer_labels(image, file) > 0
        if data is None:
            data = np.zeros(mask.shape, dtype=np.int16)
            affine = _checked_affine(image, file, notes)
        elif mask.shape != data.shape or not np.allclose(image.affine, affine, atol=1e-3):
            raise InputError(
                f"{file.name} is on a different voxel grid ({mask.shape}) from the other masks in {folder} "
                f"({data.shape}); resample all masks to one grid first"
            )
        overlap = int((mask & (data > 0)).sum())
        if overlap:
            note(notes, f"{file.name}: {overlap} voxels also belong to another mask; kept the earlier one")
        data[mask & (data == 0)] = value
        names[value] = stem
    return Labelmap(data, affine, names, folder.name, notes)


def _largest_piece_filled(cropped: np.ndarray, source: str, notes: list[str]) -> np.ndarray:
    """Keep the largest 26-connected piece of a mask and fill its internal cavities."""
    pieces, count = ndi.label(cropped, structure=np.ones((3, 3, 3)))
    if count > 1:
        sizes = np.bincount(pieces.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
        note(notes, f"{source}: kept the largest piece; dropped {count - 1} other piece(s) of "
                    f"{int(sizes.sum() - sizes[keep - 1])} voxels")
        cropped = pieces == keep
    filled = ndi.binary_fill_holes(cropped)
    added = int(filled.sum() - cropped.sum())
    if added:
        note(notes, f"{source}: filled {added} voxels of internal cavities")
    return filled


def _spine_level_name(level: str) -> str:
    text = str(level).strip().upper().replace("VERTEBRAE_", "")
    if text in SPINE_ORDER:
        return text
    return normalise_level(level)


def _integer_labels(image, path: Path) -> np.ndarray:
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as exc:
        raise InputError(f"cannot read the voxels of {path.name}: {exc}. Is the file complete?") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path.name} has shape {data.shape}: a labelmap must be a 3-D volume")
    if np.issubdtype(data.dtype, np.integer):
        return data
    rounded = np.rint(data)
    if not np.allclose(data, rounded, atol=1e-3):
        raise InputError(f"{path.name} holds non-integer values: it is an image, not a labelmap")
    return rounded.astype(np.int32)


def _checked_affine(image, path: Path, notes: list[str]) -> np.ndarray:
    header = image.header
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path.name} has an unusable (singular or non-finite) affine: fix the NIfTI header")
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        note(notes, f"{path.name}: neither sform nor qform is set; world coordinates are voxel indices "
                    "times voxel size, not a patient frame")
    return affine


def _header_label_names(image, path: Path, notes: list[str]) -> dict[int, str]:
    """Label names from a CIFTI/Caret XML label table in a header extension (TotalSegmentator)."""
    for extension in image.header.extensions:
        content = extension.get_content()
        if not isinstance(content, bytes) or b"<LabelTable" not in content:
            continue
        try:
            root = ET.fromstring(content.strip(b"\x00 \t\r\n"))
        except ET.ParseError as exc:
            note(notes, f"{path.name}: the label table in the header is not valid XML ({exc}); ignored")
            continue
        table = {}
        for label in root.iter("Label"):
            if label.get("Key") is not None and (label.text or "").strip():
                table[int(label.get("Key"))] = label.text.strip()
        if table:
            return table
    return {}
