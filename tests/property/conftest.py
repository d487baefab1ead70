"""Hypothesis profiles for the property tests.

``ci`` (the default, what ``make test`` runs) is derandomized: the same examples every run, so CI is deterministic,
and sized to stay within about a minute. ``PROPERTY_SCALE=N`` multiplies every test's examples by N and draws fresh
random examples each run, for a longer hunt: ``PROPERTY_SCALE=20 .venv/bin/pytest -p no:cacheprovider tests/property``.
"""

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("PROPERTY_SCALE", "1")))

settings.register_profile(
    "ci",
    derandomize=SCALE == 1,
    database=None,  # nothing written next to the repository; a failure prints its reproduction blob instead
    deadline=None,  # a shared CI machine is noisy; the suite's own time is what is bounded
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")


def examples(n: int) -> settings:
    """``n`` examples in CI, ``n × PROPERTY_SCALE`` on a longer hunt."""
    return settings(max_examples=n * SCALE)
