"""How a measure becomes a confidence in 0..1, and below which confidence a finding is refused."""

from __future__ import annotations

import numpy as np

#: Findings with a confidence below this make find_anatomy refuse (AnatomyError) [A].
REFUSE_BELOW = 0.25


def ramp(value: float, good: float, bad: float) -> float:
    """1 at or below ``good``, 0 at or above ``bad``, linear between."""
    return float(np.clip((bad - value) / (bad - good), 0.0, 1.0))
