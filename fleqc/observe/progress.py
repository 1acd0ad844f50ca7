"""A progress bar on stderr for long runs: steps, steps per second, elapsed time.

It appears only when stderr is a terminal, and only once a run has lasted about a second (short
runs print nothing extra); it is never shown with ``--json`` or when stderr is a pipe or a file,
and it disappears when the run ends (rich's transient display), so no output is mixed with it.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

DELAY_S = 1.0  # show the bar once a run has lasted this long
REFRESH_S = 0.1  # update it at most this often


def wanted(stream: Optional[TextIO] = None, *, as_json: bool = False) -> bool:
    """A bar belongs on ``stream`` (default stderr) when it is a terminal and the output is not JSON."""
    stream = sys.stderr if stream is None else stream
    if as_json:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class RunProgress:
    """Counts steps (``tick(steps)``, the Machine's ``on_count``) and shows a bar after DELAY_S.

    Use as a context manager around the run. ``force`` shows it regardless of the delay (tests).
    """

    def __init__(self, stream: Optional[TextIO] = None, max_steps: Optional[int] = None,
                 delay: float = DELAY_S) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.max_steps = max_steps
        self.delay = delay
        self.start = time.monotonic()
        self.steps = 0
        self._next_check = self.start + delay
        self._progress = None
        self._task = None

    def __enter__(self) -> "RunProgress":
        self.start = time.monotonic()
        self._next_check = self.start + self.delay
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._update()
            self._progress.stop()
            self._progress = None

    def tick(self, steps: int) -> None:
        self.steps = steps
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + REFRESH_S
        if self._progress is None:
            self._show()
        self._update()

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TextColumn("[bold]{task.fields[steps]:,}[/] steps"),
            TextColumn("{task.fields[rate]:,.1f} steps/s"), TextColumn("{task.fields[elapsed]} elapsed"),
            console=console, transient=True,
        )
        limit = f" (limit {self.max_steps:,})" if self.max_steps else ""
        self._task = self._progress.add_task(f"running{limit}", total=None, steps=0, rate=0.0, elapsed="0:00:00")
        self._progress.start()

    def _update(self) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        whole = int(elapsed)
        self._progress.update(self._task, steps=self.steps, rate=self.steps / elapsed,
                              elapsed=f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}")
