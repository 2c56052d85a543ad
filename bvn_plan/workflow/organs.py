"""Organ labels from files -> :class:`bvn_plan.planning.zones.OrganZones` (the no-go organs and the skin).

Inputs accepted (the same grid as the vertebra's CT):

* one multilabel NIfTI file with label names (TotalSegmentator "total": ``aorta``,
  ``inferior_vena_cava``, ``kidney_left`` ...; names from its header extension, or the
  ``scheme`` of :func:`bvn_plan.workflow.labelmap.load_labelmap`);
* a folder of per-class binary masks named like TotalSegmentator's ``segmentations/`` output
  (``aorta.nii.gz``, ``iliopsoas_left.nii.gz`` ...); a ``subcutaneous_fat.nii.gz`` in it (its
  "tissue_types" task) gives the skin unless a fat mask is given.

The organs' world is the labelmap's (RAS+ mm). A vertebra mesh in LPS mm is served by turning the
organs' affine into LPS; a mesh in no known patient frame cannot be placed among them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..coordinates import LPS, RAS, normalise_patient_frame
from ..errors import InputError
from ..imaging import nifti_stem, read_nifti
from ..planning.zones import OrganZones, SkinSurface, organ_words
from .labelmap import _integer_labels, load_labelmap

#: File name (without .nii/.nii.gz) of the subcutaneous-fat mask in a TotalSegmentator folder.
FAT_MASK_NAME = "subcutaneous_fat"


def load_organs(path: str | os.PathLike, subcutaneous_fat: str | os.PathLike | None = None, frame: str | None = RAS,
                scheme: str = "auto") -> OrganZones:
    """The organ zones of ``path`` (see the module docstring), their coordinates in patient ``frame``
    (RAS or LPS, mm: the vertebra's); ``subcutaneous_fat``: a binary mask on the same grid whose
    outer edge is the skin. Raises :class:`InputError` when the frame is unknown, the files hold
    no organ to avoid, or the masks lie on different grids."""
    if frame is None:
        raise InputError("organ labels lie in the labelmap's world (RAS mm): give the vertebra's patient frame "
                         "(--frame RAS or LPS, mm) so that it can be placed among them")
    frame = normalise_patient_frame(frame)
    path = Path(path)
    if not path.exists():
        raise InputError(f"organ labels not found: {path}")
    fat_file = Path(subcutaneous_fat) if subcutaneous_fat is not None else None
    if path.is_dir():
        data, affine, names = _folder_organs(path)
        if fat_file is None and any(path.glob(f"{FAT_MASK_NAME}.nii*")):
            fat_file = next(path.glob(f"{FAT_MASK_NAME}.nii*"))
        source = path.name
    else:
        labelmap = load_labelmap(path, scheme=scheme)
        data, affine, names, source = labelmap.data, labelmap.affine, labelmap.names, labelmap.source
    fat = None
    if fat_file is not None:
        image = read_nifti(fat_file)
        if not np.allclose(image.affine, affine, atol=1e-3):
            raise InputError(f"{fat_file.name} is not on the organ labels' voxel grid (its affine differs from "
                             f"{source}'s): give both from the same CT")
        fat = _integer_labels(image, fat_file) > 0
    if frame == LPS:
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    zones = OrganZones(data, affine, names, source, fat)
    if not zones.words:
        raise InputError(f"{source} holds no organ a needle must avoid (none of: aorta, inferior_vena_cava, "
                         "iliac_artery_*, iliac_vena_*, kidney_*, iliopsoas_*, colon, small_bowel, duodenum, "
                         "spinal_cord): give TotalSegmentator's 'total' labels")
    return zones


def _folder_organs(folder: Path) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """The organ masks of a folder combined into one label volume, its affine and label names."""
    data = affine = None
    names: dict[int, str] = {}
    for entry in sorted(folder.iterdir()):
        stem = nifti_stem(entry.name)
        if stem is None or organ_words(stem) is None:
            continue
        image = read_nifti(entry)
        mask = _integer_labels(image, entry) > 0
        if data is None:
            data, affine = np.zeros(mask.shape, np.int16), np.asarray(image.affine, float)
        elif mask.shape != data.shape or not np.allclose(image.affine, affine, atol=1e-3):
            raise InputError(f"{entry.name} is on a different voxel grid from the other masks in {folder}: "
                             "resample all masks to one grid first")
        value = len(names) + 1
        data[mask & (data == 0)] = value
        names[value] = stem
    if data is None:
        raise InputError(f"{folder} holds no organ masks: expected files like aorta.nii.gz, kidney_left.nii.gz or "
                         "iliopsoas_right.nii.gz (TotalSegmentator's segmentations/ folder)")
    return data, affine, names


def load_skin_ct(path: str | os.PathLike, frame: str | None = RAS) -> SkinSurface:
    """The skin from a CT (NIfTI, HU) of the scan the vertebra came from (SkinSurface.from_ct), its
    coordinates in patient ``frame`` (RAS or LPS, mm: the vertebra's)."""
    if frame is None:
        raise InputError("the CT lies in its world (RAS mm): give the vertebra's patient frame (--frame RAS or LPS, "
                         "mm) so that the skin can be placed around it")
    path = Path(path)
    image = read_nifti(path)
    hu = np.asanyarray(image.dataobj)
    if hu.ndim != 3:
        raise InputError(f"{path.name} has shape {hu.shape}: the CT must be a 3-D volume")
    affine = np.asarray(image.affine, float)
    if normalise_patient_frame(frame) == LPS:
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    return SkinSurface.from_ct(hu, affine, path.name)


def place_vertebra(zones: OrganZones, vertebra) -> None:
    """Refuse a vertebra (mm, the organs' frame) whose centre lies outside the organ labels' grid:
    it is not from the same scan, or its frame or units are wrong."""
    centre = np.asarray(vertebra.mesh.bounds, float).mean(axis=0)
    if not zones.on_grid(centre[None])[0]:
        raise InputError(f"the vertebra ({vertebra.source}) does not lie inside the organ labels' volume "
                         f"({zones.source}): give both from the same scan, the mesh in mm and in its patient frame")
