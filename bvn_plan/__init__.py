"""bvn-plan: planning basivertebral nerve ablation on 3D vertebra anatomy.

A research and teaching aid, not a medical device. Units are millimetres and degrees throughout;
every coordinate output names its frame.

Layers, lowest first (a module imports only from its own layer or below; see the README's
Architecture section): the shared vocabulary at the top level (errors, coordinates, levels,
device, vertebra, landmarks, paths, lesion, mesh_io, imaging, atomic) and ``geometry``; then
``anatomy``; ``planning``; ``thermal``, ``synthetic`` and ``viz``; ``workflow``; ``cli``. Each
subpackage's ``__init__`` is its public face.

Lazy imports, the one written exception to imports at the top of a module: pyvista and VTK's
rendering, nibabel, click, matplotlib and dask are imported inside the functions that need them
(in ``viz``, ``workflow``, ``imaging``, ``geometry.meshing``, ``thermal`` and ``cli``), so that
``import bvn_plan`` stays light and works without a display (tests/test_architecture.py checks it).
"""

from ._version import __version__
from .anatomy import find_anatomy
from .coordinates import AnatomicalFrame
from .device import DeviceProfile
from .errors import AnatomyError, BvnPlanError, BvnPlanWarning, InputError, NoSafePlanError
from .landmarks import Landmarks, Pedicle, Plane, TerminusParameters
from .lesion import EllipsoidLesion
from .paths import InstrumentPath
from .planning import RuleSet, SafetyZones, check_path, plan_level
from .synthetic import synthesize
from .vertebra import Vertebra

__all__ = [
    "AnatomicalFrame", "AnatomyError", "BvnPlanError", "BvnPlanWarning", "DeviceProfile", "EllipsoidLesion",
    "InputError", "InstrumentPath", "Landmarks", "NoSafePlanError", "Pedicle", "Plane", "RuleSet",
    "SafetyZones", "TerminusParameters", "Vertebra", "__version__", "check_path", "find_anatomy",
    "plan_level", "synthesize",
]
