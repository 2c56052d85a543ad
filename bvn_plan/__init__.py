"""bvn-plan: planning basivertebral nerve ablation on 3D vertebra anatomy.

A research and teaching aid, not a medical device. Units are millimetres throughout.
"""

from .errors import AnatomyError, BvnPlanError, InputError, NoSafePlanError
from .frames import AnatomicalFrame
from .landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from .mesh_io import BvnPlanWarning
from .vertebra import Vertebra

__version__ = "0.1.0"

__all__ = [
    "AnatomicalFrame", "AnatomyError", "BvnPlanError", "BvnPlanWarning", "InputError", "Landmarks",
    "NoSafePlanError", "Pedicle", "Plane", "TerminusParameters", "Vertebra", "__version__",
]
