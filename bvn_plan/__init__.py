"""bvn-plan: planning basivertebral nerve ablation on 3D vertebra anatomy.

A research and teaching aid, not a medical device. Units are millimetres throughout.
"""

from .anatomy import find_anatomy
from .device import DeviceProfile
from .errors import AnatomyError, BvnPlanError, BvnPlanWarning, InputError, NoSafePlanError
from .coordinates import AnatomicalFrame
from .landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from .lesion import EllipsoidLesion
from .paths import InstrumentPath
from .planning.planner import plan_level
from .planning.safety import RuleSet, SafetyZones, check_path
from .synthetic import synthesize
from .vertebra import Vertebra

__version__ = "0.1.0"

__all__ = [
    "AnatomicalFrame", "AnatomyError", "BvnPlanError", "BvnPlanWarning", "DeviceProfile", "EllipsoidLesion",
    "InputError", "InstrumentPath", "Landmarks", "NoSafePlanError", "Pedicle", "Plane", "RuleSet",
    "SafetyZones", "TerminusParameters", "Vertebra", "__version__", "check_path", "find_anatomy",
    "plan_level", "synthesize",
]
