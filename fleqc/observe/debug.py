"""``fleqc debug PROG``: a terminal step debugger (textual, the ``debug`` extra).

The screen: the source of the instruction about to run (``>`` marks its line, ``*`` a
breakpoint, the cursor is reversed), the last executed step's trace line, the watched labels with
their values, and (transformer) the rows of X by block for one column: the current instruction's
column by default, ``[`` and ``]`` move it.

Keys: ``s`` step one instruction, ``p`` step back one (the run replayed to the step before), ``n`` next (run until the instruction after this one, stepping
over routine calls and loops back), ``c`` continue to a breakpoint or halt, ``r`` run to halt
(ignoring breakpoints), ``b`` toggle a breakpoint on the cursor's line (up/down move the cursor),
``:`` a command, ``q`` quit. Commands: ``break LINE|LABEL``, ``clear LINE|LABEL``,
``watch LABEL`` (a watchpoint: ``continue`` and ``next`` stop after a step that changes it; every
label is shown from the start), ``unwatch LABEL``, ``step [K]``, ``back [K]``, ``next``,
``continue``, ``run``, ``column K``. The ``>`` marker stays on the halt instruction once halted.

All the state lives in :class:`Debugger` (no textual needed), so the logic is tested directly and
the screen through textual's pilot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from fleqc.card.codes import decode_unsigned
from fleqc.runner import Run
from fleqc.steps import TraceEvent, format_value, origin
from fleqc.steps import file_lines as read_lines
from fleqc.program import included_labels, same_value

RUN_LIMIT = 1_000_000


class Debugger:
    """Breakpoints, watches and stepping over a :class:`fleqc.runner.Run`."""

    def __init__(self, machine: Run, max_steps: int = RUN_LIMIT, remake: Optional[Callable[[], Run]] = None) -> None:
        self.machine = machine
        self.max_steps = max_steps
        self.remake = remake  # a fresh Run of the same program and settings: steps back replay to a state
        self.watchpoints: list[str] = []  # labels `watch` named: continue stops when one changes
        self.changed: set[str] = set()  # the labels the last step wrote
        program = machine.program
        # (file, line) per instruction (a program that is memory words only, classic SUBLEQ, has none)
        self.lines = [origin(program, i) for i in getattr(program, "instructions", ())]
        self.breakpoints: set[tuple[str, int]] = set()
        hidden = included_labels(program.symbols, program.source_name)
        labels = sorted((s for s in program.symbols.values() if s.kind == "data"), key=lambda s: (s.address, s.name))
        self.watches: list[str] = [s.name for s in labels if s.name not in hidden and not s.hidden]
        self.last: Optional[TraceEvent] = None
        self.message = ""
        self.column: Optional[int] = None  # None: the current instruction's column

    # -- where we are ------------------------------------------------------------------------

    @property
    def pc(self) -> int:
        return self.machine.pc

    def location(self, pc: Optional[int] = None) -> tuple[str, int]:
        """(file, line) of instruction ``pc``; of the instruction about to run when None: in a Flow
        program, inside a stdlib routine, the user's line that called it (:meth:`routines`)."""
        if pc is None:
            pc = self.user_pc()[0]
        return self.lines[pc] if 0 <= pc < len(self.lines) else (self.machine.source_name, 0)

    def user_pc(self) -> tuple[int, tuple[str, ...]]:
        """(the user's instruction now running, the routines it entered: fleqc.steps.Callers)."""
        pc, callers = self.pc, self.machine.callers
        if callers is None:
            return pc, ()
        return callers.locate(pc, self.machine.cell)

    def routines(self) -> tuple[str, ...]:
        """The stdlib routines the current line called that the machine is inside, outermost first."""
        return self.user_pc()[1]

    def file_lines(self, file: Optional[str] = None) -> list[str]:
        return list(read_lines(file or self.location()[0]))

    # -- breakpoints and watches -----------------------------------------------------------

    def resolve(self, where: str) -> tuple[str, int]:
        """A line number (in the current file) or a code label -> (file, line)."""
        where = where.strip()
        if where.isdigit():
            return self.location()[0], int(where)
        symbol = self.machine.symbols.get(where)
        if symbol is None or symbol.kind != "code":
            raise ValueError(f"no line or code label {where!r}")
        return self.location(symbol.address)

    def toggle(self, file: str, line: int) -> bool:
        key = (file, line)
        if key in self.breakpoints:
            self.breakpoints.discard(key)
            return False
        if key not in self.lines:
            raise ValueError(f"line {line} holds no instruction")
        self.breakpoints.add(key)
        return True

    def watch(self, label: str) -> None:
        """Show ``label`` and make it a watchpoint: ``continue`` and ``next`` stop after a step that
        changes its value (every label is shown from the start; a watchpoint is what ``watch`` adds)."""
        symbol = self.machine.symbols.get(label)
        if symbol is None or symbol.kind != "data":
            raise ValueError(f"no data label {label!r}")
        if label not in self.watches:
            self.watches.append(label)
        if label not in self.watchpoints:
            self.watchpoints.append(label)

    def unwatch(self, label: str) -> None:
        if label in self.watches:
            self.watches.remove(label)
        if label in self.watchpoints:
            self.watchpoints.remove(label)

    def value(self, label: str):
        s = self.machine.symbols[label]
        cells = [self.machine.cell(s.address + k) for k in range(max(s.length, 1))]
        return cells[0] if len(cells) == 1 else cells

    def watched(self) -> list[tuple[str, str]]:
        out = []
        for label in self.watches:
            s = self.machine.symbols[label]
            cells = [self.machine.cell(s.address + k) for k in range(max(s.length, 1))]
            value = cells[0] if len(cells) == 1 else cells
            out.append((label, format_value(np.asarray(value)) if isinstance(value, list) else format_value(value)))
        printed = self.machine.options.get("output")
        if isinstance(printed, bytearray):  # a program that prints: its output so far
            out.append(("(output)", bytes(printed).decode("utf-8", "replace")))
        return out

    # -- stepping ----------------------------------------------------------------------------

    def _remember(self, event: TraceEvent) -> None:
        self.last = event
        self.changed = {a.label.split("+")[0] for a in event.writes}

    def _watch_stop(self) -> Callable[[TraceEvent], bool]:
        """A stop rule: true after a step that changed a watchpoint's value (the message says how)."""
        before = {label: self.value(label) for label in self.watchpoints}

        def changed(event: TraceEvent) -> bool:
            for access in event.writes:
                label = access.label.split("+")[0]
                if label in before:
                    now = self.value(label)
                    if not same_value(now, before[label]):
                        self.message = (f"watch: {label} changed from {_shown(before[label])} to {_shown(now)} "
                                        f"at step {event.step}")
                        self._watch_hit = True
                        return True
            return False

        return changed

    def _finish(self, done: int, why: str) -> int:
        m = self.machine
        if m.halted:
            self.message = f"halted after {m.steps} steps"
        else:
            self.message = why.format(done=done, steps=m.steps)
        return done

    def step(self, count: int = 1) -> int:
        if self.machine.halted:
            return self._finish(0, "")
        target = self.machine.steps + count
        done = self.machine.advance(count, on_event=self._remember, stop=lambda e: e.step >= target)
        return self._finish(done, "stepped {done}")

    def _at_breakpoint(self, event: TraceEvent) -> bool:
        return self.location(event.next_pc) in self.breakpoints

    def cont(self) -> int:
        self._watch_hit = False
        watched = self._watch_stop()
        done = self.machine.advance(self.max_steps, on_event=self._remember,
                                    stop=lambda e: watched(e) or self._at_breakpoint(e))
        if self._watch_hit and not self.machine.halted:
            return done
        at = self.location()
        return self._finish(done, f"breakpoint at line {at[1]} after {{done}} steps"
                            if at in self.breakpoints else "stopped after {done} steps (step limit)")

    def next(self) -> int:
        after = self.pc + 1
        self._watch_hit = False
        watched = self._watch_stop()
        done = self.machine.advance(
            self.max_steps, on_event=self._remember,
            stop=lambda e: e.next_pc == after or watched(e) or self._at_breakpoint(e))
        if self._watch_hit and not self.machine.halted:
            return done
        return self._finish(done, "next: {done} steps")

    def back(self, count: int = 1) -> int:
        """Step back ``count`` steps: the run is replayed from its start to that step (exactly the
        state it had: every backend is deterministic). Returns how many steps it went back."""
        if self.remake is None:
            self.message = "stepping back needs the debugger's own run (fleqc debug)"
            return 0
        target = max(self.machine.steps - max(count, 0), 0)
        went = self.machine.steps - target
        fresh = self.remake()
        if target > 0:
            fresh.advance(target - 1)
            fresh.advance(1, on_event=self._remember)
        else:
            self.last, self.changed = None, set()
        self.machine = fresh
        self.message = f"back {went} step{'s' if went != 1 else ''}: at step {target}"
        return went

    def run(self) -> int:
        done = self.machine.advance(self.max_steps, on_event=self._remember)
        return self._finish(done, "stopped after {done} steps (step limit)")

    # -- X -------------------------------------------------------------------------------------

    def current_column(self) -> Optional[int]:
        card = self.machine.card
        if card is None or self.machine.X is None:
            return None
        if self.column is not None:
            return self.column
        pc = self.pc
        return card.regions.instructions[0] + pc if 0 <= pc < card.instruction_count else 0

    def x_rows(self) -> list[tuple[str, str]]:
        """(block, its values in the current column) for every row block; codes also decoded."""
        card, column = self.machine.card, self.current_column()
        if column is None:
            return []
        rows = []
        for block in card.rows:
            values = self.machine.X[block.slice, column]
            text = describe(values, block.name)
            if block.size > 1 and block.size == card.rows["pos"].size and "  = " in text:
                text += f" ({self.name_of_column(int(text.rsplit('= ', 1)[1]))})"  # a code names a column
            rows.append((block.name, text))
        return rows

    def name_of_column(self, column: int) -> str:
        card = self.machine.card
        lo, hi = card.regions.memory
        if lo <= column < hi:
            return self.machine.names.cell(column - lo)
        lo, hi = card.regions.instructions
        if lo <= column < hi:
            return f"instruction {column - lo}"
        return "scratch" if column < card.regions.scratch[1] else "padding"

    def column_name(self) -> str:
        card, column = self.machine.card, self.current_column()
        if column is None:
            return ""
        lo, hi = card.regions.memory
        if lo <= column < hi:
            return f"column {column}: memory cell {self.machine.names.cell(column - lo)}"
        lo, hi = card.regions.instructions
        if lo <= column < hi:
            return f"column {column}: instruction {column - lo}"
        if column < card.regions.scratch[1]:
            return f"column {column}: {card.column_kind(column)}"
        return f"column {column}: padding"

    def command(self, text: str) -> str:
        """Run a typed command; returns the message shown."""
        words = text.split()
        if not words:
            return ""
        verb, args = words[0], words[1:]
        try:
            if verb in ("b", "break", "clear"):
                file, line = self.resolve(" ".join(args))
                if verb == "clear":
                    self.breakpoints.discard((file, line))
                    self.message = f"cleared line {line}"
                else:
                    on = self.toggle(file, line) if (file, line) not in self.breakpoints else True
                    self.message = f"breakpoint at {Path(file).name}:{line}" if on else ""
            elif verb in ("w", "watch"):
                for label in args:
                    self.watch(label)
                self.message = f"watching {', '.join(args)}"
            elif verb == "unwatch":
                for label in args:
                    self.unwatch(label)
                self.message = f"no longer watching {', '.join(args)}"
            elif verb in ("s", "step"):
                self.step(int(args[0]) if args else 1)
            elif verb in ("p", "back"):
                self.back(int(args[0]) if args else 1)
            elif verb in ("n", "next"):
                self.next()
            elif verb in ("c", "continue"):
                self.cont()
            elif verb in ("r", "run"):
                self.run()
            elif verb == "column":
                self.column = None if not args or args[0] == "pc" else int(args[0])
                self.message = self.column_name()
            else:
                self.message = f"unknown command {verb!r}"
        except (ValueError, IndexError) as exc:
            self.message = str(exc)
        return self.message


