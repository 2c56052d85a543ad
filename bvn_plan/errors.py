"""Typed errors. Each says what was wrong and what to do; the CLI maps them to exit codes."""


class BvnPlanError(Exception):
    """Base class of every error bvn-plan raises on purpose."""

    exit_code = 1


class InputError(BvnPlanError):
    """The input (file, mesh, parameter, level name) is unusable as given."""

    exit_code = 2


class AnatomyError(BvnPlanError):
    """The anatomy could not be understood well enough to plan on; planning must refuse."""

    exit_code = 3


class NoSafePlanError(BvnPlanError):
    """The anatomy was understood but no trajectory satisfies the safety rules."""

    exit_code = 4
