"""The Machine interface: everything fleqc knows about one machine, in one object.

A machine is a configuration class, a residual stream of named row blocks, a weight recipe, a card
codec and a reference interpreter. Every layer of the toolchain that used to ask "is this SUBLEQ or
FLEQ?" asks the machine object instead; the registry (:mod:`fleqc.machines`) maps names to
machines, and the name is also the ``kind`` saved in card and weights metadata::

    source file --machine.compile--> program --machine.config_for--> config
    program, config --machine.encode--> Card (X + reading guide) --machine.decode--> program
    config --machine.build--> LoopedTransformer (cached per config by fleqc.machines.weights_for)
    X after each pass --machine.health_check / machine.observer--> faults, I/O
    program --machine.run_reference--> the oracle the transformer runs in lockstep with

The generic executor (:mod:`fleqc.transformer`) never sees a machine: it runs weights on X.

What a machine provides (``M`` is an instance, ``config`` an instance of ``M.config_class``):

Identity and options
    ``name``            registry key; ``config.kind``; ``program.machine``; the metadata ``kind``.
    ``title``           how messages name it ("SUBLEQ").
    ``config_class``    frozen dataclass: ``columns``, ``kind``, ``to_dict``/``from_dict``,
                        ``describe()``; every numeric design constant the weights depend on.
    ``options``         the :class:`MachineOption` s it adds to the command line (``--bits``);
                        their values reach ``config_for`` and ``config_from_options`` by name.
    ``default_columns`` the columns ``fleqc weights`` builds when none are asked for.
    ``modes``           the attention modes its weights are exact in ("softmax", "hardmax").
    ``suffixes``        source-file suffixes it claims (``.fleq``: the FLEQ language, whose
                        ``.machine`` directive then picks the machine).
    ``language``        a :class:`fleqc.frontend.dialect.Dialect` (the directives, literals and
                        instruction forms it adds to the FLEQ language), or None for a machine
                        whose programs are written in another format.

Programs and configurations
    ``compile(text, path, options)``   a source file's text -> its program (any object with
                        ``machine`` (the name), ``symbols`` and ``source_name``). The default runs
                        the FLEQ language front end.
    ``config_for(program, columns, options)``  the smallest configuration that holds the program
                        (or the one ``columns``/``options`` ask for); PROGRAM_TOO_LARGE otherwise.
    ``config_from_options(columns, options)``  the configuration ``fleqc weights`` builds.
    ``config_from_dict(data)``  a saved configuration (metadata of cards and weights).

Weights
    ``rows(config)``    the :class:`fleqc.card.rows.RowSpace` of X.
    ``build(config)``   the machine's :class:`LoopedTransformer` (uncached; use
                        ``fleqc.machines.weights_for``); ``layer_kinds`` ("AAFAF": A attention,
                        F feed-forward) states its shape, checked on loaded weights;
                        ``kinds(config)`` where the shape depends on the configuration.
    ``cache_weights``   True where building takes long enough (FLEQ: about 0.1 s) that
                        ``weights_for`` keeps the built weights on disk between processes.
    ``ternary_rows(config)``  rows the health check holds to {-1, 0, +1} (default: all).
    ``check_weights_fit(model, config, where)``  refuse weights of another machine or size.

Cards
    ``encode(program, config, start)``  the Card (X plus row blocks, column regions, symbols).
    ``decode(card)``    the program read back out of X (so any card can run on the reference).
    ``read_cell(card, X, address)``, ``read_memory(card, X)``  a memory cell's value; all of them.
    ``check_card(card)``  (program, pc) of a loaded card, BAD_CARD unless the card is exactly
                        the one ``encode`` makes for them; by default the generic check of
                        fleqc.card.check (regions, symbols, pc, then the rebuild), which
                        calls ``check_cells(card)`` (BAD_CARD unless the per-cell metadata, FLEQ:
                        shapes, fits) and ``decode``.
    ``pc_column(card)``, ``column_name(card, column)``  where the pc is read; names of scratch
                        columns (``scratch_name`` is the scratch region's name in listings).
    ``describe_card(config)``  the words of ``fleqc build``'s summary that give the size.

Runs
    ``run_reference(program, max_steps, pc, options)``  the plain-Python interpreter's run
                        (:class:`fleqc.state.RunResult`); ``reference`` is the interpreter
                        module itself (``initial_state``, ``step``), used in lockstep after every
                        pass by tests, traces and the debugger.
    ``health_check(model, card)``  the check run after every pass (X, step, columns): the
                        generic :class:`HealthCheck` (ternary rows, pc in range) unless extended.
                        A check whose tests fit a :class:`fleqc.transformer.health.LoopCheck`
                        (rows, a register's range, entry limits) offers one as ``loop_check``;
                        the engine's compiled loop then applies it to every pass in place of a
                        call (docs/engines.md, "Many passes per compiled call").
    ``prepare(card, options)``  the card a transformer run starts from (default: the card; a
                        machine with an input tape writes the input there).
    ``observer(card, options)``  an optional ``on_step(step, X)`` callback for a machine that
                        talks to the host while it runs (reading an output tape after each pass);
                        with a ``watch`` attribute ((row, column) pairs) it is called only after
                        the passes that change one of them.
                        ``options`` are the run's values of the machine's options (``--input``).
                        The
                        run path (fleqc.runner.Run) calls ``prepare`` and ``observer`` for
                        every transformer backend.

A new machine is one package under ``fleqc/machines/`` defining a subclass and one line in
``fleqc.machines.REGISTRY``.

A machine whose programs are not written in the FLEQ language (raw images, another assembler)
sets ``language = None``, claims its ``suffixes`` and overrides ``compile``; its program need only
carry ``machine``, ``symbols`` and ``source_name``. Run-time inputs are options too: an option
with ``commands=("run",)`` and ``integer=False`` (``--input FILE``) reaches ``run_reference``,
``prepare`` (write the input tape into X) and ``observer`` (read the output tape after each pass
and stream it); such a machine sets ``streams_output``, and ``fleqc run`` then prints the program's
output to stdout as it comes (the API's ``output`` option receives it), the run's figures on stderr
or in ``--json``, and no label values. A machine whose card is not laid out as scratch | memory | instructions overrides
``check_card``, ``health_check`` and ``pc_column``. tests/support/plugin_machine.py is a working example
registered by a test.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from fleqc.errors import ErrorCode, FleqError
from fleqc.state import FellOffTheEnd
from fleqc.steps import Names, Reader, TraceEvent
from fleqc.card.check import rebuilt_card_check
from fleqc.card.rows import RowSpace
from fleqc.transformer import MachineFault, TernaryCheck
from fleqc.transformer.health import LoopCheck
from fleqc.transformer.layers import AttentionLayer, LoopedTransformer

Options = dict[str, Any]  # machine option name -> value given on the command line (None: not given)


@dataclass(frozen=True)
class MachineOption:
    """An option a machine adds (``--bits N`` on the command line, ``bits=`` in the API), as data:
    the command line (fleqc.cli) makes its click option. ``commands``: the commands that take it
    (none: the API only); ``integer``: the value is an integer (else ``reads_file``: the bytes of
    a file, or of standard input for ``-``); ``runtime``: data of one run (an input), not of the
    machine, so a card's run may take it."""

    name: str
    help: str = ""
    metavar: str = "N"
    short: Optional[str] = None  # a one-letter alias ("-N")
    commands: tuple[str, ...] = ("build", "run", "weights", "export", "show", "debug")
    integer: bool = True
    reads_file: bool = False
    runtime: bool = False
    max_bytes: Optional[int] = None  # reads_file: the most bytes the machine takes (a longer file is refused)


