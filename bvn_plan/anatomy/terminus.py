"""The basivertebral foramen and the BVN terminus on the mid-sagittal line of the body.

Works in the provisional vertebra frame (mm) of a :class:`~bvn_plan.anatomy.frame.LocalVertebra`
with the refined anterior axis: the mid-sagittal anterior-posterior line through the body crosses
the mesh at the posterior and anterior walls (exact crossings, :mod:`bvn_plan.geometry.crossings`);
the terminus lies between them at :class:`~bvn_plan.landmarks.TerminusParameters`' depth and
height fractions, the foramen on the posterior wall at mid-height between the endplates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AnatomyError
from ..geometry.crossings import interval_around
from ..landmarks import TerminusParameters
from .body import Body
from .frame import LocalVertebra


@dataclass
class TerminusFinding:
    """Vertebra frame, mm: the BVN ``terminus``, the basivertebral ``foramen``, the posterior and
    anterior body walls on the terminus's AP line (``wall_point``, ``front_point``) and ``mid_z``,
    the mid-height between the endplate planes at the terminus's depth."""

    terminus: np.ndarray
    foramen: np.ndarray
    wall_point: np.ndarray
    front_point: np.ndarray
    mid_z: float

    @property
    def body_depth_mm(self) -> float:
        """Mid-sagittal depth of the body on the terminus's AP line (mm)."""
        return float(np.linalg.norm(self.front_point - self.wall_point))


def find_terminus(vertebra: LocalVertebra, body: Body, anterior: np.ndarray, level: str,
                  terminus: TerminusParameters) -> TerminusFinding:
    """The terminus and foramen of the ``body``; ``anterior``: the refined anterior axis (unit,
    provisional frame). An S1 body with ``terminus.s1_body_centre`` takes the middle depth."""
    endplates = body.endplates

    def ap_span(y_at, z_at):
        """Posterior and anterior body-wall points on the mid-sagittal AP line through (0, y_at, z_at)."""
        origin = np.array([0.0, y_at, z_at])
        span = interval_around(vertebra.crossings(origin, anterior), 0.0)
        if span is None:
            raise AnatomyError("the mid-sagittal line through the body does not cross the body's surface twice")
        return origin + span[0] * anterior, origin + span[1] * anterior

    fraction = 0.5 if (level == "S1" and terminus.s1_body_centre) else terminus.depth_fraction
    y_c = body.centre[1]
    for _ in range(2):  # the endplates are tilted: place the height where the terminus lands
        z_inf, z_sup = endplates.z_at(y_c)
        p_wall, p_front = ap_span(y_c, z_inf + terminus.height_fraction * (z_sup - z_inf))
        term = p_wall + fraction * (p_front - p_wall)
        y_c = term[1]
    mid_z = float(np.mean(endplates.z_at(y_c)))
    foramen, _ = ap_span(y_c, mid_z)
    return TerminusFinding(term, foramen, p_wall, p_front, mid_z)
