"""Command line:

    python -m harness repro OP --backend ours [--gemm-path blas] --case '<json>'   replay one row
    python -m harness repro OP --backend ours --error '<error input name>'
    python -m harness triage OLD.csv NEW.csv                                       exit 1 on regression
    python -m harness findings REPORT.csv                                          distinct failures, smallest repro each
    python -m harness summary [--strict] REPORT.csv                                exit 1 on a bad row (strict)

Reports are written by the pytest runs (`nox -s correctness`, `pytest tests/properties`).
A repro runs in this process (no isolation), so a crash shows its own backtrace and a debugger
can be attached; allocations are junk-filled as in a run.
"""

from __future__ import annotations

import argparse
import json
import sys


def _repro(args) -> int:
    from harness import report
    from harness.isolation import execute, junk_fill_allocations
    from harness.registry import REGISTRY
    spec = REGISTRY[args.op]
    junk_fill_allocations()
    if args.case is not None:
        request = ("case", args.op, args.backend, args.gemm_path, json.loads(args.case))
    else:
        names = [e.name for e in spec.errors]
        if args.error not in names:
            print(f"--error: expected one of {names}", file=sys.stderr)
            return 2
        request = ("error", args.op, args.backend, args.gemm_path, names.index(args.error))
    row = execute(request, {})
    df = report.frame([row])
    shown = {k: v for k, v in df.iloc[0].items() if v is not None and v == v and k != "case"}
    width = max(map(len, shown))
    for k, v in shown.items():
        print(f"{k:>{width}}  {v}")
    return 0 if row["status"] in ("pass", "unsupported") else 1


def _triage(args) -> int:
    from harness import report, triage
    t = triage.triage(report.read(args.old), report.read(args.new))
    print(t.render())
    return 1 if t.regressed else 0


def _summary(args) -> int:
    from harness import report
    df = report.read(args.report)
    print(report.summary(df))
    bad = df[df["status"].isin(report.BAD)]
    if args.strict and len(bad):
        print(f"{len(bad)} cases fail, crash or error; the first: {bad['repro'].iloc[0]}")
        return 1
    return 0


def _findings(args) -> int:
    from harness import report
    f = report.findings(report.read(args.report))
    for i, r in enumerate(f.itertuples(), 1):
        print(f"{i}. {r.op} [{r.kind}] {r.status} x{r.cases}: {r.finding}\n   e.g. {r.reason}\n"
              f"   {r.repro}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("repro", help="replay one case or error input in this process")
    r.add_argument("op")
    r.add_argument("--backend", default="ours")
    r.add_argument("--gemm-path", default="")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--case", help="the case description (JSON), as in a report's repro column")
    what.add_argument("--error", help="the name of an error input")
    r.set_defaults(fn=_repro)
    t = sub.add_parser("triage", help="compare two reports; exit 1 on a regression")
    t.add_argument("old")
    t.add_argument("new")
    t.set_defaults(fn=_triage)
    s = sub.add_parser("summary", help="the summary table of a report")
    s.add_argument("report")
    s.add_argument("--strict", action="store_true", help="exit 1 if any case fails, crashes or errors")
    s.set_defaults(fn=_summary)
    f = sub.add_parser("findings", help="a report's failing rows grouped into distinct findings")
    f.add_argument("report")
    f.set_defaults(fn=_findings)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
