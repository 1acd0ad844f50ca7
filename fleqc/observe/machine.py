"""A program running on either backend, stepped from the outside one instruction (or many) at a time.

:class:`Machine` keeps the state of a run and advances it by executed steps. On the ``reference``
backend a step is the interpreter's ``step``; on the ``transformer`` backend it is one pass of the
executor's stepper (:func:`fleqc.transformer.executor.stepper`, the incremental engine by
default), kept from step to step: the state after each pass is read from X with the card's
decoders (pc from the pc rows, each cell from its memory column).

Every executed step yields a :class:`fleqc.observe.trace.TraceEvent` built from the state before
and after it, so a trace, a report and the debugger all see the same thing.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from fleqc.backends import check_mode
from fleqc.errors import ErrorCode, FleqError
from fleqc.isa.state import DEFAULT_MAX_STEPS, State
from fleqc.machine.card import Card
from fleqc.machine.card_to_program import card_to_program
from fleqc.machine.program_to_card import program_to_card
from fleqc.machines import machine_of, weights_for
from fleqc.program import LinkedProgram
from fleqc.transformer.executor import stepper
from fleqc.transformer.layers import LoopedTransformer

from fleqc.observe.trace import Names, TraceEvent, make_event

EventHandler = Callable[[TraceEvent], None]
StopRule = Callable[[TraceEvent], bool]


class Machine:
    """A run in progress: ``pc``, ``steps``, ``halted``, the memory, and (transformer) ``X``.

    ``target`` is a card or a linked program; a program runs on the transformer through the card
    of the smallest machine that fits (or ``columns`` and the machine's ``options``, e.g. ``cell``).
    """

    def __init__(
        self,
        target: Union[Card, LinkedProgram],
        backend: str = "transformer",
        *,
        mode: str = "softmax",
        weights: Optional[LoopedTransformer] = None,
        columns: Optional[int] = None,
        engine: str = "auto",
        **options: Any,
    ) -> None:
        if backend not in ("transformer", "reference"):
            raise FleqError(ErrorCode.BAD_CONFIG, f"unknown backend {backend!r}: use 'transformer' or 'reference'")
        self.backend = backend
        self.mode = mode
        self.engine = engine
        self._loop = None  # the transformer's stepper, made at the first pass
        self._pending = None
        self._checked = False
        self.card: Optional[Card] = None
        self.model: Optional[LoopedTransformer] = None
        if backend == "transformer":
            card = target if isinstance(target, Card) else program_to_card(target, columns, **options)
            check_mode(card.machine, mode)
            card = card.machine.prepare(card, options)
            self.card = card
            self.model = weights if weights is not None else weights_for(card.config)
            card.machine.check_weights_fit(self.model, card.config, card.source_name)
            self.program = card_to_program(card)  # the instructions as the card holds them
            self.X = np.array(card.X, dtype=np.float64)
            self._health = card.machine.health_check(self.model, card)
            self._observer = card.machine.observer(card, options)
        else:
            self.program = card_to_program(target) if isinstance(target, Card) else target
            self.card = target if isinstance(target, Card) else None
            self._interpreter = machine_of(self.program).reference
            self.state: State = self._interpreter.initial_state(self.program)
            self.X = None
        self.names = Names(self.program.symbols)
        self.steps = 0
        self.halted = False

    # -- the state ---------------------------------------------------------------------------

    @property
    def pc(self) -> int:
        if self.backend == "transformer":
            return self.card.read_pc(self.X)
        return self.state.pc

    def cell(self, address: int) -> Any:
        if self.backend == "transformer":
            return self.card.machine.read_cell(self.card, self.X, address)
        return self.state.memory[address]

    def memory(self) -> list:
        if self.backend == "transformer":
            return self.card.read_memory(self.X)
        return list(self.state.memory)

    @property
    def symbols(self) -> dict:
        return self.program.symbols

    @property
    def source_name(self) -> str:
        return self.program.source_name

    # -- stepping ----------------------------------------------------------------------------

    def advance(
        self,
        max_steps: int = DEFAULT_MAX_STEPS,
        on_event: Optional[EventHandler] = None,
        stop: Optional[StopRule] = None,
        on_X: Optional[Callable[[int, np.ndarray], None]] = None,
        on_count: Optional[Callable[[int], None]] = None,
    ) -> int:
        """Execute up to ``max_steps`` steps; returns how many ran.

        ``on_event(event)`` sees every executed step; ``stop(event)`` true pauses right after it.
        When the steps run out without a pause, the machine checks (at no step's cost) whether it
        has halted, as ``fleqc run`` does. ``on_X(step, X)`` (transformer) sees X after each pass;
        ``on_count(steps)`` only the count (no event is decoded unless ``on_event`` or ``stop``).
        """
        if self.halted or max_steps <= 0:
            if max_steps == 0 and not self.halted:
                self._check_halted()
            return 0
        if self.backend == "transformer":
            return self._advance_transformer(max_steps, on_event, stop, on_X, on_count)
        return self._advance_reference(max_steps, on_event, stop, on_count)

    def _advance_reference(self, max_steps: int, on_event, stop, on_count=None) -> int:
        events = on_event is not None or stop is not None
        done = 0
        while done < max_steps:
            following = self._interpreter.step(self.program, self.state)
            if following.equal(self.state):
                self.halted = True
                return done
            before = self.state
            self.state = following
            self.steps += 1
            done += 1
            if on_count is not None:
                on_count(self.steps)
            if not events:
                continue
            event = make_event(self.program, self.names, self.steps, before.pc, following.pc,
                               before.memory.__getitem__, following.memory.__getitem__)
            if on_event is not None:
                on_event(event)
            if stop is not None and stop(event):
                return done
        self._check_halted()
        return done

    def _check_halted(self) -> None:
        if self.backend == "transformer":
            self._advance_transformer(0, None, None, None, None)
            return
        try:
            self.halted = self._interpreter.step(self.program, self.state).equal(self.state)
        except FleqError:
            self.halted = False

    def _next_pass(self) -> tuple[np.ndarray, np.ndarray]:
        """(columns changed, X after) of the next pass, computed once: a pass looked at to see whether
        the machine halted is kept for the step that follows."""
        if self._pending is None:
            if self._loop is None:
                self._loop = stepper(self.model, self.X, self.mode, self.engine)
            changed = self._loop.step()
            self._pending = (changed, np.array(self._loop.X))
        return self._pending

    def _advance_transformer(self, max_steps: int, on_event, stop, on_X, on_count) -> int:
        card = self.card
        events = on_event is not None or stop is not None
        done = 0
        while True:
            changed, Y = self._next_pass()
            if not len(changed):
                self.halted = True
                return done
            if done == max_steps:
                self.halted = False
                return done
            self._pending = None
            step = self.steps + 1
            self._health(Y, step, changed if self._checked else None)  # the first check sees all of X
            self._checked = True
            before, self.X = self.X, Y
            self.steps = step
            done += 1
            if self._observer is not None:
                self._observer(self.steps, Y)
            if on_X is not None:
                on_X(self.steps, Y)
            if on_count is not None:
                on_count(self.steps)
            if events:
                event = make_event(self.program, self.names, self.steps, card.read_pc(before), card.read_pc(Y),
                                   lambda a: card.machine.read_cell(card, before, a),
                                   lambda a: card.machine.read_cell(card, Y, a))
                if on_event is not None:
                    on_event(event)
                if stop is not None and stop(event):
                    return done
