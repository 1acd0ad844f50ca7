"""Tests of the shared case table itself (tests/support/cases.py): header parsing and memory comparison.
These need no front end."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.cases import (
    DEFAULT_MAX_STEPS,
    INLINE_CASES,
    Case,
    check_memory,
    load_sample_cases,
    memory_mismatches,
    parse_expectations,
    value_mismatch,
)


def test_parse_expectations():
    text = """
; expect: x = 42
# expect: xs = [1, -2, 3]
;expect:m=[[1.0, 2.5], [3e2, -4]]
; expect-halt: no
; expect-steps: 17
; max-steps: 99
; an ordinary comment that mentions expect: is not a header line
.data
x: .word 1  ; expect: y = 1   (a comment after code is not a header line either)
"""
    fields = parse_expectations(text, "t")
    assert fields == {
        "expected": {"x": 42, "xs": [1, -2, 3], "m": [[1.0, 2.5], [300.0, -4]]},
        "expect_halt": False,
        "expect_steps": 17,
        "max_steps": 99,
    }


def test_parse_defaults_and_errors():
    case = Case.from_source("c", "; expect: a = 1\n")
    assert case.expect_halt is True and case.expect_steps is None and case.max_steps == DEFAULT_MAX_STEPS
    for bad in ["; expect: a = 1\n; expect: a = 2\n", "; expect: a = foo\n", "; expect: a = True\n",
                "; expect: a = []\n", "; expect-halt: maybe\n", "; expect-steps: -3\n", "; max-steps: x\n"]:
        with pytest.raises(ValueError):
            parse_expectations(bad, "t")


def test_sample_headers_parse():
    cases = load_sample_cases()
    assert cases and all(isinstance(c, Case) and c.path is not None for c in cases)
    assert len(INLINE_CASES) >= 6


def test_ints_compare_exactly():
    assert value_mismatch(5040, 5040) is None
    assert value_mismatch(5040, 5041) is not None
    assert value_mismatch(-7, np.int64(-7)) is None
    assert value_mismatch([1, 2, 3], [1, 2, 3]) is None
    assert value_mismatch([1, 2, 3], [1, 2]) is not None
    assert value_mismatch([1, 2, 3], np.array([1, 2, 3])) is None
    assert value_mismatch([1, 2, 3], [3, 2, 1]) is not None


def test_floats_compare_with_tolerance():
    assert value_mismatch(1.75, np.array(1.75)) is None
    assert value_mismatch(1.75, np.array(1.75 + 1e-12)) is None
    assert value_mismatch(1.75, np.array(1.76)) is not None
    assert value_mismatch(385, np.array(385.0)) is None  # int expectation, float cell
    assert value_mismatch([[1.0, 2.0]], np.array([[1.0, 2.0]])) is None
    assert value_mismatch([[1.0, 2.0]], np.array([1.0, 2.0])) is not None  # shape
    assert value_mismatch([1.0, 2.0], [np.array(1.0), np.array(2.0)]) is None  # list of scalar cells
    assert value_mismatch(1.0, np.array(1.1), rel_tol=0.2) is None
    assert value_mismatch(0.0, np.array(1e-13)) is None
    assert value_mismatch(0.0, np.array(1e-9)) is not None
    assert value_mismatch(1.0, np.array(np.nan)) is not None


def test_exact_cases_compare_bits():
    """``expect-exact: yes``: a subnormal flushed to 0, one ulp, or the sign of a zero is a mismatch."""
    assert parse_expectations("; expect-exact: yes\n", "t")["exact"] is True
    assert value_mismatch(1e-320, np.array(1e-320), exact=True) is None
    assert value_mismatch(1e-320, np.array(0.0)) is None  # within the default tolerance
    assert value_mismatch(1e-320, np.array(0.0), exact=True) is not None
    assert value_mismatch(1.0, np.array(np.nextafter(1.0, 2.0)), exact=True) is not None
    assert value_mismatch(0.0, np.array(-0.0), exact=True) is not None
    assert value_mismatch([[1e-320, 0.0]], np.array([[1e-320, 0.0]]), exact=True) is None


def test_check_memory_reports_every_problem():
    case = Case.from_source("c", "; expect: a = 1\n; expect: b = [1, 2]\n; expect: gone = 0\n")
    assert memory_mismatches(case, {"a": 1, "b": [1, 2], "gone": 0, "other": 9}) == []
    problems = memory_mismatches(case, {"a": 2, "b": [1, 2]})
    assert len(problems) == 2 and problems[0].startswith("a:") and problems[1].startswith("gone:")
    with pytest.raises(AssertionError, match="gone"):
        check_memory(case, {"a": 1, "b": [1, 2]})
