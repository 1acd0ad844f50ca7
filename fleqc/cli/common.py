"""What every command shares: the exit statuses, and errors printed as messages, never tracebacks."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, Optional

import click

from fleqc.errors import FleqError
from fleqc.transformer import MachineFault

EXIT_USER_ERROR, EXIT_STEP_LIMIT, EXIT_FAULT = 1, 3, 4
EXIT_CLOSED_OUTPUT = 128 + 13  # 141: stdout was a pipe whose reader closed it (SIGPIPE)


def reports_errors(command: Callable) -> Callable:
    """Print a FleqError or MachineFault as a message (never a traceback) and exit with its status."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FleqError as err:
            if err.span is not None and err.source_line is None:
                err.source_line = source_line(err.span.file, err.span.line)
            click.echo(err.render(), err=True)
            sys.exit(EXIT_USER_ERROR)
        except MachineFault as fault:
            click.echo(f"error[machine-fault]: {fault}", err=True)
            sys.exit(EXIT_FAULT)
        except MemoryError:  # the estimate before a run (fleqc.transformer.memory) should prevent this
            click.echo("error[out-of-memory]: ran out of memory; use fewer --columns", err=True)
            sys.exit(EXIT_USER_ERROR)
        except BrokenPipeError:  # the reader of stdout went away (`fleqc run ... | head -1`)
            closed_output()

    return wrapper


def closed_output() -> None:
    """Exit as a process that wrote to a closed pipe ends by default (SIGPIPE, status 141 in the
    shell), quietly like `yes | head`: nothing more can be shown on that output, and Python's
    flush at exit must not fail again on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_CLOSED_OUTPUT)


def input_files(*paths: Any) -> list:
    """The files the current command reads (``paths``, then every file an option read, such as
    ``--input``): no output of the command may replace one of them (fleqc.safe_io)."""
    ctx = click.get_current_context(silent=True)
    read = ctx.find_root().meta.get(READ_FILES, []) if ctx is not None else []
    return [p for p in (*paths, *read) if p is not None]


READ_FILES = "fleqc.read_files"  # click context meta: the names of the files options read


def source_line(path: str, line: int) -> Optional[str]:
    """The text of line ``line`` of ``path`` (for errors raised where the source is not at hand)."""
    try:
        with open(path, encoding="utf-8") as f:
            for number, text in enumerate(f, start=1):
                if number == line:
                    return text.rstrip("\n")
    except (OSError, UnicodeDecodeError):
        pass
    return None
