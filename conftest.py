"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default: `ci` when CI is set, else `dev`).

- dev: quick feedback while iterating on a kernel (few examples, shrinking on, no deadline).
- ci: deterministic (derandomized, no example database), so the same commit runs the same cases.
- thorough: many more examples, for a soak before a release.
No profile has a deadline: kernel cases vary in size by orders of magnitude, and speed is the
benchmarks' business, not the tests'.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["harness.pytest_plugin"]

# filter_too_much: cases a backend does not support are rejected (and reported as unsupported),
# which for a narrow backend is most draws.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=20, **_common)
settings.register_profile("ci", max_examples=150, derandomize=True, database=None, print_blob=True,
                          **_common)
settings.register_profile("thorough", max_examples=1000, print_blob=True, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
