"""Progress of long runs on stderr: a bar on a terminal, a status line now and then in a pipe.

The bar (:class:`RunProgress`) appears only when stderr is a terminal, and only once a run has
lasted about a second (short runs print nothing extra); it fills towards the step limit
(``--max-steps``) and shows steps, steps per second and the time elapsed; it is never shown with
``--json``, and it disappears when the run ends (rich's transient display), so no output is mixed
with it. When stderr is not a terminal (a pipe, a file, CI), :class:`PipeStatus` prints one plain
line every STATUS_EVERY_S seconds once a run has lasted that long, so a long run in a pipe is not
silent for minutes.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

DELAY_S = 1.0  # show the bar once a run has lasted this long
REFRESH_S = 0.1  # update it at most this often
STATUS_EVERY_S = 10.0  # in a pipe: a status line this often, the first after this long


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
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        # a bar towards the step limit where there is one, a spinner where there is none
        first = BarColumn() if self.max_steps else SpinnerColumn()
        limit = f" of {self.max_steps:,}" if self.max_steps else ""
        self._progress = Progress(
            TextColumn("{task.description}"), first, TextColumn("[bold]{task.fields[steps]:,}[/]" + limit + " steps"),
            TextColumn("{task.fields[rate]:,.1f} steps/s"), TextColumn("{task.fields[elapsed]} elapsed"),
            console=console, transient=True,
        )
        self._task = self._progress.add_task("running", total=self.max_steps or None, steps=0, rate=0.0,
                                             elapsed="0:00:00")
        self._progress.start()

    def _update(self) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self._progress.update(self._task, completed=self.steps, steps=self.steps, rate=self.steps / elapsed,
                              elapsed=clock(elapsed))


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class PipeStatus:
    """``tick(steps)``: where stderr is not a terminal, a plain status line every ``every`` seconds
    once the run has lasted that long (steps, the limit, steps per second, time elapsed)."""

    def __init__(self, stream: Optional[TextIO] = None, max_steps: Optional[int] = None, name: str = "",
                 every: Optional[float] = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.max_steps, self.name = max_steps, name
        self.every = STATUS_EVERY_S if every is None else every
        self.start = time.monotonic()
        self._next = self.start + self.every

    def tick(self, steps: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        elapsed = max(now - self.start, 1e-9)
        limit = f" of at most {self.max_steps:,}" if self.max_steps else ""
        what = f" {self.name}" if self.name else ""
        try:
            print(f"fleqc: running{what}: {steps:,} steps{limit}, {steps / elapsed:,.1f} steps/s, "
                  f"{clock(elapsed)} elapsed", file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed pipe: the run goes on without its status
            self.every = float("inf")
