"""A run: cases go to a backend (isolated in a child process by default), rows are collected."""

from __future__ import annotations

import re

from harness import runner
from harness.isolation import Isolated, execute
from harness.registry import REGISTRY


class Session:
    def __init__(self, isolate: bool = True, rows: list | None = None, survey: bool = False,
                 threads: int | None = None):
        self.isolated = Isolated() if isolate else None
        self._backends: dict = {}
        self.rows: list[dict] = [] if rows is None else rows
        self.survey = survey    # record failures without failing the test
        self.threads = threads  # torch's thread count in the worker (None: its default)

    def _run(self, request: tuple, case: dict, kind: str, ident: str | None = None) -> dict:
        row = self.isolated.run(request) if self.isolated else execute(request, self._backends)
        if self.isolated and str(row.get("reason", "")).startswith("harness:"):
            # The harness itself failed in the worker: most likely an earlier case corrupted the
            # worker's memory without crashing it. Retry once in a fresh worker.
            self.isolated.close()
            row = self.isolated.run(request)
        if row.get("status") == "crash" or "op" not in row:   # the child died: identify the case here
            _, op, backend, variant, _, _ = request
            extra = {"error_name": ident} if kind == "error" else {}
            row = runner.make_row(REGISTRY[op], backend, variant, case, kind, **extra,
                                  status=row["status"], reason=row["reason"])
        if row["status"] == "fail" and self.isolated and _may_have_corrupted(row["reason"]):
            # A kernel that wrote outside what it may write, accepted a bad index or left garbage
            # may also have written out of bounds: a fresh worker keeps that from leaking into the
            # next case. A failure that is only an error size does not need one (a restart costs
            # seconds: importing torch).
            self.isolated.close()
        self.rows.append(row)
        return row

    def case(self, op: str, backend: str, variant: str, case: dict) -> dict:
        return self._run(("case", op, backend, variant, case, self.threads), case, "case")

    def schema(self, op: str, backend: str, variant: str, case: dict) -> dict:
        """torch.library.opcheck of the backend's op on this case: a row of kind "schema"."""
        return self._run(("schema", op, backend, variant, case, self.threads), case, "schema")

    def error_input(self, op: str, backend: str, variant: str, index: int) -> dict:
        err = REGISTRY[op].errors[index]
        return self._run(("error", op, backend, variant, index, self.threads), err.case, "error",
                         err.name)

    def close(self) -> None:
        if self.isolated:
            self.isolated.close()


# Failure reasons that say only how far the results are from the oracle (harness/policy.py).
_ACCURACY = re.compile(r"\w+: (max error |relative RMS error |\d+/\d+ elements differ from the exact)")


def _may_have_corrupted(reason: str) -> bool:
    return any(not _ACCURACY.match(p) for p in str(reason).split("; "))
