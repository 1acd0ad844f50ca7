"""The one run path: a :class:`Run` does a run's set-up once and steps it on any backend.

Everything that runs a program goes through here: the command line, the Python API, the trace, the
HTML report, the debugger, ``fleqc show`` and the progress display are listeners of a Run, not other
ways to run. The set-up, in order: the card (built for a program, or a loaded card checked
completely), the attention mode the machine is exact in, the machine's ``prepare`` (an input tape),
the weights (built, or given and checked to fit), the memory the engine will need, the health check
after every pass and the machine's observer (an output tape streamed to the host).

Backends behind the same stepping interface:

- ``reference``: the machine's plain-Python interpreter (the oracle);
- ``transformer`` (``numpy``): the frozen transformer looped over X by fleqc.transformer, with the
  ``engine`` that evaluates a pass (auto, incremental, sparse, dense: the same function);
- ``torch``, ``onnx``: the same weights in PyTorch or ONNX Runtime (fleqc.interop).

:meth:`Run.finish` runs to the end in as few calls as the engine allows (the whole loop inside the
engine); :meth:`Run.advance` steps one executed instruction at a time for listeners that need each
step (events decoded from the state before and after it, or X after each pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union

import numpy as np

from fleqc.card.card import Card
from fleqc.card.check import validate_card
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import LANGUAGES, card_to_program, machine_of, program_to_card, weights_for
from fleqc.machines.base import Machine, Options
from fleqc.npzfile import memory_limit
from fleqc.program import values_by_label
from fleqc.state import DEFAULT_MAX_STEPS
from fleqc.steps import Callers, Names, TraceEvent
from fleqc.threads import chosen_blas_threads
from fleqc.transformer import run as transformer_loop
from fleqc.transformer.executor import ENGINES, MODES, stepper
from fleqc.transformer.layers import LoopedTransformer
from fleqc.transformer.memory import estimate_run_bytes

Backend = Literal["transformer", "reference", "torch", "onnx"]
BACKENDS: tuple[str, ...] = ("transformer", "numpy", "torch", "onnx", "reference")  # numpy: the transformer
EventHandler = Callable[[TraceEvent], None]
StopRule = Callable[[TraceEvent], bool]


@dataclass(frozen=True)
class Result:
    """How a run ended and the final value of every data label."""

    halted: bool
    steps: int
    memory: dict[str, Any]
    pc: int
    backend: str
    stats: Optional[dict] = field(default=None, compare=False)  # the engine's figures, when asked for

    def to_json(self) -> dict:
        out = {
            "halted": self.halted,
            "steps": self.steps,
            "memory": {k: _jsonable(v) for k, v in self.memory.items()},
        }
        if self.stats is not None:
            out["engine"] = self.stats
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def check_backend(backend: str) -> str:
    """The backend's canonical name (``numpy`` is the transformer); BAD_CONFIG for any other."""
    if backend == "numpy":
        return "transformer"
    if backend not in BACKENDS:
        raise FleqError(ErrorCode.BAD_CONFIG,
                        f"unknown backend {backend!r}: use 'transformer' (or 'numpy'), 'reference', 'torch' or 'onnx'")
    return backend


def check_mode(machine: Machine, mode: str) -> None:
    """Refuse an attention mode the machine's weights are not exact in."""
    if mode not in MODES:
        raise FleqError(ErrorCode.BAD_CONFIG, f"unknown attention mode {mode!r}: use 'softmax' or 'hardmax'")
    if mode not in machine.modes:
        raise FleqError(
            ErrorCode.BAD_CONFIG,
            f"the {machine.title} machine runs in {' or '.join(machine.modes)} mode only: "
            f"its weights are exact in no other",
        )


def check_memory(model: LoopedTransformer, config: Any, engine: str = "dense") -> None:
    """Refuse, before the first pass, a run that would need more memory than fleqc may use."""
    need, limit = estimate_run_bytes(model, config.columns, engine=engine), memory_limit()
    if need > limit:
        why = "its caches grow with n" if engine == "incremental" else "its attention scores grow as n^2"
        raise FleqError(
            ErrorCode.OUT_OF_MEMORY,
            f"running the {config.describe()} on the {engine} engine needs about {_size(need)} of "
            f"memory ({why}), more than the {_size(limit)} available (FLEQC_MEMORY_LIMIT, or the "
            "memory free now); use fewer --columns" + ("" if engine == "incremental" else " or --engine incremental"),
        )


