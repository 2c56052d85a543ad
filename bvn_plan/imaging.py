"""NIfTI images: reading them with clear errors, and CT numbers at world points (RAS+ mm).

nibabel is imported inside the functions that need it, so that ``import bvn_plan`` stays free of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def nifti_stem(filename: str) -> str | None:
    """``filename`` without its .nii / .nii.gz suffix; ``None`` if it has neither."""
    for suffix in NIFTI_SUFFIXES:
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def read_nifti(path: Path):
    """The NIfTI image at ``path`` (nibabel, data not yet loaded); InputError if it is missing,
    not named .nii / .nii.gz, or cannot be read as NIfTI."""
    import nibabel as nib  # here, not at the top: keeps nibabel out of `import bvn_plan`

    if not path.exists():
        raise InputError(f"NIfTI file not found: {path}")
    if nifti_stem(path.name) is None:
        raise InputError(f"{path.name} is not a NIfTI file: expected .nii or .nii.gz")
    try:
        image = nib.load(str(path))
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(f"{path.name} is not a NIfTI image")
    except InputError:
        raise
    except Exception as exc:  # nibabel raises several types on corrupt files
        raise InputError(f"cannot read {path.name} as NIfTI: {exc}. Is the file complete?") from exc
    return image


def sample_ct(ct_image, points_ras_mm: np.ndarray) -> np.ndarray:
    """CT values (HU) at world points (RAS+ mm, shape (..., 3)) by trilinear interpolation.

    ``ct_image``: a nibabel image or a NIfTI path. Points outside the grid of voxel centres
    give NaN.
    """
    import nibabel as nib

    image = read_nifti(Path(ct_image)) if isinstance(ct_image, (str, os.PathLike)) else ct_image
    if not isinstance(image, nib.spatialimages.SpatialImage):
        raise InputError(f"sample_ct needs a NIfTI path or a nibabel image, not {type(ct_image).__name__}")
    points = np.asarray(points_ras_mm, dtype=float)
    if points.shape[-1:] != (3,):
        raise InputError(f"points must have shape (..., 3) in RAS mm, got {points.shape}")
    volume = np.asanyarray(image.dataobj, dtype=np.float32)
    if volume.ndim != 3:
        raise InputError(f"the CT must be a 3-D volume, got shape {volume.shape}")
    inverse = np.linalg.inv(image.affine)
    ijk = points.reshape(-1, 3) @ inverse[:3, :3].T + inverse[:3, 3]
    values = ndi.map_coordinates(volume, ijk.T, order=1, mode="constant", cval=np.nan)
    return values.reshape(points.shape[:-1])