class Machine(abc.ABC):
    """One machine; see the module docstring for the whole interface."""

    name: ClassVar[str]
    title: ClassVar[str]
    config_class: ClassVar[type]
    layer_kinds: ClassVar[str]
    default_columns: ClassVar[int]
    options: ClassVar[tuple[MachineOption, ...]] = ()
    modes: ClassVar[tuple[str, ...]] = ("softmax", "hardmax")
    suffixes: ClassVar[tuple[str, ...]] = (".fleq",)
    scratch_name: ClassVar[str] = "scratch"
    language: ClassVar[Any] = None
    streams_output: ClassVar[bool] = False  # its runs print the program's own output (fleqc run streams it)
    cache_weights: ClassVar[bool] = False  # builds slowly enough that the weights are kept on disk (weights_for)
    reference: ClassVar[Any] = None

    # -- programs and configurations ----------------------------------------------------------

    def compile(self, text: str, path: str, options: Options, language: Any = None) -> Any:
        """The program in ``text`` (read from ``path``); the FLEQ language front end by default,
        given the ``language`` (the machines a ``.machine`` directive may name)."""
        from fleqc.frontend.compile import compile_text  # the front end loads lark: only when a program is compiled

        return compile_text(text, path, language=language, bits=options.get("bits"))

    @abc.abstractmethod
    def config_for(self, program: Any, columns: Optional[int], options: Options) -> Any:
        """The smallest configuration that holds ``program`` (or the one asked for)."""

    @abc.abstractmethod
    def config_from_options(self, columns: Optional[int], options: Options) -> Any:
        """The configuration ``fleqc weights`` builds (defaults where nothing is given)."""

    def config_from_dict(self, data: dict) -> Any:
        return self.config_class.from_dict(data)

    def weights_command(self, config: Any) -> str:
        """The command that writes the weights of ``config`` (quoted in MACHINE_MISMATCH)."""
        sizes = " ".join(f"--{o.name} {getattr(config, o.name)}" for o in self.options if "weights" in o.commands)
        return f"fleqc weights --machine {self.name} --columns {config.columns} {sizes}".rstrip()

    # -- weights -------------------------------------------------------------------------------

    @abc.abstractmethod
    def rows(self, config: Any) -> RowSpace:
        """The named row blocks of X."""

    @abc.abstractmethod
    def build(self, config: Any) -> LoopedTransformer:
        """The weights of ``config``, built from the block library (deterministic)."""

    def ternary_rows(self, config: Any) -> list[int]:
        """Rows the health check holds to {-1, 0, +1}: all of them unless a machine stores reals."""
        return list(range(self.rows(config).d))

    def kinds(self, config: Any) -> str:
        """The layer kinds of this configuration's weights ("A" attention, "F" feed-forward)."""
        return self.layer_kinds

    def check_weights_fit(self, model: LoopedTransformer, config: Any, where: str) -> None:
        """Refuse weights built for another configuration than the card needs, and weights whose
        layout-given metadata (row labels, layer kinds, health-checked and fault rows) is not the
        machine's: a file with a recomputed digest cannot switch the health checks off."""
        built_for = model.metadata.get("machine")
        if built_for != config.to_dict():
            raise FleqError(
                ErrorCode.MACHINE_MISMATCH,
                f"{where}: weights were built for {built_for}, but the card needs {config.to_dict()} "
                f"(rebuild with `{self.weights_command(config)}`)",
            )
        rows = self.rows(config)
        kinds = "".join("A" if isinstance(layer, AttentionLayer) else "F" for layer in model.layers)
        expected = {
            "row labels": (list(model.row_labels), rows.labels()),
            "layer kinds": (kinds, self.kinds(config)),
            "health-checked rows": (sorted(model.ternary_rows), self.ternary_rows(config)),
            "fault rows": (list(model.metadata.get("fault_rows", [])), list(rows["fault"]) if "fault" in rows else []),
        }
        for what, (found, wanted) in expected.items():
            if found != wanted:
                raise FleqError(ErrorCode.BAD_WEIGHTS, f"{where}: the weights' {what} are not those of the "
                                                       f"{self.name} machine they name")

    # -- cards ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, program: Any, config: Any, start: int = 0) -> Any:
        """The punch card of ``program`` on ``config``; the pc names instruction ``start``."""

    @abc.abstractmethod
    def decode(self, card: Any) -> Any:
        """The program a card holds, read back out of X (operands from their codes)."""

    @abc.abstractmethod
    def read_cell(self, card: Any, X: np.ndarray, address: int) -> Any:
        """The value of memory cell ``address``, read from X."""

    def read_memory(self, card: Any, X: np.ndarray) -> list:
        """Every memory cell's value in address order, read from X."""
        return [self.read_cell(card, X, address) for address in range(card.memory_size)]

    def check_card(self, card: Any) -> tuple[Any, int]:
        """The program a loaded card holds and the pc it starts at; BAD_CARD unless the card is
        exactly the one this machine builds for them (fleqc.card.check)."""
        return rebuilt_card_check(card)

    def check_cells(self, card: Any) -> None:
        """BAD_CARD unless the card's per-cell metadata fits the machine (by default it has none)."""
        if card.cell_shapes:
            raise FleqError(ErrorCode.BAD_CARD, f"a {self.title} card has no cell shapes")

    def pc_column(self, card: Any) -> int:
        """The column whose pc rows are read back (the first scratch column by default)."""
        return card.regions.scratch[0]

    def column_name(self, card: Any, column: int) -> str:
        """What scratch column ``column`` is, in messages."""
        return "the scratchpad"

    def significand_bits(self, config: Any) -> int:
        """The significand bits (IEEE precision, the implicit bit counted: float64 has 53, float32
        24) that a pass of this machine needs to be computed exactly; an engine in a narrower type
        must refuse it (fleqc.interop.torch_module). By default float64's: a machine that states
        nothing runs in float64 only."""
        return 53

    def describe_card(self, config: Any) -> str:
        """The words of the card summary that name the machine's size ("N=16 bits")."""
        return config.describe()

    # -- runs ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def run_reference(self, program: Any, max_steps: int, pc: int, options: Options) -> Any:
        """The reference interpreter's run of ``program`` from ``pc`` (a RunResult); ``options``:
        the run's machine options (an input stream, say)."""

    def prepare(self, card: Any, options: Options) -> Any:
        """The card a transformer run starts from, given the run's options (a machine that reads
        input writes it onto its input tape here); the card itself by default."""
        return card

    def health_check(self, model: LoopedTransformer, card: Any) -> Callable:
        """The check after every pass: ``check(X, step, columns)`` raises MachineFault or FleqError."""
        return HealthCheck(model, card)

    def observer(self, card: Any, options: Options) -> Optional[Callable[[int, np.ndarray], None]]:
        """``on_step(step, X)`` for a machine that exchanges data with the host during a run."""
        return None

    def reference_stepper(self, program: Any, pc: int, options: Options) -> "ReferenceStepper":
        """The reference interpreter stepped one instruction at a time (traces, the debugger,
        lockstep): by default over the interpreter's ``initial_state`` and ``step``."""
        return ReferenceStepper(self.reference, program, pc)

    # -- observing -----------------------------------------------------------------------------

    def instruction_text(self, instruction: Any, cell: Callable[[int], str], target: Callable[[int], str],
                         short: bool = False) -> str:
        """An instruction in the assembler's plain form, cells named by ``cell`` and targets by
        ``target`` (traces, the debugger, ``fleqc disasm``); ``short``: without the operands the
        assembler fills in by default."""
        raise NotImplementedError(f"the {self.title} machine does not write its instructions")

    def describe_step(self, program: Any, names: Names, step: int, pc: int, next_pc: int, before: Reader,
                      after: Reader) -> TraceEvent:
        """What executing instruction ``pc`` read, wrote and where it went (state ``before`` ->
        ``after``, read by address): the event every observer sees."""
        raise NotImplementedError(f"the {self.title} machine does not describe its steps")


