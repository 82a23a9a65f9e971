"""One module per step of an execution: eligibility, quota, create, wait, copy.

Each step works on one instance record (or a batch of them) and raises ``Skip`` or ``Fail``
to end that instance's work with a reason; the runner records and reports it.
"""


class StepOutcome(Exception):
    """Ends an instance's work in this execution, with a reason for the summary and log."""

    status = ""

    def __init__(self, reason: str, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.request_id = request_id


class Skip(StepOutcome):
    status = "skipped"


class Fail(StepOutcome):
    status = "failed"
