"""CSV reports: one row per case, columns in a fixed order, rows sorted, so that the same cases give
the same file apart from the timing columns. Lists in case axes are written as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

STATUSES = ["pass", "fail", "crash", "error", "unsupported"]
BAD = ["fail", "crash", "error"]
KEY = ["op", "backend", "gemm_path", "kind", "case_id"]
LEAD = [*KEY, "status", "reason", "score", "expected_arg", "message"]
TAIL = ["seed", "backend_info", "moved_to", "case", "repro"]
TIMING = ["elapsed_s"]
METRIC_SUFFIXES = ("numel", "max_abs", "max_rel", "rel_rms", "max_ulp", "scale", "nan", "inf",
                   "class_mismatch", "base_max_abs", "base_max_ulp", "base_rel_rms", "accumulation",
                   "accumulation_rel", "tol", "rms_tol", "score", "bias", "bias_mag", "base_bias",
                   "base_bias_mag", "base_bias_rms", "bias_n", "bias_tol", "cond", "beta_k2")


def _is_metric(col: str) -> bool:
    return any(col.endswith("_" + s) for s in METRIC_SUFFIXES)


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows with their case axes spread into columns, deduplicated (a case Hypothesis replays keeps
    its last row) and sorted."""
    flat = []
    for r in rows:
        axes = json.loads(r["case"]) if r.get("case") else {}
        flat.append({**{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in axes.items()}, **r})
    df = pd.DataFrame(flat)
    for col in LEAD + TAIL + TIMING:
        if col not in df:
            df[col] = None
    metrics = sorted(c for c in df.columns if _is_metric(c) and c not in LEAD)
    axes = sorted(c for c in df.columns if c not in set(LEAD + TAIL + TIMING + metrics))
    df = df[LEAD + axes + metrics + TAIL + TIMING]
    df = df.drop_duplicates(subset=KEY, keep="last")
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


def write(rows: list[dict], path: str | Path) -> pd.DataFrame:
    df = frame(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def read(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False,
                       dtype={"gemm_path": str, "case_id": str, "reason": str})


def summary(df: pd.DataFrame) -> str:
    """Per op, backend and GEMM path: how many cases of each status, and the worst score
    (error / tolerance; above 1 fails)."""
    df = df.assign(gemm_path=df["gemm_path"].fillna(""))
    counts = (df.pivot_table(index=["op", "backend", "gemm_path"], columns="status", values="case_id",
                             aggfunc="count", fill_value=0))
    counts = counts.reindex(columns=STATUSES, fill_value=0)
    counts["worst_score"] = df.groupby(["op", "backend", "gemm_path"])["score"].max()
    return counts.to_string(float_format=lambda v: f"{v:.3g}")


def findings(df: pd.DataFrame) -> pd.DataFrame:
    """Failing rows grouped into distinct findings: same op, kind, status and reason once numbers
    are blanked out. Each finding keeps its count and the repro of its smallest case (shortest
    case description, then fewest elements), the one to start from."""
    bad = df[df["status"].isin(BAD)].copy()
    if bad.empty:
        return bad
    bad["finding"] = (bad["reason"].fillna("").str.replace(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", regex=True)
                      .str.replace(r"\[[#, ]*\]", "[…]", regex=True))
    bad["size"] = bad["case"].fillna("").str.len()
    keys = ["op", "kind", "status", "finding"]
    bad = bad.sort_values([*keys, "size", "case_id"])
    first = bad.groupby(keys, sort=True).head(1).set_index(keys)
    first["cases"] = bad.groupby(keys).size()
    return first.reset_index()[[*keys, "cases", "case_id", "reason", "repro"]]