def _shown(value) -> str:
    return format_value(np.asarray(value)) if isinstance(value, list) else format_value(value)


def describe(values: np.ndarray, name: str) -> str:
    """A block's values: +/-/. for -1/+1/0 entries (with the code's number for +-1 codes), else numbers."""
    if np.all(np.isin(values, (-1.0, 0.0, 1.0))):
        text = "".join("+" if v > 0 else "-" if v < 0 else "." for v in values)
        if len(values) > 1 and np.all(values != 0):
            text += f"  = {decode_unsigned(values)}"
        return text
    return " ".join(format_value(float(v)) for v in values)


def make_app(debugger: Debugger):
    """The textual App over ``debugger`` (imported here: textual is an optional extra)."""
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.containers import Horizontal, Vertical, VerticalScroll
    from textual.widgets import DataTable, Footer, Header, Input, Static

    class DebugApp(App):
        TITLE = "fleqc debug"
        CSS = """
        #left { width: 3fr; }
        #right { width: 2fr; }
        #source { height: 1fr; border: round $primary; }
        #last { height: 3; border: round $secondary; }
        #watches { height: 1fr; border: round $primary; }
        #xrows { height: 1fr; border: round $secondary; }
        #status { height: 1; }
        """
        BINDINGS = [
            Binding("s", "step", "step"),
            Binding("p", "back", "step back"),
            Binding("n", "next", "next"),
            Binding("c", "cont", "continue"),
            Binding("r", "run", "run to halt"),
            Binding("b", "breakpoint", "breakpoint"),
            Binding("up", "cursor(-1)", "up", show=False, priority=True),
            Binding("down", "cursor(1)", "down", show=False, priority=True),
            Binding("left_square_bracket", "column(-1)", "column -", show=False),
            Binding("right_square_bracket", "column(1)", "column +", show=False),
            Binding("colon", "command", "command"),
            Binding("q", "quit", "quit"),
        ]

        def __init__(self) -> None:
            super().__init__()
            self.debugger = debugger
            self.cursor = debugger.location()[1] or 1

        def compose(self) -> ComposeResult:
            yield Header()
            with Horizontal():
                with Vertical(id="left"):
                    with VerticalScroll(id="source"):
                        yield Static(id="code")
                    yield Static(id="last")
                with Vertical(id="right"):
                    yield DataTable(id="watches")
                    with VerticalScroll(id="xrows"):
                        yield Static(id="x")
            yield Static(id="status")
            yield Input(placeholder=": break LINE|LABEL, watch LABEL, step K, back K, next, continue, run, column K",
                        id="command")
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one("#watches", DataTable)
            table.add_columns("label", "value")
            table.cursor_type = "none"
            self.query_one("#source").focus()
            self.refresh_view()

        # -- drawing ----------------------------------------------------------------------

        def refresh_view(self) -> None:
            d = self.debugger
            file, current = d.location()
            text = Text()
            for number, line in enumerate(d.file_lines(file), start=1):
                mark = ">" if number == current else " "  # at halt too: where the machine stopped
                bp = "*" if (file, number) in d.breakpoints else " "
                style = "bold on dark_green" if number == current else ""
                if number == self.cursor:
                    style += " reverse"
                text.append(f"{bp}{mark}{number:>4}  {line}\n", style=style.strip() or None)
            self.query_one("#code", Static).update(text)
            source = self.query_one("#source", VerticalScroll)
            inside = d.routines()
            source.border_title = Path(file).name + (f" (line {current} in {' > '.join(inside)})" if inside else "")
            source.scroll_to(y=max(self.cursor - 6, 0), animate=False)
            self.query_one("#last", Static).update(d.last.text().strip() if d.last else "(nothing executed yet)")
            table = self.query_one("#watches", DataTable)
            table.clear()
            for label, value in d.watched():  # watchpoints in bold; what the last step wrote marked
                shown = Text(label, style="bold" if label in d.watchpoints else "")
                table.add_row(shown, Text(value + ("  <- written" if label in d.changed else "")), key=label)
            rows = d.x_rows()
            x = self.query_one("#x", Static)
            if rows:
                x.update("\n".join(f"{name:<14} {values}" for name, values in rows))
                self.query_one("#xrows").border_title = d.column_name()
            else:
                x.update("(reference backend: no X)")
            m = d.machine
            state = "halted" if m.halted else "running"
            self.query_one("#status", Static).update(
                f" step {m.steps}  pc {m.pc}  {state}  [{m.backend}]  {d.message}")

        # -- actions ------------------------------------------------------------------------

        def _do(self, call) -> None:
            call()
            self.cursor = self.debugger.location()[1] or self.cursor
            self.refresh_view()

        def action_step(self) -> None:
            self._do(self.debugger.step)

        def action_back(self) -> None:
            self._do(self.debugger.back)

        def action_next(self) -> None:
            self._do(self.debugger.next)

        def action_cont(self) -> None:
            self._do(self.debugger.cont)

        def action_run(self) -> None:
            self._do(self.debugger.run)

        def action_cursor(self, delta: int) -> None:
            total = max(len(self.debugger.file_lines()), 1)
            self.cursor = min(max(self.cursor + delta, 1), total)
            self.refresh_view()

        def action_column(self, delta: int) -> None:
            d = self.debugger
            column = d.current_column()
            if column is not None:
                d.column = min(max(column + delta, 0), d.machine.card.X.shape[1] - 1)
                d.message = d.column_name()
            self.refresh_view()

        def action_breakpoint(self) -> None:
            d = self.debugger
            try:
                on = d.toggle(d.location()[0], self.cursor)
                d.message = f"breakpoint at line {self.cursor}" if on else f"cleared line {self.cursor}"
            except ValueError as exc:
                d.message = str(exc)
            self.refresh_view()

        def action_command(self) -> None:
            self.query_one("#command", Input).focus()

        def on_input_submitted(self, event: Input.Submitted) -> None:
            self.debugger.command(event.value)
            event.input.value = ""
            self.cursor = self.debugger.location()[1] or self.cursor
            self.query_one("#source").focus()
            self.refresh_view()

    return DebugApp()
