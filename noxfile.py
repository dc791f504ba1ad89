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
    """The main job. Until the harness lands it runs the references' self-checks."""
    install(session)
    session.run("pytest", "tests/reference", "-n", "auto", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Timings (never asserted in tests): the references at Qwen3-Next shapes."""
    install(session)
    session.run("python", "-m", "benchmarks.reference", *session.posargs)
