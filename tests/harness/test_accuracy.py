"""The accuracy curves (harness/accuracy.py) at toy sizes: every series is there, the float64
chunked reference agrees with the oracle to float64 rounding, our fp32-state kernels stay within a
few times the fp32 recurrence, and a narrow backend's missing variant is a `note`, not a curve."""

from __future__ import annotations

import pandas as pd

from harness import accuracy


def test_curves_and_page(tmp_path):
    out = tmp_path / "acc"
    assert accuracy.main(["--backend", "ours", "--max-tokens", "256", "--max-steps", "8",
                          "--out", str(out)]) == 0
    df = pd.read_csv(out.with_suffix(".csv")).fillna({"gemm_path": "", "decay": ""})
    page = out.with_suffix(".html").read_text()
    prefill = df[(df["op"] == accuracy.PREFILL) & df["x"].notna()]
    assert set(prefill["x"]) == {64, 128, 256}
    assert {"reference fp32 recurrence", "reference fp32 chunked", "reference float64 chunked",
            "ours"} <= set(prefill["series"])
    assert prefill[prefill["series"] == "reference float64 chunked"]["state_rel_err"].max() < 1e-13
    fp32 = prefill[prefill["state_dtype"] == "fp32"].groupby(["series", "gemm_path", "decay", "x"])
    err = fp32["state_rel_err"].first()
    for path in ("brgemm", "blas"):
        ours = err.xs(("ours", path), level=("series", "gemm_path"))
        base = err.xs(("reference fp32 recurrence", ""), level=("series", "gemm_path"))
        assert (ours <= 4 * base + 1e-7).all(), (path, ours, base)
    decode = df[(df["op"] == accuracy.DECODE) & df["x"].notna()]
    assert set(decode["x"]) == {1, 2, 4, 8} and {"ours", "reference fp32"} <= set(decode["series"])
    assert page.count('<img class="plot"') == 3 * len(accuracy.DECAYS) + 3
    assert 'id="slopes"' in page
