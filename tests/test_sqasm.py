"""The sqasm assembler and raw images (issue 12): the corpus's sqasm images word for word, the
dialect's rules one by one, and every mistake a located FleqError (code and span, never the text).
"""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark
from lark import logger as lark_logger

from fleqc.errors import ErrorCode as E
from fleqc.errors import FleqError, Span
from fleqc.machines.classic.image import SubleqImage, read_raw
from fleqc.machines.classic.source import load_image
from fleqc.machines.classic.sqasm import assemble
from fleqc.resources import grammar_path
from tests.support import subleq_corpus
from tests.support.subleq_corpus import corpus


def words(text: str, bits: int = 32) -> list[int]:
    return list(assemble(text, name="t.sq", bits=bits).words)


# The corpus ------------------------------------------------------------------------------------------

SOURCES = sorted(p.name for p in [*subleq_corpus.corpus_dir().glob("*.sq"), *subleq_corpus.corpus_dir().glob("*.asq")])


@pytest.mark.parametrize("source", subleq_corpus.params(SOURCES))
def test_corpus_source_assembles_to_the_sqasm_image(source):
    path = corpus() / source
    golden = read_raw((path.parent / f"{path.stem}.sqasm_image.dec").read_text(), bits=32).words
    image = load_image(path, bits=32)
    assert image.words == golden
    assert image.path == str(path) and len(image.origins) == len(image.words)


def test_corpus_has_every_source():
    corpus()
    assert len(SOURCES) == 7


def _listing(text: str) -> list[int]:
    """The words of an ``address: words...`` listing, checking that the addresses follow on."""
    result: list[int] = []
    for line in filter(str.strip, text.splitlines()):
        address, values = line.split(":")
        assert int(address) == len(result)
        result += [int(v) for v in values.split()]
    return result


def test_subleq24_published_listing_matches():
    path = corpus() / "05_subleq24_hello_nonl.sq"
    published = _listing((path.parent / "05_subleq24_hello_nonl.published_image.txt").read_text())
    assert list(load_image(path, bits=32).words) == published


def test_woodman_published_object_is_the_source_saying_hello_world_with_a_bang():
    # The article's object code was assembled from the same program printing "hello, world!\n": one
    # character more, so the label Z after the string moves from 29 to 30.
    path = corpus() / "06_woodman_helloworld.sq"
    published = [int(v) for v in (path.parent / "06_woodman_helloworld.published_object.txt").read_text().split()]
    source = path.read_text()
    assert list(load_image(path, bits=32).words) != published
    assert words(source.replace('"hello, world\\n"', '"hello, world!\\n"')) == published


# The grammar -----------------------------------------------------------------------------------------


