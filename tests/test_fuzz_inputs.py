"""Property-based fuzzing of the two files imagebak reads (issue #12): never exit 70, never a traceback.

The strategies and the checks are in ``fuzzing.py``; ``reliability/fuzz_inputs.py`` runs the same
checks on thousands of inputs and prints counts. Bounded here so the suite stays fast.
"""

from __future__ import annotations

from fuzzing import check_policy_file, check_state_file, policy_files, state_files
from hypothesis import HealthCheck, given, settings

FAST = settings(max_examples=200, deadline=4000, suppress_health_check=[HealthCheck.too_slow], database=None)


@FAST
@given(policy_files())
def test_mutated_policy_files_validate_or_are_diagnostics(data: bytes):
    outcome = check_policy_file(data)
    assert outcome.ok(), outcome.problems


@settings(FAST, max_examples=150)
@given(state_files())
def test_mutated_state_files_are_read_or_refused_and_never_rewritten(data: bytes):
    outcome = check_state_file(data)
    assert outcome.ok(), outcome.problems
