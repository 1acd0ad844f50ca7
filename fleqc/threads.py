"""How many threads BLAS may use: the project's choice, not the library's default.

On a busy 2-core machine numpy's default BLAS threading made runs 4-10x slower (README,
"Figures"), and the incremental engine hardly calls BLAS at all, so fleqc runs BLAS on one thread.
``FLEQC_BLAS_THREADS=k`` overrides the choice (e.g. to study the dense pass on an idle machine).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

DEFAULT_BLAS_THREADS = 1


def blas_threads() -> int:
    """The number of BLAS threads fleqc runs with (``FLEQC_BLAS_THREADS``, default 1)."""
    value = os.environ.get("FLEQC_BLAS_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_BLAS_THREADS


@contextlib.contextmanager
def chosen_blas_threads() -> Iterator[None]:
    """Run the body with BLAS limited to :func:`blas_threads` threads (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads(), user_api="blas"):
        yield