class ReferenceStepper:
    """A reference interpreter with ``initial_state(program)`` and ``step(program, state)`` (a new
    state; the same state at a fixed point), stepped: ``step()`` is False once the program halted."""

    def __init__(self, interpreter: Any, program: Any, pc: int) -> None:
        self.interpreter, self.program = interpreter, program
        self.state = interpreter.initial_state(program, pc)
        self.steps = 0

    @property
    def pc(self) -> int:
        return self.state.pc

    def cell(self, address: int) -> Any:
        return self.state.memory[address]

    def memory(self) -> list:
        return list(self.state.memory)

    def step(self) -> bool:
        try:
            following = self.interpreter.step(self.program, self.state)
        except FellOffTheEnd as exc:
            raise fell_off_fault(exc, self.steps) from None
        if following.equal(self.state):
            return False
        if following.pc == len(self.program.instructions):  # this step leaves the program: as the transformer
            raise fell_off_fault(FellOffTheEnd(following.pc), self.steps + 1)
        self.state = following
        self.steps += 1
        return True

    def halted(self) -> bool:
        """Whether the next step would change nothing (a step that fails counts as not halted)."""
        try:
            return self.interpreter.step(self.program, self.state).equal(self.state)
        except (FleqError, FellOffTheEnd):
            return False


