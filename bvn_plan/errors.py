"""Typed errors and the package's warning. Each error says what was wrong and what to do; the CLI
maps them to exit codes. A warning says what was assumed or repaired."""

import warnings


class BvnPlanError(Exception):
    """Base class of every error bvn-plan raises on purpose."""

    exit_code = 1


class InputError(BvnPlanError):
    """The input (file, mesh, parameter, level name) is unusable as given."""

    exit_code = 2


class LevelMismatchError(InputError):
    """The vertebra's shape fits another level grossly better than its label (bad input: exit 2)."""


class AnatomyError(BvnPlanError):
    """The anatomy could not be understood well enough to plan on; planning must refuse."""

    exit_code = 3


class NoSafePlanError(BvnPlanError):
    """The anatomy was understood but no trajectory satisfies the safety rules."""

    exit_code = 4


class BvnPlanWarning(UserWarning):
    """Something was assumed or repaired; the result is usable but the user should know."""


def note(report_notes: list[str], message: str) -> None:
    """Record ``message`` and raise it as a :class:`BvnPlanWarning`."""
    report_notes.append(message)
    warnings.warn(message, BvnPlanWarning, stacklevel=3)
