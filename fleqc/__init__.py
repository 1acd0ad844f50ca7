"""fleqc: compile FLEQ/SUBLEQ assembly to punch cards and run them on a looped transformer.

Pipeline: text -> AST -> linked program -> layout -> punch card X; machine configuration -> weight
blocks -> layers; the generic executor loops the layers over X. See README.md.

The names below are imported on first use, and this file imports nothing at all (not even typing or
importlib): it runs first on the `fleqc` command's path, before fleqc.entry has installed the Ctrl-C
handler, so it must be over in an instant. Lazy imports here buy start-up time and nothing else.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "build": "fleqc.api", "compile": "fleqc.api", "decode": "fleqc.api", "load_card": "fleqc.api",
    "run": "fleqc.api", "Result": "fleqc.runner", "ErrorCode": "fleqc.errors", "FleqError": "fleqc.errors",
    "Card": "fleqc.card.card", "MachineFault": "fleqc.transformer",
}
__all__ = sorted(_EXPORTS)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers take it as True
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from fleqc.api import build, compile, decode, load_card, run  # noqa: F401
    from fleqc.runner import Result  # noqa: F401
    from fleqc.errors import ErrorCode, FleqError  # noqa: F401
    from fleqc.card.card import Card  # noqa: F401
    from fleqc.transformer import MachineFault  # noqa: F401


def __getattr__(name: str) -> "Any":
    import importlib  # here, not above: see the module docstring

    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule: fleqc.api, fleqc.cli, ...
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
