"""How many threads BLAS may use: the project's choice, not the library's default.

On a busy 2-core machine numpy's default BLAS threading made runs 4-10x slower (README,
"Figures"), and the incremental engine hardly calls BLAS at all, so fleqc runs BLAS on one thread.
``FLEQC_BLAS_THREADS=k`` overrides the choice (e.g. to study the dense pass on an idle machine).

The ``fleqc`` command also starts OpenBLAS with that many threads (:func:`pin_blas_threads`, before
numpy is imported): numpy's import otherwise starts one BLAS thread per core, which on a busy
2-core machine cost 30-60 ms of every command's start-up (start-up) for threads fleqc never uses.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

DEFAULT_BLAS_THREADS = 1


def blas_threads() -> int:
    """The number of BLAS threads fleqc runs with (``FLEQC_BLAS_THREADS``, default 1)."""
    value = os.environ.get("FLEQC_BLAS_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_BLAS_THREADS


def pin_blas_threads() -> None:
    """Before numpy is imported (the ``fleqc`` command's entry): OpenBLAS starts with
    :func:`blas_threads` threads, unless ``OPENBLAS_NUM_THREADS`` is set already (then it stands).
    The limit of :func:`chosen_blas_threads` still applies around every run, whatever the BLAS."""
    if "numpy" not in sys.modules and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = str(blas_threads())


@contextlib.contextmanager
def chosen_blas_threads() -> Iterator[None]:
    """Run the body with BLAS limited to :func:`blas_threads` threads (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads(), user_api="blas"):
        yield
