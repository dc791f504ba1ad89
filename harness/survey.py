"""The survey matrix: how every surveyed implementation does on the same cases, under the same
policy. One row per op and backend: cases per status, the worst score among the cases that ran,
and the distinct findings among its bad rows (with a findings document, the findings its rows
belong to, and how many rows none explains; without one, the groups `report.findings` makes).
A backend that could not run is one row with the reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import known, report

COLUMNS = ["op", "backend", *report.STATUSES, "worst_score", "findings", "unclassified", "note"]


def matrix(reports: list[pd.DataFrame], documents: dict[str, str] | None = None,
           unavailable: dict[str, str] | None = None) -> pd.DataFrame:
    """`reports`: survey reports (any backends); `documents`: backend -> its findings document;
    `unavailable`: backend -> why it did not run."""
    missing = {b: d for b, d in (documents or {}).items() if not Path(d).exists()}
    documents = {b: d for b, d in (documents or {}).items() if b not in missing}
    df = pd.concat(reports, ignore_index=True) if reports else pd.DataFrame(columns=["op", "backend"])
    rows = []
    for backend, part in df.groupby("backend", sort=False):
        labels = (known.classify(part, known.load(documents[backend]))
                  if backend in documents else None)
        for op, rows_op in part.groupby("op"):
            counts = rows_op["status"].value_counts()
            if (not rows_op["status"].isin(["pass", *report.BAD]).any() and
                    rows_op["reason"].fillna("").str.startswith(f"{backend} does not implement").any()):
                continue                    # an op the backend lacks: no row (the docs list them)
            bad = rows_op[rows_op["status"].isin(report.BAD)]
            ran = rows_op[rows_op["kind"] == "case"]["score"]
            if labels is not None:
                ids = labels.reindex(bad.index)
                distinct, unexplained = sorted(set(ids[ids != ""])), int((ids == "").sum())
                found = ", ".join(distinct)
            else:
                found, unexplained = str(len(report.findings(bad))) if len(bad) else "", len(bad)
            rows.append({"op": op, "backend": backend,
                         **{s: int(counts.get(s, 0)) for s in report.STATUSES},
                         "worst_score": ran.max() if ran.notna().any() else float("nan"),
                         "findings": found, "unclassified": unexplained,
                         "note": "" if backend in documents or not len(bad)
                         else f"findings document {missing[backend]} is missing: every bad row "
                              f"counts as unclassified" if backend in missing
                         else "no findings document: every bad row counts as unclassified"})
    for backend, why in (unavailable or {}).items():
        rows.append({"op": "*", "backend": backend, "note": f"unavailable: {why}"})
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({s: "Int64" for s in (*report.STATUSES, "unclassified")})


def render(table: pd.DataFrame) -> str:
    """The matrix as text: a line per op and backend, then the backends that did not run."""
    ran = table[table["op"] != "*"].sort_values(["op", "backend"])
    shown = ran.assign(worst_score=ran["worst_score"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
                       findings=ran["findings"].str.slice(0, 40)).drop(columns="note")
    lines = [shown.to_string(index=False)]
    lines += [f"{r.backend}: {r.note}" for r in table[table["op"] == "*"].itertuples()]
    lines += [f"{b}: {n}" for b, n in ran[ran["note"] != ""].groupby("backend")["note"].first().items()]
    return "\n".join(lines)


def markdown(table: pd.DataFrame) -> str:
    """The matrix as a Markdown table (docs/survey.md)."""
    head = ["op", "backend", "pass / fail / crash / error / unsupported", "worst score", "findings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        if r["op"] == "*":
            lines.append(f"| (all) | {r['backend']} | {r['note']} | | |")
            continue
        counts = " / ".join(str(int(r[s])) for s in report.STATUSES)
        score = "" if pd.isna(r["worst_score"]) else f"{float(r['worst_score']):.3g}"
        found = r["findings"] + (f" (+{int(r['unclassified'])} unclassified)" if r["unclassified"] else "")
        lines.append(f"| {r['op']} | {r['backend']} | {counts} | {score} | {found} |")
    return "\n".join(lines)
