"""Command line:

    python -m harness repro OP --backend ours [--gemm-path blas] --case '<json>'   replay one row
    python -m harness repro OP --backend ours --error '<error input name>'
    python -m harness repro ... --isolated                                         in a worker: a crash is a row
    python -m harness triage OLD.csv NEW.csv                                       exit 1 on regression
    python -m harness findings REPORT.csv                                          distinct failures, smallest repro each
    python -m harness findings REPORT.csv --known docs/vllm-findings.md            rows labelled by known finding
    python -m harness check-repros docs/vllm-findings.md                           every repro gives its status
    python -m harness summary [--strict] REPORT.csv                                exit 1 on a bad row (strict)
    python -m harness html REPORT.csv [--baseline OLD.csv] [--out PAGE.html]      the report as a page with plots
    python -m harness accuracy [--max-tokens N] [--max-steps N]                    error-growth curves (CSV + page)
    python -m harness fuzz [--backend B] [--calls N] [--seed S] [--op OP ...]      corrupted calls, guarded (harness/fuzz.py)

Reports are written by the pytest runs (`nox -s correctness`, `pytest tests/properties`).
A repro runs in this process by default (no isolation), so a crash shows its own backtrace and a
debugger can be attached; allocations are junk-filled as in a run. With --isolated it runs in a
worker process like a test run, so a crash is printed as a `crash` row and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys


def repro_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The repro command's arguments (also parsed back from the repro lines of findings documents)."""
    r = argparse.ArgumentParser(prog="python -m harness repro", add_help=add_help)
    r.add_argument("op")
    r.add_argument("--backend", default="ours")
    r.add_argument("--gemm-path", default="")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--case", help="the case description (JSON), as in a report's repro column")
    what.add_argument("--error", help="the name of an error input")
    r.add_argument("--kind", default="case", choices=["case", "schema"],
                   help="with --case: the drawn-case checks (case) or torch.library.opcheck (schema)")
    r.add_argument("--threads", type=int, default=None,
                   help="torch's intra-op thread count for the run (a row records its own)")
    r.add_argument("--isolated", action="store_true",
                   help="run in a worker process as a test run does: a crash becomes a crash row")
    return r


def request_of(args) -> tuple:
    """The session request ("case"/"error", op, backend, variant, payload) of parsed repro args."""
    if args.case is not None:
        return args.kind, args.op, args.backend, args.gemm_path, json.loads(args.case), args.threads
    return "error", args.op, args.backend, args.gemm_path, args.error, args.threads


def _run_request(request: tuple, isolated: bool) -> dict:
    """The row of one request ("case"/"error", op, backend, variant, case or error-input name)."""
    from harness.isolation import execute, junk_fill_allocations
    from harness.registry import REGISTRY
    from harness.session import Session
    kind, op, backend, variant, payload, threads = request
    if kind == "error":
        names = [e.name for e in REGISTRY[op].errors]
        if payload not in names:
            raise SystemExit(f"--error: expected one of {names}")
        request = (kind, op, backend, variant, names.index(payload), threads)
    if isolated:
        session = Session(isolate=True, threads=threads)
        run = {"case": session.case, "schema": session.schema, "error": session.error_input}[kind]
        row = run(*request[1:5])
        session.close()
        return row
    junk_fill_allocations()
    return execute(request, {})


def _repro(args) -> int:
    from harness import report
    row = _run_request(request_of(args), args.isolated)
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


def _print_findings(f) -> None:
    for i, r in enumerate(f.itertuples(), 1):
        print(f"{i}. {r.op} [{r.kind}] {r.status} x{r.cases}: {r.finding}\n   e.g. {r.reason}\n"
              f"   {r.repro}")


def _findings(args) -> int:
    from harness import known, report
    df = report.read(args.report)
    if not args.known:
        _print_findings(report.findings(df))
        return 0
    listed = known.load(args.known)
    label = known.classify(df, listed)
    print(f"{len(label)} failing, crashing or erroring rows in {args.report}; "
          f"known findings from {args.known}:")
    for f in listed:
        n = int((label == f.id).sum())
        print(f"  {f.id:>4}  {f.cls:<19} {n:>4} rows  {f.title}{'' if n else '  (not seen in this report)'}")
    rest = df.loc[label[label == ""].index]
    print(f"unclassified: {len(rest)} rows")
    _print_findings(report.findings(rest))
    return 1 if args.strict and len(rest) else 0


def _check_repros(args) -> int:
    from harness import known
    failed = 0
    for f in known.load(args.document):
        for command, status, fragment in f.repros:
            row = _run_request(known.repro_request(command), isolated=True)
            ok = row["status"] in status.split("|") and (row["status"] == "crash"
                                                         or fragment in str(row.get("reason", "")))
            failed += not ok
            print(f"{'ok' if ok else 'MISMATCH':>8}  {f.id:>4}  expected {status}"
                  f"{': ' + fragment if fragment else ''}; got {row['status']}: "
                  f"{str(row.get('reason', ''))[:120]}")
    return 1 if failed else 0


def _html(args) -> int:
    from harness import html
    print(f"page: {html.write(args.report, args.out, args.baseline)}")
    return 0


def _matrix(args) -> int:
    from harness import backends, report, survey
    documents = dict(pair.split("=", 1) for pair in args.known)
    unavailable = {name: backends.make(name).available() or "?" for name in args.unavailable}
    table = survey.matrix([report.read(r) for r in args.reports], documents, unavailable)
    print(survey.render(table))
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"matrix: {args.out}")
    if args.markdown:
        print(survey.markdown(table))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["accuracy"]:           # its own options (harness/accuracy.py)
        from harness import accuracy
        return accuracy.main(argv[1:])
    if argv[:1] == ["fuzz"]:               # its own options (harness/fuzz.py)
        from harness import fuzz
        return fuzz.main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("repro", parents=[repro_parser(add_help=False)],
                       help="replay one case or error input (in this process unless --isolated)")
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
    f.add_argument("--known", help="a findings document: label each row with its known finding")
    f.add_argument("--strict", action="store_true", help="exit 1 if a row matches no known finding")
    f.set_defaults(fn=_findings)
    c = sub.add_parser("check-repros", help="run every repro of a findings document (isolated); "
                                            "exit 1 unless each gives its expected status")
    c.add_argument("document")
    c.set_defaults(fn=_check_repros)
    h = sub.add_parser("html", help="the report as one self-contained HTML page with plots")
    h.add_argument("report")
    h.add_argument("--baseline", help="an older report to compare with (triage, score scatter)")
    h.add_argument("--out", help="the page's path (default: the report's, with .html)")
    h.set_defaults(fn=_html)
    m = sub.add_parser("matrix", help="op x backend over survey reports: cases per status, worst "
                                      "score, distinct findings")
    m.add_argument("reports", nargs="*")
    m.add_argument("--known", action="append", default=[], metavar="BACKEND=DOC",
                   help="a backend's findings document (repeatable)")
    m.add_argument("--unavailable", action="append", default=[], metavar="BACKEND",
                   help="a backend that did not run: listed with its reason (repeatable)")
    m.add_argument("--out", help="write the matrix as CSV here")
    m.add_argument("--markdown", action="store_true", help="print it as a Markdown table too")
    m.set_defaults(fn=_matrix)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
