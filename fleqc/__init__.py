"""fleqc: compile FLEQ/SUBLEQ assembly to punch cards and run them on a looped transformer.

Pipeline: text -> AST -> linked program -> layout -> punch card X; machine configuration -> weight
blocks -> layers; the generic executor loops the layers over X. See README.md.
"""

__version__ = "0.1.0"

from fleqc.api import build, compile, decode, load_card, run  # noqa: E402
from fleqc.backends import Result  # noqa: E402
from fleqc.errors import ErrorCode, FleqError  # noqa: E402
from fleqc.machine.card import Card  # noqa: E402
from fleqc.transformer import MachineFault  # noqa: E402

__all__ = ["Card", "ErrorCode", "FleqError", "MachineFault", "Result", "build", "compile", "decode", "load_card", "run"]
