"""A report as one self-contained HTML page: what a kernel engineer looks at instead of the CSV.

    python -m harness html reports/<run>.csv [--baseline reports/baseline.csv] [--out page.html]

The page, top to bottom: the summary matrix (op × backend and GEMM path: cases per status, worst
score), coloured; after a survey of several backends, the backend matrix; against a baseline, what
moved (new failures, error growth, fixes) with an old-vs-new score scatter; every failing row with
its reason and a copyable repro; per op, the distribution of scores and the error against case
size on log axes, the backend's beside the same-precision baseline's. Plots are matplotlib figures
embedded as PNG data; the page loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import report, triage

STATUS_COLOURS = {"pass": "#cdeccd", "fail": "#f7b6b2", "crash": "#e06666", "error": "#f3d28b",
                  "unsupported": "#dddddd"}
POINT_COLOURS = {**STATUS_COLOURS, "pass": "#3a9a3a"}     # a table's pale green is lost as a dot
DTYPE_COLOURS = {"bf16": "#1f77b4", "fp16": "#ff7f0e", "fp32": "#2ca02c"}
PATH_MARKERS = {"": "o", "brgemm": "o", "blas": "s", "brgemm_bf16": "^"}


# --- what a row's size and error are, per op -----------------------------------------------------

def _tokens(row) -> float:
    lengths = row.get("lengths")
    if isinstance(lengths, str) and lengths.startswith("["):
        return float(sum(json.loads(lengths)))
    return float("nan")


# op -> (the axis a reader thinks of as the case's size, how to get it from a row)
SIZES = {
    "fused_gdn_gating": ("tokens T", lambda r: r.get("T")),
    "fused_sigmoid_gating_delta_rule_update": ("rows B", lambda r: r.get("B")),
    "fused_sigmoid_gating_delta_rule_update_spec": ("draft tokens", _tokens),
    "chunk_gated_delta_rule": ("tokens", _tokens),
    "causal_conv1d_weight_pack": ("channels D", lambda r: r.get("D")),
    "causal_conv1d_fwd": ("tokens × channels", lambda r: _tokens(r) * r.get("D", np.nan)),
    "causal_conv1d_update": ("rows × channels", lambda r: r.get("B", np.nan) * r.get("D", np.nan)),
}


def _main_result(df: pd.DataFrame) -> str | None:
    """The result whose error a plot shows: `out` when the op has one, else its first judged one."""
    judged = [c[:-len("_rel_rms")] for c in df.columns
              if c.endswith("_rel_rms") and not c.endswith("_base_rel_rms") and df[c].notna().any()]
    return "out" if "out" in judged else (judged[0] if judged else None)


# --- plots ---------------------------------------------------------------------------------------

def figure(width=6.4, height=3.6):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width, height), dpi=90)


def png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _target(df: pd.DataFrame) -> pd.Series:
    path = df["gemm_path"].fillna("")
    return df["backend"] + np.where(path != "", "-" + path, "")


def score_plot(df: pd.DataFrame, op: str) -> str:
    """How close to its tolerance each case came (score = error / tolerance; above 1 fails)."""
    rows = df[(df["op"] == op) & (df["kind"] == "case") & df["score"].notna()]
    if rows.empty:
        return ""
    fig, ax = figure()
    bins = np.logspace(-4, 2, 37)
    for target, part in rows.groupby(_target(rows)):
        ax.hist(part["score"].clip(1e-4, 1e2), bins=bins, histtype="step", linewidth=1.5, label=target)
    ax.axvline(1.0, color="red", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlabel="score (error / tolerance; > 1 fails)", ylabel="cases",
           title=f"{op}: scores")
    ax.legend(fontsize=7)
    return png(fig)


def error_plot(df: pd.DataFrame, op: str) -> str:
    """Relative RMS error of the main result against case size, per dtype (colour) and GEMM path
    (marker): filled, the backend; hollow, the same-precision baseline on the same case."""
    rows = df[(df["op"] == op) & (df["kind"] == "case") & (df["status"].isin(["pass", "fail"]))]
    result = _main_result(rows)
    if rows.empty or result is None:
        return ""
    if not (rows[f"{result}_max_abs"].astype(float) > 0).any():
        return ""                   # exact everywhere (a permutation, a copy): nothing to plot
    label, size = SIZES.get(op, ("elements", lambda r: r.get(f"{result}_numel")))
    sizes = rows.apply(lambda r: size(r.to_dict()), axis=1).astype(float)
    err, base = rows[f"{result}_rel_rms"].astype(float), rows[f"{result}_base_rel_rms"].astype(float)
    floor = 1e-12        # exact results (0 error) drawn at the bottom of the axis
    fig, ax = figure()
    for (dtype, path), idx in rows.groupby([rows["dtype"].fillna("?"),
                                            rows["gemm_path"].fillna("")]).groups.items():
        colour, marker = DTYPE_COLOURS.get(dtype, "#777777"), PATH_MARKERS.get(path, "D")
        name = f"{dtype} {path}".strip()
        ax.scatter(sizes[idx].clip(lower=0.5), err[idx].clip(lower=floor), s=14, c=colour,
                   marker=marker, label=f"{name} (backend)")
        ax.scatter(sizes[idx].clip(lower=0.5), base[idx].clip(lower=floor), s=22, facecolors="none",
                   edgecolors=colour, marker=marker, linewidths=0.8, label=f"{name} (fp32 baseline)")
    ax.set(xscale="log", yscale="log", xlabel=label, ylabel=f"{result}: relative RMS error",
           title=f"{op}: error against size")
    ax.legend(fontsize=6, ncol=2)
    return png(fig)


def scatter_old_new(moved: pd.DataFrame) -> str:
    """Old score against new score of every case in both reports (log axes, y = x dashed)."""
    if moved.empty:
        return ""
    fig, ax = figure(5.0, 4.2)
    lo, hi = 1e-4, 1e3
    for status, part in moved.groupby("status_new"):
        ax.scatter(part["score_old"].clip(lo, hi), part["score_new"].clip(lo, hi), s=10,
                   c=POINT_COLOURS.get(status, "#777777"),
                   label=status)
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="baseline score", ylabel="new score",
           title="scores: baseline against this run")
    ax.legend(fontsize=7)
    return png(fig)


# --- tables --------------------------------------------------------------------------------------

def esc(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return html.escape(str(v))


def table(df: pd.DataFrame, cls: str = "", id: str = "") -> str:
    """A frame as an HTML table, values escaped and floats to 3 significant digits."""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    attrs = (f' class="{cls}"' if cls else "") + (f' id="{id}"' if id else "")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_matrix(df: pd.DataFrame) -> str:
    """op × target: counts per status, worst score; a row is coloured by its worst status."""
    df = df.assign(gemm_path=df["gemm_path"].fillna(""))
    counts = df.pivot_table(index=["op", "backend", "gemm_path"], columns="status",
                            values="case_id", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=report.STATUSES, fill_value=0)
    worst = df.groupby(["op", "backend", "gemm_path"])["score"].max()
    rows = []
    for (op, backend, path), c in counts.iterrows():
        state = next((s for s in ("crash", "fail", "error") if c[s]), "pass" if c["pass"] else "unsupported")
        cells = "".join(f'<td class="n">{int(c[s])}</td>' for s in report.STATUSES)
        rows.append(f'<tr style="background:{STATUS_COLOURS[state]}"><td>{esc(op)}</td>'
                    f'<td>{esc(backend)}</td><td>{esc(path)}</td>{cells}'
                    f'<td class="n">{esc(float(worst[(op, backend, path)]))}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("op", "backend", "GEMM path", *report.STATUSES,
                                              "worst score"))
    return (f'<table id="summary-matrix" class="matrix"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def backend_matrix(df: pd.DataFrame) -> str:
    """After a survey of several backends: op rows, backend columns, each cell its counts."""
    backends = sorted(df["backend"].unique())
    if len(backends) < 2:
        return ""
    rows = []
    for op, part in df.groupby("op"):
        cells = []
        for b in backends:
            c = part[part["backend"] == b]["status"].value_counts()
            state = next((s for s in ("crash", "fail", "error") if c.get(s)),
                         "pass" if c.get("pass") else "unsupported")
            text = " / ".join(f"{int(c.get(s, 0))}" for s in report.STATUSES)
            cells.append(f'<td style="background:{STATUS_COLOURS[state]}">{text}</td>')
        rows.append(f"<tr><td>{esc(op)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{esc(b)}</th>" for b in backends)
    return (f'<h2>Backends</h2><p>cases per status: {" / ".join(report.STATUSES)}</p>'
            f'<table id="backend-matrix" class="matrix"><thead><tr><th>op</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _repro_cell(repro) -> str:
    return f'<td><code>{esc(repro)}</code> <button class="copy">copy</button></td>'


def failing_rows(df: pd.DataFrame) -> str:
    """The distinct findings (failing rows grouped by op, status and reason with numbers blanked:
    report.findings), each with the repro of its smallest case; then every failing row, folded."""
    bad = df[df["status"].isin(report.BAD)]
    if bad.empty:
        return '<h2>Failing rows</h2><p id="failing">none</p>'
    distinct = report.findings(df)
    groups = "".join(
        f'<tr><td>{esc(r.op)}</td><td>{esc(r.kind)}</td><td>{esc(r.status)}</td>'
        f'<td class="n">{int(r.cases)}</td><td class="reason">{esc(r.reason)}</td>'
        f'{_repro_cell(r.repro)}</tr>' for r in distinct.itertuples(index=False))
    rows = "".join(
        f'<tr><td>{esc(r.op)}</td><td>{esc(r.backend)} {esc(r.gemm_path)}</td>'
        f'<td>{esc(r.status)}</td><td class="id">{esc(r.case_id)}</td>'
        f'<td class="reason">{esc(r.reason)}</td>{_repro_cell(r.repro)}</tr>'
        for r in bad.itertuples(index=False))
    return (f'<h2>Failing rows: {len(bad)}, {len(distinct)} distinct</h2>'
            f'<table id="failing" class="rows"><thead><tr><th>op</th><th>kind</th><th>status</th>'
            f'<th>rows</th><th>reason (first of the group)</th><th>repro of its smallest case</th>'
            f'</tr></thead><tbody>{groups}</tbody></table>'
            f'<details><summary>every failing row ({len(bad)})</summary><table class="rows"><thead>'
            f'<tr><th>op</th><th>target</th><th>status</th><th>case</th><th>reason</th>'
            f'<th>repro</th></tr></thead><tbody>{rows}</tbody></table></details>')


def against_baseline(old: pd.DataFrame, new: pd.DataFrame, name: str) -> str:
    t = triage.triage(old, new)
    cols = ["op", "backend", "gemm_path", "case_id", "status_old", "status_new", "score_old",
            "score_new", "reason_new"]
    parts = [f'<h2 id="baseline">Against {html.escape(name)}: '
             f'{"REGRESSED" if t.regressed else "no regression"}</h2>']
    for title, part in (("New failures", t.new_failures),
                        (f"Error growth (score × > {triage.GROWTH:g})", t.grown),
                        ("Fixed", t.fixed), (f"Improved (score ÷ > {triage.GROWTH:g})", t.improved)):
        parts.append(f"<h3>{title}: {len(part)}</h3>")
        if len(part):
            parts.append(table(part[[c for c in cols if c in part]], "rows"))
    parts.append(f"<p>only in the baseline: {len(t.only_old)}; only in this run: {len(t.only_new)}</p>")
    everything = old[[*report.KEY, "score"]].merge(
        new[[*report.KEY, "score", "status"]].rename(columns={"status": "status_new"}),
        on=report.KEY, suffixes=("_old", "_new"))
    everything = everything.dropna(subset=["score_old", "score_new"])
    parts.append(scatter_old_new(everything))
    return "\n".join(parts)


# --- the page ------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.rows td.reason { max-width: 38em; }
table.rows td.id { max-width: 22em; word-break: break-all; }
code { font-size: 11px; word-break: break-all; }
img.plot { margin: 0.3em; border: 1px solid #ddd; }
.op { display: inline-block; vertical-align: top; }
"""

