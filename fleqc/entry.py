"""The `fleqc` command's entry point: Ctrl-C anywhere is a clean exit 130, never a traceback.

A SIGINT handler is installed before anything heavy is imported; it raises :class:`Interrupted`,
which (unlike KeyboardInterrupt) click does not turn into "Aborted!" with status 1. Files being
written are cleaned up on the way out (fleqc.safe_io).
"""

from __future__ import annotations

import signal
import sys

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report a process ended by Ctrl-C


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) during a fleqc command."""


def _interrupt(signum, frame) -> None:
    raise Interrupted()


def main() -> None:
    try:
        _run()
    except (Interrupted, KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
        sys.stderr.write("fleqc: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


def _run() -> None:
    signal.signal(signal.SIGINT, _interrupt)
    try:
        from fleqc.cli import main as cli

        cli(prog_name="fleqc")
    finally:  # the command is over (its exit is on its way): a late Ctrl-C changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":  # pragma: no cover
    main()
