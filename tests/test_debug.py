"""`fleqc debug`: the debugger's logic (no textual needed) and its screen through textual's pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import fleqc
from fleqc.observe.debug import Debugger, describe
from fleqc.runner import Run

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def debugger(backend: str = "transformer", sample: str = "gcd.fleq") -> Debugger:
    return Debugger(Run(fleqc.compile(SAMPLES / sample), backend))


@pytest.mark.parametrize("backend", ["transformer", "reference"])
def test_step_next_continue_run(backend):
    d = debugger(backend)
    assert d.location()[1] == 21 and d.watches[:2] == ["a", "b"]
    d.step()
    assert d.machine.steps == 1 and d.pc == 1 and d.last.line == 21
    d.command("break mod")  # a code label: line 25
    d.cont()
    assert d.location()[1] == 25 and "breakpoint" in d.message
    d.command("step 2")
    assert d.machine.steps == 6 and d.location()[1] == 25  # the jmp mod loop
    d.command("clear 25")
    d.command("break 30")
    d.cont()
    assert d.location()[1] == 30
    d.next()
    assert d.location()[1] == 31
    d.run()
    assert d.machine.halted and d.machine.steps == 67 and dict(d.watched())["a"] == "21"
    assert "halted after 67 steps" in d.message


def test_next_steps_over_a_loop():
    d = debugger("reference")
    d.command("break 25")
    d.cont()  # at mod: subleq b, a, over (loops back to itself through jmp mod)
    d.command("clear 25")
    d.command("next")
    assert d.pc == 5 and d.machine.steps == 5


def test_watch_and_errors():
    d = debugger("reference", "fleq_counter_loop.fleq")
    assert "no data label" in d.command("watch nothing")
    d.command("unwatch total")
    assert "total" not in d.watches
    d.command("watch total")
    assert d.watches[-1] == "total"
    assert "holds no instruction" in d.command("break 1")
    assert "unknown command" in d.command("fly")
    d.command("step 3")
    assert dict(d.watched())["total"] == "100.0"


def test_x_rows_of_the_current_column():
    d = debugger()
    rows = dict(d.x_rows())
    assert rows["instr_a"].endswith(f"= {d.machine.card.regions.memory[0] + 6} (zero)")  # subleq zero, b, done
    assert rows["instr_c"].endswith("(instruction 15)")
    assert d.column_name() == "column 9: instruction 0"
    d.command("column 2")
    assert d.column_name() == "column 2: memory cell b" and dict(d.x_rows())["mem"].startswith("-")
    assert describe(__import__("numpy").array([0.5, 2.0]), "mem") == "0.5 2.0"
    assert debugger("reference").x_rows() == []


def test_screen_through_the_pilot():
    pytest.importorskip("textual")
    from textual.widgets import DataTable, Static

    from fleqc.observe.debug import make_app

    d = debugger()
    app = make_app(d)

    def text(selector: str) -> str:
        return str(app.query_one(selector, Static).render())

    async def drive() -> None:
        # each press returns once the app has handled the key (textual's pilot waits for the screen,
        # raising WaitForScreenTimeout after 30 s: a bound on a hang, these keys take milliseconds)
        async with app.run_test(size=(140, 45)) as pilot:
            assert " >  21  loop:   subleq zero, b, done" in text("#code")
            await pilot.press("s")
            assert d.machine.steps == 1 and "gcd.fleq:21" in text("#last")
            for _ in range(3):
                await pilot.press("down")
            await pilot.press("b")  # the cursor is on line 25 (mod:)
            assert (d.location()[0], 25) in d.breakpoints and "*   25  mod:" in text("#code")
            await pilot.press("c")
            assert d.location()[1] == 25 and "*>  25  mod:" in text("#code")
            await pilot.press("colon")
            await pilot.press(*"watch neg_b")
            await pilot.press("enter")
            table = app.query_one("#watches", DataTable)
            assert "neg_b" in [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            assert "instr_a" in text("#x")
            await pilot.press("right_square_bracket")
            assert "column" in text("#status")
            await pilot.press("r")
            assert d.machine.halted and "halted" in text("#status")
            await pilot.press("q")

    asyncio.run(drive())


def test_fleq_program_on_the_transformer():
    d = debugger("transformer", "fleq_counter_loop.fleq")
    d.command("break done")
    d.cont()
    assert d.location()[1] == 23 and d.machine.steps == 39 and not d.machine.halted
    d.run()
    assert d.machine.halted and dict(d.watched())["total"] == "385.0"
    rows = dict(d.x_rows())
    assert "mem" in rows and "pos" in rows
