"""The shared table of program test cases that every backend runs through.

A case is a program (a sample file in ``samples/`` or an inline source) plus what running it must
give. Expectations live in the program's own comments, one per line, so that a sample documents
its result where readers look for it::

    ; expect: LABEL = VALUE     the data label's final value (repeatable, one line per label)
    ; expect-halt: yes|no       whether the run ends at a fixed point (default: yes)
    ; expect-steps: K           the exact number of executed steps (optional)
    ; max-steps: K              the step budget for the run (default: DEFAULT_MAX_STEPS)
    ; expect-exact: yes         float results compared bit for bit (the sign of zero included)
    ; expect-rel-tol: R         relative tolerance for float results (default FLOAT_REL_TOL); a
                                FLEQ sample that uses a table (recip, sqrt, log, exp) states it
    # expect-output: TEXT       a program that prints (classic SUBLEQ, ``.sq``): its whole output,
                                with Python escapes (``\\n``)

VALUE is a Python literal: an int, a float, a list ``[1, 2, 3]`` (for a label whose ``length`` > 1,
or a FLEQ vector cell) or nested lists (a FLEQ matrix cell). ``#`` works in place of ``;``.
A comment line that starts with ``expect`` but does not parse is an error, not ignored.

Backends use :func:`all_cases` (or :func:`load_sample_cases` / ``INLINE_CASES``),
:func:`compile_case` to get the ``LinkedProgram`` and :func:`check_memory` on the values read back
by label (``fleqc.state.memory_by_label``).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/support/cases.py -> the repository
SAMPLES_DIR = REPO_ROOT / "samples"

DEFAULT_MAX_STEPS = 100_000

# Tolerances for float results (FLEQ). Ints (SUBLEQ cells) are always compared exactly.
FLOAT_REL_TOL = 1e-9
FLOAT_ABS_TOL = 1e-12


@dataclass(frozen=True)
class Case:
    """One program and its expected outcome. Exactly one of ``path`` and ``source`` is set."""

    name: str
    path: Path | None
    expected: dict[str, Any]
    expect_halt: bool = True
    expect_steps: int | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    rel_tol: float = 0.0  # 0: FLOAT_REL_TOL
    exact: bool = False  # floats bit for bit (expect-exact: yes)
    source: str | None = field(default=None, repr=False)
    expect_output: bytes | None = None  # a program that prints (classic SUBLEQ): its whole output

    @property
    def text(self) -> str:
        """The program's source text."""
        if self.source is not None:
            return self.source
        assert self.path is not None
        return self.path.read_text(encoding="utf-8")

    @classmethod
    def from_source(cls, name: str, source: str) -> "Case":
        return cls(name=name, path=None, source=source, **parse_expectations(source, name))

    @classmethod
    def from_file(cls, path: Path) -> "Case":
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        return cls(name=path.stem, path=path, **parse_expectations(text, str(path)))


_COMMENT = re.compile(r"^\s*[;#]\s*(?P<body>.*?)\s*$")
_EXPECT_VALUE = re.compile(r"^expect\s*:\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.+)$")
_EXPECT_HALT = re.compile(r"^expect-halt\s*:\s*(?P<answer>yes|no)$")
_EXPECT_STEPS = re.compile(r"^expect-steps\s*:\s*(?P<steps>\d+)$")
_MAX_STEPS = re.compile(r"^max-steps\s*:\s*(?P<steps>\d+)$")
_EXACT = re.compile(r"^expect-exact\s*:\s*yes$")
_REL_TOL = re.compile(r"^expect-rel-tol\s*:\s*(?P<tol>[0-9.eE+-]+)$")
_EXPECT_OUTPUT = re.compile(r"^expect-output\s*:\s*(?P<text>.*)$")


