"""Reports are deterministic; triage on two small CSVs finds what changed and exits accordingly."""

import json


from harness import report
from harness.__main__ import main

CASE = json.dumps({"B": 1, "seed": 3})


def row(case_id, status="pass", score=0.2, op="causal_conv1d_update", gemm_path=""):
    return dict(op=op, backend="ours", gemm_path=gemm_path, kind="case", case_id=case_id,
                status=status, reason="" if status == "pass" else "out: max error 1 > tolerance 0.5",
                score=score, case=CASE, seed=3, repro=f"python -m harness repro {op} ... {case_id}",
                out_max_abs=score, elapsed_s=0.1)


def test_same_rows_same_csv_whatever_their_order(tmp_path):
    rows = [row("b"), row("a", "fail", 2.0), row("c", op="chunk_gated_delta_rule", gemm_path="blas")]
    report.write(rows, tmp_path / "1.csv")
    report.write(rows[::-1], tmp_path / "2.csv")
    assert (tmp_path / "1.csv").read_text() == (tmp_path / "2.csv").read_text()
    df = report.read(tmp_path / "1.csv")
    assert list(df["case_id"]) == ["a", "b", "c"] and df.loc[0, "B"] == 1
    text = report.summary(df)
    assert "causal_conv1d_update" in text and "worst_score" in text


def write(tmp_path, name, rows):
    path = tmp_path / name
    report.write(rows, path)
    return str(path)


def test_triage_lists_each_kind_of_change(tmp_path, capsys):
    old = write(tmp_path, "old.csv", [row("steady"), row("breaks"), row("grows", score=0.1),
                                      row("heals", "fail", 3.0), row("shrinks", score=0.8),
                                      row("gone"), row("noise", score=0.01)])
    new = write(tmp_path, "new.csv", [row("steady"), row("breaks", "crash", 0.0),
                                      row("grows", score=0.5), row("heals"),
                                      row("shrinks", score=0.1), row("added"),
                                      row("noise", score=0.09)])
    assert main(["triage", old, new]) == 1
    out = capsys.readouterr().out
    for line in ("NEW FAILURES: 1", "ERROR GROWTH (score × >2, to ≥ 0.1): 1", "FIXED: 1",
                 "IMPROVED (score ÷ >2): 1", "ONLY IN OLD: 1", "ONLY IN NEW: 1", "REGRESSED"):
        assert line in out, line
    assert "breaks" in out and "grows" in out and "noise" not in out.split("ONLY IN OLD")[0]


def test_triage_passes_on_improvements_only(tmp_path, capsys):
    old = write(tmp_path, "old.csv", [row("x", "fail", 3.0), row("y", score=0.9)])
    new = write(tmp_path, "new.csv", [row("x"), row("y", score=0.3)])
    assert main(["triage", old, new]) == 0
    assert "no regression" in capsys.readouterr().out


def test_summary_strict_exits_on_bad_rows(tmp_path):
    assert main(["summary", "--strict", write(tmp_path, "ok.csv", [row("a")])]) == 0
    assert main(["summary", "--strict", write(tmp_path, "bad.csv", [row("a", "error")])]) == 1
