"""Known findings: a document that explains a backend's failures, read back by the harness.

A findings document (docs/vllm-findings.md is one) is Markdown for people. Each finding also has a
fenced block with the info string `finding`, which the harness reads:

    ```finding
    id: V1
    class: kernel defect
    title: causal_conv1d_fwd dereferences conv_states when it is None
    rows: op == "causal_conv1d_fwd" and status == "crash" and states == False
    repro: python -m harness repro causal_conv1d_fwd --backend vllm --isolated --case '{...}'
    expect: crash
    ```

`rows` is a pandas query (python engine) over a report's columns as `report.read` gives them: case
axes that are lists are JSON text (`slots.str.contains("-1")`), booleans are booleans, an absent
axis is NaN (`has_initial_state.isna()`). A bad row belongs to the first finding whose query
matches it, in document order. Each `repro` line is followed by the status it must give (`expect`),
optionally with a fragment its reason must contain: `expect: fail: outside the indexed slots`.
An out-of-bounds access may go either way, depending on what lies at the address: `fail|crash`
accepts both (the fragment then applies to the fail).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import report

CLASSES = ("kernel defect", "documented limit", "contract difference")
_BLOCK = re.compile(r"^```finding\n(.*?)^```", re.S | re.M)


@dataclass
class Finding:
    id: str
    cls: str
    title: str
    rows: str
    repros: list[tuple[str, str, str]] = field(default_factory=list)   # (command, status, fragment)


def load(path: str | Path) -> list[Finding]:
    found = []
    for block in _BLOCK.findall(Path(path).read_text()):
        f = Finding("", "", "", "")
        for line in block.splitlines():
            if not line.strip():
                continue
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "id":
                f.id = value
            elif key == "class":
                if value not in CLASSES:
                    raise ValueError(f"{path}: finding {f.id}: class must be one of {CLASSES}, got {value!r}")
                f.cls = value
            elif key == "title":
                f.title = value
            elif key == "rows":
                f.rows = value
            elif key == "repro":
                f.repros.append((value, "", ""))
            elif key == "expect":
                status, _, fragment = value.partition(":")
                cmd = f.repros.pop()[0]
                f.repros.append((cmd, status.strip(), fragment.strip()))
            else:
                raise ValueError(f"{path}: finding {f.id}: unknown key {key!r}")
        missing = [k for k in ("id", "cls", "title", "rows") if not getattr(f, k)]
        if missing or not f.repros or any(not s for _, s, _ in f.repros):
            raise ValueError(f"{path}: finding {f.id or '?'}: needs id, class, title, rows and "
                             f"repro/expect pairs (missing {missing or 'an expect'})")
        found.append(f)
    return found


def classify(df: pd.DataFrame, findings: list[Finding]) -> pd.Series:
    """The id of the finding each bad row belongs to ('' when none matches), indexed like df."""
    bad = df[df["status"].isin(report.BAD)]
    label = pd.Series("", index=bad.index, dtype=object)
    for f in findings:
        todo = bad[label == ""]
        if todo.empty:
            break
        label[_matching(todo, f.rows)] = f.id
    return label


def _matching(df: pd.DataFrame, rows: str) -> pd.Index:
    """The index of df's rows that the query selects. A column the query names but the report
    lacks (an axis of an op this run did not cover) is NaN, as it is for other ops' rows."""
    while True:
        try:
            return df.query(rows, engine="python").index
        except pd.errors.UndefinedVariableError as e:
            name = re.search(r"name '(\w+)' is not defined", str(e))
            if name is None or name.group(1) in df.columns:
                raise
            df = df.assign(**{name.group(1): float("nan")})


def repro_request(command: str) -> tuple:
    """A session request ("case"/"error", op, backend, variant, payload) from a repro command."""
    from harness.__main__ import repro_parser, request_of
    argv = shlex.split(command)
    if argv[:4] != ["python", "-m", "harness", "repro"]:
        raise ValueError(f"not a repro command: {command}")
    return request_of(repro_parser().parse_args(argv[4:]))
