"""Click definitions of ``fleqc disasm``, ``show`` and ``debug`` (registered by fleqc.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click


def make_commands(reports_errors: Callable) -> list[click.Command]:
    return []
