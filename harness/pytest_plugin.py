"""pytest integration: property tests per op on every backend target, and the run's report.

    test_causal_conv1d_update = property_test("causal_conv1d_update")
    test_causal_conv1d_update_errors = error_input_test("causal_conv1d_update")

(tests/properties/test_ops.py makes both for every op in the registry.)

Each becomes one test per target (backend and GEMM path: `[ours-brgemm]`), so `pytest -k
causal_conv1d_update` checks one kernel. Every case run adds a row; at the end of the run the rows
(gathered from xdist workers) go to reports/<run-id>.csv and a summary table is printed.

Options: --backend NAME (repeatable; env HARNESS_BACKENDS, comma-separated; default ours),
--harness-report PATH, --survey (record every case without stopping at the first failure: no
shrinking, for a full picture of a backend), --no-isolation (run cases in-process, e.g. under a
debugger). The run id comes from HARNESS_RUN_ID or the time.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import example, given, reject

from harness import backends, report
from harness.registry import REGISTRY
from harness.session import Session

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def pytest_addoption(parser):
    g = parser.getgroup("harness")
    g.addoption("--backend", action="append", default=None,
                help="backend the property tests run on (repeatable; default: $HARNESS_BACKENDS or ours)")
    g.addoption("--harness-report", default=None, help="report path (default reports/<run-id>.csv)")
    g.addoption("--survey", action="store_true",
                help="record every case, failing or not, without stopping or shrinking")
    g.addoption("--no-isolation", action="store_true", help="run cases in the pytest process")


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        config.harness_run_id = config.workerinput["harness_run_id"]
    else:
        config.harness_run_id = os.environ.get("HARNESS_RUN_ID") or time.strftime("run-%Y%m%d-%H%M%S")
    config.harness_rows = []


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):   # pytest-xdist: every worker writes into the same run
    node.workerinput["harness_run_id"] = node.config.harness_run_id


def _backend_names(config) -> list[str]:
    names = config.getoption("backend") or os.environ.get("HARNESS_BACKENDS", "ours").split(",")
    return [n.strip() for n in names if n.strip()]


@functools.lru_cache(maxsize=None)
def _backend(name: str) -> backends.Backend:
    return backends.make(name)  # one instance per backend name in this process


def pytest_generate_tests(metafunc):
    op = getattr(metafunc.function, "harness_op", None)
    if op is None or "target" not in metafunc.fixturenames:
        return
    targets = []
    for name in _backend_names(metafunc.config):
        targets += [(name, v) for v in _backend(name).variants(op, REGISTRY[op].gemm)]
    metafunc.parametrize("target", targets, ids=[f"{b}-{v}" if v else b for b, v in targets])


@pytest.fixture(scope="session")
def harness_session(request):
    s = Session(isolate=not request.config.getoption("no_isolation"),
                rows=request.config.harness_rows, survey=request.config.getoption("survey"))
    yield s
    s.close()


def _available(name: str) -> None:
    why = _backend(name).available()
    if why:
        pytest.skip(f"backend {name} unavailable: {why}")


def _check(row: dict, survey: bool) -> None:
    """Fail with the row's verdict. A plain AssertionError (not pytest.fail(pytrace=False)) keeps
    Hypothesis's notes -- the falsifying example -- in the report; the frame itself is hidden."""
    __tracebackhide__ = True
    if row["status"] in ("pass", "unsupported") or survey:
        return
    raise AssertionError(f"[{row['status']}] {row['reason']}\n  case: {row['case_id']}\n"
                         f"  repro: {row['repro']}")


def property_test(op: str):
    """A Hypothesis test over the op's cases, with each pinned hazard case as an @example."""
    spec = REGISTRY[op]

    @given(case=spec.cases)
    def inner(harness_session, target, case):
        row = harness_session.case(op, *target, case)
        if row["status"] == "unsupported":
            # Recorded with its reason. The nearest case the backend supports runs instead, so a
            # narrow backend is tested across the axes it has; if there is none, the draw is
            # rejected so that the example budget goes to cases the backend runs.
            near = _backend(target[0]).nearest(op, spec.complete(case))
            if near is None or near == case:
                reject()
            row = harness_session.case(op, *target, near)
            if row["status"] == "unsupported":
                reject()
        _check(row, harness_session.survey)

    for label, case in reversed(spec.examples):
        inner = example(case=case).via(label)(inner)

    def test(harness_session, target):
        _available(target[0])
        backend = _backend(target[0])
        # An op the backend does not implement, or a variant this machine cannot run: every case
        # would be unsupported, and a Hypothesis run whose every draw is rejected fails as
        # Unsatisfiable. The pinned cases record the reason in the report; the test is skipped.
        why = (backend.variant_unavailable(op, target[1])
               or (None if op in backend.OPS else f"{target[0]} does not implement {op}"))
        if why:
            for _, case in spec.examples:
                harness_session.case(op, *target, case)
            pytest.skip(f"{'-'.join(t for t in target if t)} unavailable: {why}")
        inner(harness_session, target)

    test.harness_op = op
    test.__name__ = test.__qualname__ = f"test_{op}"
    test.__doc__ = f"{op}: drawn cases and the pinned hazard cases against the float64 oracle."
    return test


SCHEMA_SAMPLE = 3   # pinned cases per op and target checked by opcheck (each costs a trace)


def schema_test(op: str):
    """torch.library.opcheck of the backend's op on the op's first pinned cases: rows of kind
    "schema" (harness.runner.run_schema)."""
    spec = REGISTRY[op]

    @pytest.mark.parametrize("label", [label for label, _ in spec.examples[:SCHEMA_SAMPLE]])
    def test(harness_session, target, label):
        _available(target[0])
        case = dict(spec.examples)[label]
        _check(harness_session.schema(op, *target, case), harness_session.survey)

    test.harness_op = op
    test.__name__ = test.__qualname__ = f"test_{op}_schema"
    test.__doc__ = f"{op}: the backend's schema, fake implementation and registrations (opcheck)."
    return test


def error_input_test(op: str):
    spec = REGISTRY[op]

    @pytest.mark.parametrize("index", range(len(spec.errors)), ids=[e.name for e in spec.errors])
    def test(harness_session, target, index):
        _available(target[0])
        _check(harness_session.error_input(op, *target, index), harness_session.survey)

    test.harness_op = op
    test.__name__ = test.__qualname__ = f"test_{op}_errors"
    test.__doc__ = f"{op}: invalid inputs raise an error naming the argument."
    return test


def pytest_sessionfinish(session):
    config = session.config
    rows = config.harness_rows
    parts = REPORTS / ".parts" / config.harness_run_id
    if hasattr(config, "workerinput"):
        if rows:
            parts.mkdir(parents=True, exist_ok=True)
            with open(parts / f"{config.workerinput['workerid']}.jsonl", "w") as f:
                f.writelines(json.dumps(r, default=str) + "\n" for r in rows)
        return
    if parts.exists():
        for p in sorted(parts.glob("*.jsonl")):
            rows += [json.loads(line) for line in p.read_text().splitlines()]
            p.unlink()
        parts.rmdir()
    if rows:
        path = Path(config.getoption("harness_report") or REPORTS / f"{config.harness_run_id}.csv")
        config.harness_summary = (path, report.summary(report.write(rows, path)))


def pytest_terminal_summary(terminalreporter, config):
    if getattr(config, "harness_summary", None):
        path, text = config.harness_summary
        terminalreporter.section("harness report")
        terminalreporter.write_line(text)
        terminalreporter.write_line(f"report: {path}")
