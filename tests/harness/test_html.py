"""The HTML report renders in a real browser: headless Chromium loads the page built from the
committed baseline report (plus one failing row, against the baseline itself), runs its script
without an error, and shows the summary matrix, the triage, the failing rows with their repros, and
a plot per op. A screenshot is saved as reports/html-report.png for a person to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import html, report

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baseline.csv"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                                              "(apt-get install chromium; .ci/run does)")


def _with_a_failure(tmp_path: Path) -> Path:
    df = report.read(BASELINE)
    i = df.index[(df["status"] == "pass") & (df["kind"] == "case")][0]
    df.loc[i, ["status", "reason"]] = ["fail", "out: max error 1 > tolerance 0.5 (made up for this test)"]
    path = tmp_path / "run.csv"
    df.to_csv(path, index=False)
    return path


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=180)


def test_page_is_self_contained(tmp_path):
    page = html.write(_with_a_failure(tmp_path), tmp_path / "page.html", BASELINE).read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must load nothing from outside"
    assert 'id="summary-matrix"' in page and 'id="failing"' in page and 'id="baseline"' in page
    assert "New failures: 1" in page
    assert page.count('<img class="plot"') >= 2 * report.read(BASELINE)["op"].nunique() - 1


@needs_chromium
def test_page_renders_in_headless_chromium(tmp_path):
    page = html.write(_with_a_failure(tmp_path), tmp_path / "page.html", BASELINE)
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-js-errors="0"' in dom.stdout, "the page's script did not run to its end cleanly"
    console_errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and
                      ("Uncaught" in l or "ERROR" in l.split("CONSOLE")[0])]
    assert not console_errors, console_errors
    assert 'id="summary-matrix"' in dom.stdout and "copy</button>" in dom.stdout
    assert dom.stdout.count('<img class="plot"') >= 2
    shot = ROOT / "reports" / "html-report.png"
    result = _chromium("--window-size=1400,2400", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