def _size(count: float) -> str:
    """A number of bytes in words: 1.5 GiB, 300 MiB, 97.7 KiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} bytes"


class PassStepper:
    """Any pass function X -> X' stepped over one card (torch, ONNX Runtime): ``step()`` returns
    the columns that changed, as fleqc.transformer's steppers do."""

    def __init__(self, one_pass: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> None:
        self.one_pass, self.X, self.stats = one_pass, np.array(X, dtype=np.float64), None

    def step(self) -> np.ndarray:
        Y = np.asarray(self.one_pass(self.X), dtype=np.float64)
        changed = np.flatnonzero(np.any(Y != self.X, axis=0))
        self.X = Y
        return changed


def interop_engine(model: LoopedTransformer, backend: str, mode: str = "softmax", device: Optional[str] = None) -> Any:
    """The machine in PyTorch or ONNX Runtime: an object with ``run(X, max_steps=, check=, on_step=)``
    and ``pass_numpy(X)`` (fleqc.interop; imported only when asked for)."""
    from fleqc.interop import require  # torch and onnxruntime load slowly: only for these backends

    if backend == "torch":
        require("torch")
        from fleqc.interop.torch_module import to_torch

        return to_torch(model, mode=mode, device=device)
    require("onnx")
    if device not in (None, "cpu"):
        raise FleqError(ErrorCode.BAD_CONFIG, "--backend onnx runs on ONNX Runtime's CPU provider: use --device cpu")
    from fleqc.interop.onnx_export import OnnxMachine

    return OnnxMachine(model, mode=mode)


class Run:
    """A run in progress: ``pc``, ``steps``, ``halted``, the memory, and (transformer) ``X``.

    ``target`` is a card (checked completely first) or a compiled program; a program runs on the
    transformer through the card of the smallest machine that fits (or ``columns`` and the
    machine's ``options``, e.g. ``cell``). ``options`` are the run's machine options (``bits``,
    ``cell``, an ``input`` stream, an ``output`` sink). ``stats``: keep the engine's figures.
    ``health_check=False`` and ``validate=False`` only for tests of those checks themselves.
    """

    def __init__(
        self,
        target: Union[Card, Any],
        backend: str = "transformer",
        *,
        mode: str = "softmax",
        engine: str = "auto",
        weights: Optional[LoopedTransformer] = None,
        columns: Optional[int] = None,
        device: Optional[str] = None,
        stats: bool = False,
        health_check: bool = True,
        validate: bool = True,
        **options: Any,
    ) -> None:
        self.backend = check_backend(backend)
        if engine not in ENGINES:
            raise FleqError(ErrorCode.BAD_CONFIG, f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
        self.mode, self.engine, self.device, self.timed = mode, engine, device, stats
        self.options: Options = options
        self.steps, self.halted = 0, False
        self._program: Any = None
        self._names: Optional[Names] = None
        self._callers: Any = False  # not yet looked at
        self.card: Optional[Card] = None
        self.model: Optional[LoopedTransformer] = None
        self.X: Optional[np.ndarray] = None
        self._stats: Any = None
        if isinstance(target, Card):
            if validate or self.backend == "reference":
                self._program, pc = validate_card(target)
            else:
                pc = target.read_pc()
            self.machine: Machine = target.machine
        else:
            self._program, pc, self.machine = target, 0, machine_of(target)
        if self.backend == "reference":
            if isinstance(target, Card):
                self.machine.prepare(target, options)  # what the card cannot take (a long input) is refused on both
            self.card = target if isinstance(target, Card) else None
            self._reference = self.machine.reference_stepper(self._program, pc, options)
            return
        card = target if isinstance(target, Card) else program_to_card(target, columns, **options)
        check_mode(self.machine, mode)
        card = self.machine.prepare(card, options)
        self.card = card
        self.model = weights if weights is not None else weights_for(card.config)
        self.machine.check_weights_fit(self.model, card.config, card.source_name)
        if self.backend == "transformer":
            check_memory(self.model, card.config, engine)
        else:
            self._interop = interop_engine(self.model, self.backend, mode, device)
        self._health = self.machine.health_check(self.model, card) if health_check else None
        self._observer = self.machine.observer(card, options)
        self.X = np.array(card.X, dtype=np.float64)
        self._loop: Any = None  # the engine's stepper, made at the first stepped pass
        self._pending: Optional[tuple[np.ndarray, np.ndarray]] = None
        self._checked = False

    # -- the state ---------------------------------------------------------------------------

    @property
    def program(self) -> Any:
        """The program as the card holds it (decoded from the card when the run started from one)."""
        if self._program is None:
            self._program = card_to_program(self.card)
        return self._program

    @property
    def names(self) -> Names:
        if self._names is None:
            self._names = Names(self.program.symbols)
        return self._names

    @property
    def callers(self) -> Optional[Callers]:
        """Where the program's routine steps were called from (a Flow program: fleqc.steps.Callers)."""
        if self._callers is False:
            self._callers = Callers.of(self.program, LANGUAGES)
        return self._callers

    @property
    def symbols(self) -> dict:
        return self.card.symbols if self.card is not None else self.program.symbols

    @property
    def source_name(self) -> str:
        return self.card.source_name if self.card is not None else self.program.source_name

    @property
    def pc(self) -> int:
        if self.backend == "reference":
            return self._reference.pc
        return self.card.read_pc(self.X)

    def cell(self, address: int) -> Any:
        if self.backend == "reference":
            return self._reference.cell(address)
        return self.machine.read_cell(self.card, self.X, address)

    def memory(self) -> list:
        if self.backend == "reference":
            return self._reference.memory()
        return self.card.read_memory(self.X)

    def result(self) -> Result:
        """The run as it stands: halted, steps, every data label's value, pc, the engine's figures."""
        figures = self._stats.to_json() if (self.timed and self._stats is not None) else None
        return Result(self.halted, self.steps, values_by_label(self.symbols, self.memory()), self.pc, self.backend,
                      figures)

    # -- running -----------------------------------------------------------------------------

    def finish(self, max_steps: int = DEFAULT_MAX_STEPS, on_count: Optional[Callable[[int], None]] = None) -> Result:
        """Run until the program halts or ``max_steps`` more steps have run, with nothing watching
        each step but ``on_count(steps)`` (a progress display): the whole loop runs inside the engine."""
        if self.steps == 0 and not self.halted and (on_count is None or self.backend != "reference"):
            if self.backend == "reference":
                self._finish_reference(max_steps)
            else:
                self._finish_transformer(max_steps, on_count)
        else:
            self.advance(max_steps, on_count=on_count)
        return self.result()

    def _finish_reference(self, max_steps: int) -> None:
        outcome = self.machine.run_reference(self.program, max_steps, self._reference.pc, self.options)
        self._reference = _Finished(outcome.state, outcome.halted)
        self.steps, self.halted = outcome.steps, outcome.halted

    def _finish_transformer(self, max_steps: int, on_count: Optional[Callable[[int], None]]) -> None:
        if self.backend == "transformer":  # the engine may run many passes per call (executor.run)
            with chosen_blas_threads():
                outcome = transformer_loop(self.model, self.X, max_steps=max_steps, mode=self.mode, check=self._health,
                                           engine=self.engine, timed=self.timed, on_step=self._observer,
                                           on_count=on_count)
            self._stats = outcome.stats
        else:
            on_step = self._observer
            if on_count is not None:
                observer = self._observer

                def on_step(step: int, X: np.ndarray) -> None:
                    if observer is not None:
                        observer(step, X)
                    on_count(step)

            outcome = self._interop.run(self.X, max_steps=max_steps, check=self._health, on_step=on_step)
        self.X, self.steps, self.halted = outcome.X, outcome.steps, outcome.halted

    def advance(
        self,
        max_steps: int = DEFAULT_MAX_STEPS,
        on_event: Optional[EventHandler] = None,
        stop: Optional[StopRule] = None,
        on_X: Optional[Callable[[int, np.ndarray], None]] = None,
        on_count: Optional[Callable[[int], None]] = None,
    ) -> int:
        """Execute up to ``max_steps`` steps, one at a time; returns how many ran.

        ``on_event(event)`` sees every executed step (a :class:`fleqc.steps.TraceEvent`, built by the
        machine from the state before and after it); ``stop(event)`` true pauses right after it.
        When the steps run out without a pause, the run checks (at no step's cost) whether it has
        halted. ``on_X(step, X)`` (transformer backends) sees X after each pass; ``on_count(steps)``
        only the count (no event is decoded unless ``on_event`` or ``stop``).
        """
        if self.halted or max_steps < 0:
            return 0
        if self.backend == "reference":
            return self._advance(max_steps, on_event, stop, on_X, on_count)
        # BLAS limited once for the whole call: threadpoolctl scans the process's libraries each time
        # it is entered (about 0.8 ms, more than a pass of the engine), so never once per pass
        with chosen_blas_threads():
            return self._advance(max_steps, on_event, stop, on_X, on_count)

    def _advance(self, max_steps: int, on_event: Optional[EventHandler], stop: Optional[StopRule],
                 on_X: Optional[Callable[[int, np.ndarray], None]], on_count: Optional[Callable[[int], None]]) -> int:
        if max_steps == 0:
            self._check_halted()
            return 0
        events = on_event is not None or stop is not None
        done = 0
        while done < max_steps:
            moved = self._step(events)
            if moved is None:
                self.halted = True
                return done
            done += 1
            if on_X is not None and self.X is not None:
                on_X(self.steps, self.X)
            if on_count is not None:
                on_count(self.steps)
            if events:
                pc, next_pc, before, after = moved
                event = self.machine.describe_step(self.program, self.names, self.steps, pc, next_pc, before, after)
                if self.callers is not None:  # a Flow step inside a stdlib routine: the calling line
                    event = self.callers.attribute(self.program, event, after)
                if on_event is not None:
                    on_event(event)
                if stop is not None and stop(event):
                    return done
        self._check_halted()
        return done

    def _step(self, events: bool) -> Optional[tuple]:
        """One executed step: (pc before, pc after, read before, read after) when ``events``, else
        (); None at a fixed point (the run has halted)."""
        if self.backend == "reference":
            stepper_ = self._reference
            pc, before = stepper_.pc, (_snapshot(stepper_) if events else None)
            if not stepper_.step():
                return None
            self.steps += 1
            return (pc, stepper_.pc, before, stepper_.cell) if events else ()
        changed, Y = self._next_pass()
        if not len(changed):
            return None
        self._pending = None
        self.steps += 1
        if self._health is not None:
            self._health(Y, self.steps, changed if self._checked else None)  # the first check sees all of X
        self._checked = True
        X, self.X = self.X, Y
        if self._observer is not None:
            self._observer(self.steps, Y)
        if not events:
            return ()
        card, machine = self.card, self.machine
        return (card.read_pc(X), card.read_pc(Y), lambda a: machine.read_cell(card, X, a),
                lambda a: machine.read_cell(card, Y, a))

    def _check_halted(self) -> None:
        if self.backend == "reference":
            self.halted = self._reference.halted()
            return
        changed, _ = self._next_pass()
        self.halted = not len(changed)

    def _next_pass(self) -> tuple[np.ndarray, np.ndarray]:
        """(columns changed, X after) of the next pass, computed once: a pass looked at to see whether
        the run halted is kept for the step that follows."""
        if self._pending is None:
            if self._loop is None:
                if self.backend == "transformer":
                    self._loop = stepper(self.model, self.X, self.mode, self.engine, self.timed)
                else:
                    self._loop = PassStepper(self._interop.pass_numpy, self.X)
            changed = self._loop.step()  # inside advance's chosen_blas_threads
            self._stats = self._loop.stats
            self._pending = (changed, np.array(self._loop.X))
        return self._pending


class _Finished:
    """The reference's state after a whole run (machine.run_reference): read, not stepped further."""

    def __init__(self, state: Any, halted: bool) -> None:
        self.state, self._halted = state, halted

    @property
    def pc(self) -> int:
        return self.state.pc

    def cell(self, address: int) -> Any:
        return self.state.memory[address]

    def memory(self) -> list:
        return list(self.state.memory)

    def halted(self) -> bool:
        return self._halted

    def step(self) -> bool:
        raise FleqError(ErrorCode.BAD_CONFIG, "this run went to its end in one call; start a new Run to step it")


def _snapshot(reference: Any) -> Callable[[int], Any]:
    """A reader of the memory as it is now (a copy: some interpreters change their state in place)."""
    return reference.memory().__getitem__


def run(target: Union[Card, Any], backend: str = "transformer", *, max_steps: int = DEFAULT_MAX_STEPS,
        **settings: Any) -> Result:
    """Run ``target`` to its end on ``backend`` (see :class:`Run` for the settings)."""
    return Run(target, backend, **settings).finish(max_steps)