# Script errors are counted into the page itself (data-js-errors on <body>), so that a test
# loading the page in a headless browser can read them from the DOM it dumps.
CATCH_ERRORS = """
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
"""

SCRIPT = """
document.querySelectorAll('button.copy').forEach(function (b) {
  b.addEventListener('click', function () {
    var text = b.previousElementSibling.textContent;
    if (navigator.clipboard) { navigator.clipboard.writeText(text).catch(function () {}); }
    b.textContent = 'copied';
  });
});
document.body.setAttribute('data-js-errors', String(window.__errors.length));
"""


def render(df: pd.DataFrame, *, title: str, baseline: pd.DataFrame | None = None,
           baseline_name: str = "") -> str:
    counts = df["status"].value_counts()
    headline = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in report.STATUSES)
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p id="headline">{len(df)} rows: {headline}</p>',
             "<h2>Summary</h2>", summary_matrix(df), backend_matrix(df)]
    if baseline is not None:
        parts.append(against_baseline(baseline, df, baseline_name))
    parts.append(failing_rows(df))
    parts.append('<h2 id="per-op">Per op</h2>')
    for op in sorted(df["op"].unique()):
        plots = score_plot(df, op) + error_plot(df, op)
        if plots:
            parts.append(f'<div class="op"><h3>{html.escape(op)}</h3>{plots}</div>')
    return document(title, parts, scripts=True)


def document(title: str, parts: list[str], scripts: bool = False) -> str:
    """A whole page: the shared style, the parts in order; with `scripts`, the copy buttons'
    script and the error counter the browser test reads."""
    head = f"<script>{CATCH_ERRORS}</script>" if scripts else ""
    tail = f"<script>{SCRIPT}</script>" if scripts else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f'</title><style>{STYLE}</style>{head}</head><body>{"".join(parts)}{tail}</body></html>')


def write(report_path: str | Path, out: str | Path | None = None,
          baseline_path: str | Path | None = None) -> Path:
    """Renders the report (and its comparison with a baseline) into `out` (default: next to the
    CSV, .html) and returns the path."""
    report_path = Path(report_path)
    out = Path(out) if out else report_path.with_suffix(".html")
    baseline = report.read(baseline_path) if baseline_path else None
    page = render(report.read(report_path), title=f"harness report: {report_path.name}",
                  baseline=baseline, baseline_name=Path(baseline_path).name if baseline_path else "")
    out.write_text(page)
    return out
