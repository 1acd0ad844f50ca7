"""The test suite runs with the project's choice of BLAS threads (fleqc.threads), like fleqc itself."""

from __future__ import annotations

import pytest

from fleqc.threads import chosen_blas_threads


@pytest.fixture(scope="session", autouse=True)
def _blas_threads():
    with chosen_blas_threads():
        yield