def test_grammar_has_no_conflicts():
    """Lark resolves a shift/reduce conflict silently (as shift); the grammar must have none, so that
    where one item ends is the grammar's stated rule, not the parser generator's choice."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    lark_logger.addHandler(handler)
    level = lark_logger.level
    lark_logger.setLevel(logging.DEBUG)
    try:
        Lark(grammar_path().with_name("sqasm.lark").read_text(), parser="lalr", debug=True)
    finally:
        lark_logger.removeHandler(handler)
        lark_logger.setLevel(level)
    assert not [r for r in records if "conflict" in r.getMessage().lower()]


# The dialect -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("a b c; a:0 b:1 c:2", [3, 4, 5, 0, 1, 2]),
    ("a b; a:7 b:8", [3, 4, 3, 7, 8, 6]),  # a b -> a b ?
    ("a; a:7", [3, 3, 3, 7, 7, 6]),  # a -> a a ?
    ("1 2 3 4 5", [1, 2, 3, 4, 5]),  # more than three items: as written
    (". 1\n. 2 3", [1, 2, 3]),  # data lines: no completion
    ("1 2; .3; 4", [1, 2, 3, 3, 4, 4, 7]),  # ';' separates instructions, '.' may follow it
    ("?+11", [12, 12, 3]),  # the completing copy keeps its original's '?'
    (". ? ? ?", [1, 2, 3]),
    ("0 0 ?+3; 1 1 1", [0, 0, 6, 1, 1, 1]),
    ("5 -1", [4, 4, 3]),  # blanks around '-' are skipped: one item, 5-1
    ("5 - 1 + 2", [6, 6, 3]),
    ("5 (-1)", [5, -1, 3]),
    ("x:-y y:5", [-1, 5, 3]),  # unary minus on a forward reference keeps its sign (sqasm loses it)
    (". a-(b-c) a:10 b:4 c:3", [2, 10, 4, 3]),  # 1-(2-3): parentheses around forward references count too
    (". --5 -(-(2)) 1- -1", [7, 2]),  # --5 - -2, then 1 - -1
    (". 0 sp:-sp", [0, -1]),  # a label is defined before its own item is read
    ('. "Hi\\n" 0', [72, 105, 10, 0]),
    ('. "\\\\\\"\\\'\\0"', [92, 34, 39, 0]),
    ('. "é"', [0xC3, 0xA9]),  # one word per byte of the UTF-8 text
    ('. "a#b" # comment', [97, 35, 98]),
    ("'A' '\\n'", [65, 10, 3]),
    ('. s:"ab" s', [97, 98, 0]),
    ("Z\n\nL:\n\n# note\n. 9 L Z:0", [5, 5, 3, 9, 3, 0]),  # a label on its own line labels the next item
    ("Z Z end\n. Z:0\nend:", [3, 3, 4, 0]),  # a label after the last item: the address past the image
    ("a:b:7", [7, 7, 3]),
    ("\ufeff. 1\r\n. 2\r\n", [1, 2]),
])
def test_dialect(text, expected):
    assert words(text) == expected


def test_labels_and_origins():
    image = assemble("start: Z Z end\n. Z:0 end:-1\n", name="p.sq", bits=16)
    assert image == SubleqImage((3, 3, 4, 0, -1), {"start": 0, "Z": 3, "end": 4}, "p.sq", image.origins)
    assert image.origins[0] == Span("p.sq", 1, 8, 1, 9)
    assert image.origins[4] == Span("p.sq", 2, 11, 2, 13)


def test_completion_words_have_no_origin():
    image = assemble("a; a:7", name="p.sq", bits=32)
    assert image.origins[1] == image.origins[0] and image.origins[2] is None


@pytest.mark.parametrize("bits, value, fits", [
    (16, 65535, True), (16, 65536, False), (16, -32768, True), (16, -32769, False),
    (32, 2**31 - 1, True), (32, 2**31, False), (32, -(2**31), True), (32, -(2**31) - 1, False),
])
def test_word_width(bits, value, fits):
    text = f". {value}"
    if fits:
        assert words(text, bits) == [value]
    else:
        with pytest.raises(FleqError) as info:
            words(text, bits)
        assert info.value.code is E.LITERAL_RANGE and info.value.span.column == 3


def test_values_are_exact_and_checked_once():
    assert words(". 99999999999999999999 - 99999999999999999998", 16) == [1]


# Mistakes --------------------------------------------------------------------------------------------

# (id, source, code, line, column)
MISTAKES = [
    ("character", "a b\n  $x\n", E.UNEXPECTED_CHARACTER, 2, 3),
    ("control-character", "a \x01\n", E.UNEXPECTED_CHARACTER, 1, 3),
    ("unterminated-string", 'a\n. "abc\n', E.UNEXPECTED_CHARACTER, 2, 3),
    ("unterminated-char", "'a", E.UNEXPECTED_CHARACTER, 1, 1),
    ("long-char", "'ab'", E.UNEXPECTED_CHARACTER, 1, 1),
    ("multibyte-char", "'é'", E.UNEXPECTED_TOKEN, 1, 1),
    ("unknown-escape", '. "a\\tb"', E.UNEXPECTED_CHARACTER, 1, 5),
    ("hex", ". 0x1F", E.UNEXPECTED_TOKEN, 1, 3),
    ("glued", "a: 12ab", E.UNEXPECTED_TOKEN, 1, 4),
    ("spaced-colon", "a : 1", E.UNEXPECTED_CHARACTER, 1, 3),
    ("dot-inside", "a . b", E.UNEXPECTED_TOKEN, 1, 3),
    ("dangling-minus", "a b -\nc", E.UNEXPECTED_END, 1, 6),
    ("dangling-minus-semicolon", "a b -; c", E.UNEXPECTED_END, 1, 6),
    ("open-paren", ". (1 + 2", E.UNEXPECTED_END, 1, 9),
    ("close-paren", ". 1 + 2)", E.UNEXPECTED_TOKEN, 1, 8),
    ("undefined", "Z Z loop\n. Z:0 lop:0", E.UNDEFINED_LABEL, 1, 5),
    ("undefined-in-data", ". 1 2+zz", E.UNDEFINED_LABEL, 1, 7),
    ("duplicate", "a: 1 2 3\n. a: 4", E.DUPLICATE_LABEL, 2, 3),
    ("duplicate-trailing", "a: 1 2 3\na:", E.DUPLICATE_LABEL, 2, 1),
    ("out-of-range", "a b\n. a:1 b:70000", E.LITERAL_RANGE, 2, 9),
    ("out-of-range-sum", ". 65535+1", E.LITERAL_RANGE, 1, 3),
    ("huge", ". " + "9" * 5000, E.LITERAL_RANGE, 1, 3),
    ("empty", "", E.EMPTY_PROGRAM, 1, 1),
    ("only-comments", "# nothing\n\n  ;; \n.\n", E.EMPTY_PROGRAM, 1, 1),
    ("only-labels", "a: b:", E.EMPTY_PROGRAM, 1, 1),
]


@pytest.mark.parametrize("name, text, code, line, column", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_located(name, text, code, line, column):
    with pytest.raises(FleqError) as info:
        assemble(text, name="bad.sq", bits=16)
    error = info.value
    assert (error.code, error.span.file, error.span.line, error.span.column) == (code, "bad.sq", line, column)
    assert error.source_line == text.split("\n")[line - 1]
    assert str(error).startswith(f"bad.sq:{line}:{column}: error[{code.value}]: ")


def test_undefined_label_suggests_the_closest():
    with pytest.raises(FleqError) as info:
        assemble("Z Z loop\nlop: Z\n. Z:0", name="t.sq", bits=16)
    assert "'lop'" in info.value.message


@pytest.mark.parametrize("text", [". " + "(" * 20000 + "1" + ")" * 20000, ". " + "-" * 20000 + "1",
                                  ". " + "+".join(["x"] * 20000) + " x:1"])
def test_deep_and_long_expressions(text):
    assert len(words(text)) in (1, 2)


def test_bad_width_is_refused():
    with pytest.raises(FleqError) as info:
        assemble(". 1", name="t.sq", bits=8)
    assert info.value.code is E.BAD_BITS


# Random programs written out as text -----------------------------------------------------------------

WORD16 = st.integers(-(2**15), 2**16 - 1)


def _item(value: int, first: bool, style: int) -> str:
    """``value`` as an item; one that follows another cannot start with '-' (it would subtract)."""
    if value >= 0:
        return [str(value), f"({value})", f"{value + 7} - 7"][style]
    return f"-{-value}" if first and style == 0 else f"(-{-value})" if style < 2 else f"0-{-value}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(WORD16, min_size=1, max_size=5), st.booleans(), st.integers(0, 2),
                          st.sampled_from(["\n", ";", " ;\n", "\n\n# c\n"])), min_size=1, max_size=12))
def test_random_instructions_written_out_reassemble(instructions):
    text, expected = "", []
    for items, data, style, end in instructions:
        body = " ".join(_item(v, i == 0, style) for i, v in enumerate(items))
        text += (". " if data else "") + body + end
        expected += items
        if not data and len(items) == 1:
            expected.append(items[0])
        if not data and len(items) <= 2:
            expected.append(len(expected) + 1)
    assert words(text, 16) == expected


def _expression(draw, depth: int) -> tuple[str, int]:
    if depth == 0 or draw(st.booleans()):
        value = draw(st.integers(0, 1000))
        return str(value), value
    kind = draw(st.sampled_from(["+", "-", "neg"]))
    left, a = _expression(draw, depth - 1)
    if kind == "neg":
        return f"-({left})", -a
    right, b = _expression(draw, depth - 1)
    return f"({left}) {kind} ({right})", a + b if kind == "+" else a - b


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_expressions_evaluate_exactly(data):
    text, value = _expression(data.draw, 6)
    assert words(f". {text}") == [value]


# Raw images and load_image ---------------------------------------------------------------------------


def test_raw_image_separators():
    image = read_raw("1, -2,3\n  +4\t5,\n\n-6", name="p.dec", bits=16)
    assert image.words == (1, -2, 3, 4, 5, -6) and image.labels == {} and image.path == "p.dec"
    assert image.origins[3] == Span("p.dec", 2, 3, 2, 5)


# (id, text, code, line, column)
RAW_MISTAKES = [
    ("letter", "1 2\n3 x4", E.UNEXPECTED_TOKEN, 2, 3),
    ("hex", "0x10", E.UNEXPECTED_TOKEN, 1, 1),
    ("comment", "1 # one", E.UNEXPECTED_TOKEN, 1, 3),
    ("range", "1\n65536", E.LITERAL_RANGE, 2, 1),
    ("huge", "9" * 5000, E.LITERAL_RANGE, 1, 1),
    ("empty", " , \n", E.EMPTY_PROGRAM, 1, 1),
]


@pytest.mark.parametrize("name, text, code, line, column", RAW_MISTAKES, ids=[m[0] for m in RAW_MISTAKES])
def test_raw_mistake_is_located(name, text, code, line, column):
    with pytest.raises(FleqError) as info:
        read_raw(text, name="bad.dec", bits=16)
    assert (info.value.code, info.value.span.line, info.value.span.column) == (code, line, column)
    assert re.match(rf"bad.dec:{line}:{column}: error\[{code.value}\]", str(info.value))


def test_load_image_dispatches_on_the_suffix(tmp_path):
    (tmp_path / "p.sq").write_text("a; a:5\n")
    (tmp_path / "p.DEC").write_text("3 3 3\n")
    assert load_image(tmp_path / "p.sq", bits=16).labels == {"a": 3}
    assert load_image(tmp_path / "p.DEC", bits=16).words == (3, 3, 3)
    assert load_image("1,2", name="x.txt", bits=16).words == (1, 2)
    assert load_image(". 1", name="x.asq", bits=16).words == (1,)


@pytest.mark.parametrize("call, code", [
    (lambda tmp: load_image(tmp / "missing.sq", bits=16), E.FILE_NOT_FOUND),
    (lambda tmp: load_image(tmp, bits=16), E.FILE_NOT_FOUND),  # a directory
    (lambda tmp: load_image("1 2", name="p.fleq", bits=16), E.UNKNOWN_FORMAT),
    (lambda tmp: load_image("1 2", name="p.dec", bits=64), E.BAD_BITS),
])
def test_load_image_refusals(tmp_path, call, code):
    with pytest.raises(FleqError) as info:
        call(tmp_path)
    assert info.value.code is code


def test_load_image_reads_a_str_without_a_name_as_a_path(tmp_path):
    (tmp_path / "p.dec").write_text("1 2\n")
    assert load_image(str(tmp_path / "p.dec"), bits=16).path == str(tmp_path / "p.dec")
    assert load_image(tmp_path / "p.dec", name="shown.dec", bits=16).path == "shown.dec"
    with pytest.raises(FleqError) as info:
        load_image("1 2", bits=16)
    assert info.value.code is E.FILE_NOT_FOUND
