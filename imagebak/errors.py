"""Exit codes and the user-facing error type.

Every failure a user can cause (bad YAML, bad state file, bad CLI arguments, a vendor
refusing a call) surfaces as an ``ImagebakError`` with a one-line message and one of the
documented exit codes below, never as a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    PARTIAL_FAILURE = 1  # some instances failed, others succeeded
    USAGE = 2  # bad command-line arguments (Click's own code)
    CONFIG = 3  # policies.yaml missing or invalid
    STATE = 4  # state file corrupt, foreign or unwritable
    LOCKED = 5  # another imagebak run holds the lock
    TOTAL_FAILURE = 6  # every instance that was attempted failed
    QUOTA = 7  # nothing failed, but some instances were skipped for lack of quota
    CLOUD = 8  # a cloud or emulator could not be reached or refused a call outside any run
    TOO_SOON = 9  # a manual run was refused: the policy ran less than 12 hours ago (--force overrides)
    NO_DR_COPY = 10  # images made, but a DR copy is impossible (encrypted image, or above the copy size limit)
    IN_FLIGHT = 11  # --deadline passed with nothing failed: work is still in flight; the next run goes on
    ACCOUNT = 12  # an account could not be used (credentials, SDK, account removed): its policies did not run
    STALLED = 13  # an execution made no progress for a whole interval: nothing is being backed up


class ImagebakError(Exception):
    """An error with a one-line message for the user and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.CONFIG

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(ImagebakError):
    exit_code = ExitCode.CONFIG


class StateError(ImagebakError):
    exit_code = ExitCode.STATE
