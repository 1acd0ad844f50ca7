"""The test suite runs with the project's choice of BLAS threads (fleqc.threads), like fleqc itself.

No test may depend on how busy the machine is: hypothesis's two clocks (a deadline per example and
the too_slow health check, which times the drawing of examples) are off for every test, not only for
those whose @settings say so; each test's @settings still choose how many examples it draws.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from fleqc.threads import chosen_blas_threads

settings.register_profile("fleqc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fleqc")


@pytest.fixture(scope="session", autouse=True)
def _blas_threads():
    with chosen_blas_threads():
        yield