def _literal(text: str, where: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        raise ValueError(f"{where}: expected value {text!r} is not a literal: {error}") from None

    def valid(v: Any) -> bool:
        if isinstance(v, list):
            return len(v) > 0 and all(valid(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not valid(value):
        raise ValueError(f"{where}: expected value {text!r} must be a number or a (nested) list of numbers")
    return value


def parse_expectations(text: str, where: str) -> dict[str, Any]:
    """The ``expected``, ``expect_halt``, ``expect_steps`` and ``max_steps`` fields from comments."""
    expected: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        comment = _COMMENT.match(line)
        if not comment:
            continue
        body = comment.group("body")
        here = f"{where}:{number}"
        if match := _EXPECT_VALUE.match(body):
            label = match.group("label")
            if label in expected:
                raise ValueError(f"{here}: a second expectation for {label!r}")
            expected[label] = _literal(match.group("value"), here)
        elif match := _EXPECT_HALT.match(body):
            fields["expect_halt"] = match.group("answer") == "yes"
        elif match := _EXPECT_STEPS.match(body):
            fields["expect_steps"] = int(match.group("steps"))
        elif match := _MAX_STEPS.match(body):
            fields["max_steps"] = int(match.group("steps"))
        elif _EXACT.match(body):
            fields["exact"] = True
        elif match := _REL_TOL.match(body):
            fields["rel_tol"] = float(match.group("tol"))
        elif match := _EXPECT_OUTPUT.match(body):
            fields["expect_output"] = match.group("text").encode().decode("unicode_escape").encode("latin-1")
        elif body.startswith(("expect", "max-steps")):
            raise ValueError(f"{here}: cannot read the expectation {body!r}")
    return {"expected": expected, **fields}


def load_sample_cases(directory: Path = SAMPLES_DIR) -> list[Case]:
    """One case per ``*.fleq`` (and classic ``*.sq``) file in ``samples/``, in name order."""
    paths = [*Path(directory).glob("*.fleq"), *Path(directory).glob("*.sq")]
    return [Case.from_file(path) for path in sorted(paths)]


# Small programs that pin down the semantics at the edges. Each is a Case like the samples.
INLINE_CASES: list[Case] = [
    Case.from_source(
        "inline_wraparound_8bit",
        """
; 8-bit two's complement: 127 + 1 wraps to -128 (<= 0: branch taken), -128 - 1 wraps to 127
; (> 0: falls through). 0xFF is written as -1.
; expect: x = -128
; expect: y = 127
; expect: m1 = -1
; expect: fell = 1
; expect-steps: 3
.bits 8
.data
x:      .word 127
y:      .word -128
one:    .word 1
m1:     .word 0xFF
fell:   .word 0
.text
        subleq m1, x, up        ; x = 127 + 1 = -128: branch
        halt
up:     subleq one, y, down     ; y = -128 - 1 = 127: no branch
        subleq m1, fell         ; fell = 1
down:   halt
""",
    ),
    Case.from_source(
        "inline_branch_taken",
        """
; The branch is taken when the result is 0 and when it is negative.
; expect: a = 0
; expect: b = -2
; expect: wrong = 0
; expect-steps: 2
.data
five:   .word 5
a:      .word 5
b:      .word 3
wrong:  .word 0
m1:     .word -1
.text
        subleq five, a, t1      ; 5 - 5 = 0: taken
        subleq m1, wrong
t1:     subleq five, b, t2      ; 3 - 5 = -2: taken
        subleq m1, wrong
t2:     halt
""",
    ),
    Case.from_source(
        "inline_branch_not_taken",
        """
; The branch is not taken when the result is positive, even if the target is far away.
; expect: c = 4
; expect: fell = 1
; expect-steps: 2
.data
five:   .word 5
c:      .word 9
fell:   .word 0
m1:     .word -1
.text
        subleq five, c, away    ; 9 - 5 = 4: not taken
        subleq m1, fell         ; fell = 1
        halt
away:   subleq m1, c
        halt
""",
    ),
    Case.from_source(
        "inline_halt_at_once",
        """
; The first instruction is halt: no step is executed.
; expect: x = 5
; expect-steps: 0
.data
x:      .word 5
.text
        halt
""",
    ),
    Case.from_source(
        "inline_fixed_point_without_halt",
        """
; Any step that changes neither pc nor memory halts the machine, not only `halt`:
; n - 0 = n <= 0 writes the same value and jumps to itself.
; expect: n = -3
; expect-steps: 0
.data
zero:   .word 0
n:      .word -3
.text
start:  subleq zero, n, start
""",
    ),
    Case.from_source(
        "inline_self_loop_max_steps",
        """
; A loop to itself that changes memory every time never reaches a fixed point: the run stops
; after max-steps steps, not halted.
; expect: x = -50
; expect-halt: no
; expect-steps: 50
; max-steps: 50
.data
x:      .word 0
one:    .word 1
.text
loop:   subleq one, x, loop     ; x -= 1, x <= 0: again
""",
    ),
    Case.from_source(
        "inline_jump_cycle_max_steps",
        """
; Two jumps in a cycle change only pc, never reaching a fixed point either.
; expect: x = 7
; expect-halt: no
; expect-steps: 7
; max-steps: 7
.data
x:      .word 7
.text
ping:   jmp pong
pong:   jmp ping
""",
    ),
    Case.from_source(
        "inline_fleq_subleq_and_flag",
        """
; FLEQ: `subleq a, b, c` is fleq b, sub, b, a, b, c (the flag is read after the write);
; `jle` branches on a flag cell that is exactly 0.
; expect: b = 0.0
; expect: r = 2.0
; expect: marks = 0.0
; expect-steps: 3
.machine fleq
.data
a:      .word 2.5
b:      .word 2.5
r:      .word 0.0
marks:  .word 0.0
one:    .word 1.0
.text
        subleq a, b, l1         ; b = 0.0: taken
        add marks, marks, one
l1:     jle b, l2               ; b = 0.0 <= 0: taken
        add marks, marks, one
l2:     add r, one, one         ; r = 2, falls through (flag is the hidden 1.0)
        halt
""",
    ),
]


def all_cases() -> list[Case]:
    """Every sample and every inline case."""
    return load_sample_cases() + INLINE_CASES


def compile_case(case: Case):
    """The case's ``LinkedProgram``, built by the front end (imported here, on first use)."""
    from fleqc.machines import compile_file, compile_source

    if case.path is not None:
        return compile_file(case.path)
    return compile_source(case.text, f"{case.name}.fleq")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _all_ints(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_all_ints(v) for v in value)
    return _is_int(value)


def _int_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_int_lists(v) for v in value]
    return int(value)


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def value_mismatch(
    expected: Any, actual: Any, rel_tol: float = FLOAT_REL_TOL, abs_tol: float = FLOAT_ABS_TOL,
    exact: bool = False,
) -> str | None:
    """Why ``actual`` does not match ``expected``, or None when it does.

    Ints (Python or numpy) against int expectations: exact equality. Anything holding a float:
    same shape, and every element within ``abs_tol + rel_tol * |expected|``; with ``exact``, every
    element's float64 bits equal.
    """
    if isinstance(actual, np.ndarray) and actual.dtype.kind in "iu":
        actual = actual.tolist()
    if _all_ints(expected) and _all_ints(actual):
        if _int_lists(actual) != _int_lists(expected):
            return f"got {_show(actual)}, expected {_show(expected)} (exact)"
        return None
    try:
        act = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        return f"got {_show(actual)}, not a number or an array of numbers"
    exp = np.asarray(expected, dtype=np.float64)
    if act.shape != exp.shape:
        return f"shape {act.shape}, expected {exp.shape}: got {_show(actual)}"
    if exact:
        if not np.array_equal(act.view(np.int64), exp.view(np.int64)):
            return f"got {_show(actual)}, expected {_show(expected)} (bit for bit)"
        return None
    close = all(
        math.isclose(a, e, rel_tol=rel_tol, abs_tol=abs_tol) for a, e in zip(act.ravel(), exp.ravel())
    )
    if not close:
        return f"got {_show(actual)}, expected {_show(expected)} (rel_tol {rel_tol}, abs_tol {abs_tol})"
    return None


def memory_mismatches(
    case: Case, memory_by_label: dict[str, Any], rel_tol: float = FLOAT_REL_TOL, abs_tol: float = FLOAT_ABS_TOL
) -> list[str]:
    """One line per expected label that is missing or has the wrong value."""
    problems = []
    for label, expected in case.expected.items():
        if label not in memory_by_label:
            problems.append(f"{label}: no such data label")
            continue
        why = value_mismatch(expected, memory_by_label[label], rel_tol, abs_tol, case.exact)
        if why:
            problems.append(f"{label}: {why}")
    return problems


def check_memory(
    case: Case, memory_by_label: dict[str, Any], rel_tol: float = FLOAT_REL_TOL, abs_tol: float = FLOAT_ABS_TOL
) -> None:
    """Assert that every expected label has its expected value (see :func:`value_mismatch`).

    ``memory_by_label`` maps labels to values as ``fleqc.state.memory_by_label`` gives them;
    labels without an expectation are not looked at.
    """
    problems = memory_mismatches(case, memory_by_label, case.rel_tol or rel_tol, abs_tol)
    assert not problems, f"{case.name}: " + "; ".join(problems)