def reference_run(run: Callable[[], Any], program: Any) -> Any:
    """``run()``, a reference's whole run of ``program``, with a step that leaves the program
    reported as the machine fault of the transformer at the same step (both backends alike)."""
    try:
        result = run()
    except FellOffTheEnd as exc:  # the step after leaving was tried: ``exc.steps`` were executed
        raise fell_off_fault(exc, exc.steps) from None
    count = len(program.instructions)
    if count and result.state.pc == count:  # the last step the limit allowed left the program
        raise fell_off_fault(FellOffTheEnd(count), result.steps)
    return result


def fell_off_fault(exc: FellOffTheEnd, step: int) -> MachineFault:
    """Step ``step`` of the reference's run fell off the end of the program: the machine fault the
    transformer reports for the same step (the health check below), exit status 4 on both backends."""
    return MachineFault(step, "pc", 0, float(exc.pc), float("nan"), exc.describe())


class HealthCheck:
    """After every pass: no NaN or infinity; ternary rows (from the weights) within 1e-6 of -1, 0 or
    +1; the program counter names an instruction column. Machines extend it with their own checks
    (``extra``, run first on the columns the pass changed; ``after``, once the pass is accepted)."""

    def __init__(self, model: LoopedTransformer, card: Any) -> None:
        self.ternary = TernaryCheck(model.ternary_rows, model.row_labels)
        self.card = card
        self.pc = card.read_pc()  # the instruction the next pass executes

    def __call__(self, X: np.ndarray, step: int, columns: np.ndarray | None = None) -> None:
        """After pass ``step``; ``columns``: the columns it changed (the others were checked before)."""
        cols = slice(None) if columns is None else np.asarray(columns)
        self.extra(X, step, cols)
        self.ternary(X, step, columns)
        pc = self.card.read_pc(X)
        count = self.card.instruction_count
        if pc == count:  # the words of the reference's fault (fleqc.state.FellOffTheEnd): both backends alike
            raise MachineFault(step, "pc", self.card.pc_column, float(pc), float("nan"),
                               FellOffTheEnd(count).describe())
        if not 0 <= pc < count:
            raise MachineFault(step, "pc", self.card.pc_column, float(pc), float("nan"),
                               f"the program counter names no instruction (pc {pc}; instructions 0..{count - 1})")
        self.after(X, cols)
        self.pc = pc

    @property
    def loop_check(self) -> Optional[LoopCheck]:
        """The filter the engine's compiled loop applies in place of this check (the ternary rows,
        finite values, the pc rows naming an instruction column): None for a subclass with checks
        of its own (``extra``, ``after``), which then runs after every pass."""
        cls = type(self)
        if (cls.__call__, cls.extra, cls.after) != (HealthCheck.__call__, HealthCheck.extra, HealthCheck.after):
            return None
        card = self.card
        first = card.regions.instructions[0]
        pc = (card.pc_column, tuple(card.rows["pc"]), first, first + card.instruction_count)
        return LoopCheck(ternary=tuple(self.ternary.rows), registers=(pc,))

    def extra(self, X: np.ndarray, step: int, cols: Any) -> None:
        """A machine's own checks of the columns ``cols``, before the generic ones."""

    def after(self, X: np.ndarray, cols: Any) -> None:
        """Bookkeeping once the pass is accepted (``self.pc`` is still the pass's instruction)."""
