"""Compare two reports of the same cases: what regressed, what improved, what is in only one.

Cases are matched on (op, backend, gemm_path, kind, case_id). A regression is
- a new failure: a case that passed (or was unsupported) now fails, crashes or errors;
- error growth: a case passing in both whose score (worst error / tolerance over its results)
  grew more than GROWTH times, to at least NOISE_SCORE. Scores below that are rounding noise: a
  tenth of the tolerance is a handful of fp32 ulps, and a kernel change that reorders a sum moves
  those freely.
Improvements (fixed cases, scores shrunk GROWTH times) and cases present in only one report are
listed but do not fail the triage; changed statuses among failures (fail → crash) are listed as
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.report import BAD, KEY

GROWTH = 2.0
NOISE_SCORE = 0.1


@dataclass
class Triage:
    new_failures: pd.DataFrame
    grown: pd.DataFrame
    changed: pd.DataFrame
    fixed: pd.DataFrame
    improved: pd.DataFrame
    only_old: pd.DataFrame
    only_new: pd.DataFrame

    @property
    def regressed(self) -> bool:
        return bool(len(self.new_failures) or len(self.grown))

    def render(self) -> str:
        parts = []
        cols = [*KEY[:2], "gemm_path", "case_id", "status_old", "status_new", "score_old",
                "score_new", "reason_new", "repro_new"]
        for title, df in (("NEW FAILURES", self.new_failures),
                          (f"ERROR GROWTH (score × >{GROWTH:g}, to ≥ {NOISE_SCORE:g})", self.grown),
                          ("STATUS CHANGED AMONG FAILURES", self.changed), ("FIXED", self.fixed),
                          (f"IMPROVED (score ÷ >{GROWTH:g})", self.improved)):
            parts.append(f"{title}: {len(df)}")
            if len(df):
                parts.append(df[[c for c in cols if c in df]].to_string(index=False))
        for title, df in (("ONLY IN OLD", self.only_old), ("ONLY IN NEW", self.only_new)):
            parts.append(f"{title}: {len(df)}")
            if len(df):
                parts.append(df[[c for c in [*KEY, "status"] if c in df]].to_string(index=False))
        parts.append("REGRESSED" if self.regressed else "no regression")
        return "\n".join(parts)


def triage(old: pd.DataFrame, new: pd.DataFrame) -> Triage:
    def prepare(df):
        df = df[[*KEY, "status", "score", "reason", "repro"]].copy()
        df["gemm_path"] = df["gemm_path"].fillna("")
        df["score"] = pd.to_numeric(df["score"], errors="coerce").fillna(0.0)
        return df
    both = prepare(old).merge(prepare(new), on=KEY, how="outer", suffixes=("_old", "_new"),
                              indicator=True)
    only_old = both[both["_merge"] == "left_only"].rename(columns={"status_old": "status"})
    only_new = both[both["_merge"] == "right_only"].rename(columns={"status_new": "status"})
    m = both[both["_merge"] == "both"]
    bad_old, bad_new = m["status_old"].isin(BAD), m["status_new"].isin(BAD)
    passing = (m["status_old"] == "pass") & (m["status_new"] == "pass")
    return Triage(
        new_failures=m[bad_new & ~bad_old],
        grown=m[passing & (m["score_new"] > GROWTH * m["score_old"]) & (m["score_new"] >= NOISE_SCORE)],
        changed=m[bad_new & bad_old & (m["status_old"] != m["status_new"])],
        fixed=m[bad_old & ~bad_new],
        improved=m[passing & (m["score_old"] > GROWTH * m["score_new"]) & (m["score_old"] >= NOISE_SCORE)],
        only_old=only_old, only_new=only_new)
