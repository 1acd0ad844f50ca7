"""Many passes per compiled call (the engine's run loop, fleqc.transformer.kernels.run_passes): the
same run, pass for pass, as one pass per call; health checks and watchers still see what they must."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import fleqc
from fleqc.errors import ErrorCode, FleqError
from fleqc.machines import program_to_card, weights_for
from fleqc.runner import Run
from fleqc.runner import run as run_card
from fleqc.transformer import MachineFault
from fleqc.transformer import run as loop_run
from fleqc.transformer.health import LoopCheck
from fleqc.transformer.incremental import IncrementalEngine
from fleqc.transformer.warm import ensure_ready
from tests.support.programs import subleq_program

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# the looping program of the speed benchmarks (bench/subleq_speed.py reads the same file): it never
# halts; these tests run it for at most 3,000 steps, long before x (30000) counts down to its reset
COUNTDOWN = (SAMPLES / "loops" / "countdown.fleq").read_text()


@pytest.fixture
def compiled_calls(monkeypatch):
    """How many times the compiled loop ran (calls that returned passes, not None)."""
    ensure_ready()  # the process's warm-up runs the compiled loop too: before counting
    calls = []
    original = IncrementalEngine.run_passes

    def counted(self, *args):
        ran = original(self, *args)
        if ran is not None:
            calls.append(ran[:2])
        return ran

    monkeypatch.setattr(IncrementalEngine, "run_passes", counted)
    return calls


def test_finish_equals_stepping_pass_for_pass(compiled_calls):
    card = fleqc.build(COUNTDOWN, columns=64)
    fast = Run(card, engine="incremental")
    result = fast.finish(3000)
    assert compiled_calls and sum(done for _, done in compiled_calls) == 2999  # all but the first pass
    assert len(compiled_calls) < 100
    slow = Run(card, engine="incremental")
    assert slow.advance(3000) == 3000
    assert np.array_equal(fast.X, slow.X)
    expected = fleqc.run(fleqc.compile(COUNTDOWN), backend="reference", max_steps=3000)
    assert (result.steps, result.halted, result.memory, result.pc) == (3000, False, expected.memory, expected.pc)


@pytest.mark.parametrize("sample", ["factorial", "gcd", "multiply", "fibonacci"])
def test_halting_programs_end_where_the_reference_ends(sample, compiled_calls):
    program = fleqc.compile(str(SAMPLES / f"{sample}.fleq"))
    got = fleqc.run(program, engine="incremental")
    assert compiled_calls
    dense = fleqc.run(program, engine="dense")
    reference = fleqc.run(program, backend="reference")
    assert got == dense
    assert (got.halted, got.steps, got.memory, got.pc) == (reference.halted, reference.steps, reference.memory,
                                                           reference.pc)


def test_step_limit_inside_a_chunk_then_one_more_pass():
    card = fleqc.build(COUNTDOWN, columns=64)
    for limit in (1, 2, 3, 64, 65, 200):
        fast = Run(card, engine="incremental").finish(limit)
        slow = Run(card, engine="dense").finish(limit)
        assert fast == slow and fast.steps == limit and not fast.halted



def test_advance_limits_blas_once_per_call_and_passes_stay_limited(monkeypatch):
    """Run.advance enters the BLAS limit once for the whole call (threadpoolctl rescans the process's
    libraries each time, more than a pass costs), and every pass still runs inside it."""
    import contextlib

    import fleqc.runner as runner

    depth, entered, passes_outside = [0], [0], [0]

    @contextlib.contextmanager
    def counted():
        entered[0] += 1
        depth[0] += 1
        try:
            yield
        finally:
            depth[0] -= 1

    monkeypatch.setattr(runner, "chosen_blas_threads", counted)
    original = IncrementalEngine.step

    def step(self):
        passes_outside[0] += depth[0] == 0
        return original(self)

    monkeypatch.setattr(IncrementalEngine, "step", step)
    card = fleqc.build(COUNTDOWN, columns=64)
    run = Run(card, engine="incremental")
    assert run.advance(50) == 50
    assert entered[0] == 1 and passes_outside[0] == 0
    assert run.advance(10) == 10 and entered[0] == 2
    dense = Run(card, engine="dense")
    dense.finish(60)
    assert np.array_equal(run.X, dense.X)


# -- health checks through the compiled loop --------------------------------------------------------


def _health_card():
    # m0 -= m1 three times (10 -> 7 -> 4 -> 1 -> -2), then halt
    return program_to_card(subleq_program(8, [10, 3, 0], [(1, 0, 1), (1, 0, 1), (1, 0, 1), (1, 0, 4), (2, 2, 4)]))


def test_a_pc_outside_the_program_is_caught_inside_the_loop(compiled_calls):
    card = _health_card()
    X = card.X.copy()
    # the branch of instruction 3 (taken at step 4) names a memory column
    X[card.rows["instr_c"].slice, card.regions.instruction_column(3)] = X[card.rows["pos"].slice, 1]
    with pytest.raises(MachineFault) as fault:
        run_card(dataclasses.replace(card, X=X), validate=False, engine="incremental")
    assert (fault.value.field, fault.value.step) == ("pc", 4)
    assert compiled_calls  # steps 2-4 ran in the compiled loop, which handed step 4 to the check


def test_perturbed_weights_are_caught_inside_the_loop(compiled_calls):
    card = _health_card()
    model = weights_for(card.config)
    commit = model.layers[-1]
    w2 = commit.w2.copy()
    mem3 = card.rows["mem"][3]  # one commit weight of bit 3, off by 30%: the write of step 4 (1 -> -2) shows it
    w2[mem3, np.flatnonzero(w2[mem3])[0]] *= 1.3
    broken = dataclasses.replace(model, layers=model.layers[:-1] + (dataclasses.replace(commit, w2=w2),))
    with pytest.raises(MachineFault) as slow:
        Run(card, weights=broken, engine="incremental").advance(100)
    with pytest.raises(MachineFault) as fast:
        fleqc.run(card, weights=broken, engine="incremental")
    assert (fast.value.step, fast.value.field, fast.value.column) == (slow.value.step, slow.value.field,
                                                                       slow.value.column)
    assert fast.value.step == 4 and compiled_calls


class Recorder:
    """A check that records every call; with ``loop_check``, the compiled loop filters for it."""

    def __init__(self, loop_check=None):
        self.calls = []
        if loop_check is not None:
            self.loop_check = loop_check

    def __call__(self, X, step, columns):
        self.calls.append((step, None if columns is None else tuple(columns), X.copy()))


def test_a_flagged_pass_reaches_the_check_with_its_own_X(compiled_calls):
    card = fleqc.build(COUNTDOWN, columns=64)
    model = weights_for(card.config)
    x_column = card.regions.memory_column(0)
    row = card.rows["mem"][8]  # bit 8 of x (30000 = 256 + ... mod 512): set until x passes 29952
    every = Recorder()
    loop_run(model, card.X, max_steps=400, check=every, engine="incremental")
    flagged = Recorder(LoopCheck(limits=((row, x_column, -0.5),)))  # flags every pass where bit 8 is set
    outcome = loop_run(model, card.X, max_steps=400, check=flagged, engine="incremental")
    assert compiled_calls
    by_step = {step: X for step, _, X in every.calls}
    # every call the filtered check got saw the X the per-pass check saw at that step
    for step, _, X in flagged.calls:
        assert np.array_equal(X, by_step[step])
    steps = [step for step, _, _ in flagged.calls]
    assert steps == sorted(steps) and steps[-1] == outcome.steps == 400
    set_until = max(step for step, _, X in every.calls if X[row, x_column] > 0)  # the last pass with bit 8 set
    assert set(range(2, set_until + 1)) <= set(steps)  # each flagged pass went to the check itself
    assert len(steps) < len(every.calls)  # the others in chunks


def test_watched_entries_call_the_observer_after_each_change():
    card = fleqc.build(COUNTDOWN, columns=64)
    model = weights_for(card.config)
    column, rows = card.regions.memory_column(0), card.rows["mem"]

    seen = []

    def every(step, X):
        seen.append((step, X[rows.slice, column].copy()))

    watched = []

    def observer(step, X):
        watched.append((step, X[rows.slice, column].copy()))

    observer.watch = [(rows[1], column)]  # bit 1 of x
    loop_run(model, card.X, max_steps=300, on_step=every, engine="incremental")
    loop_run(model, card.X, max_steps=300, on_step=observer, engine="incremental")
    changes = [(step, bits) for (step, bits), (_, before) in zip(seen[1:], seen) if bits[1] != before[1]]
    assert len(changes) > 10
    assert [s for s, _ in changes] == [s for s, _ in watched if s > 1]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(changes, [w for w in watched if w[0] > 1]))


# -- the classic machine: output and faults through the loop ----------------------------------------


def test_classic_output_streams_through_the_loop(compiled_calls):
    printed = bytearray()
    result = fleqc.run(str(SAMPLES / "classic_hello.sq"), output=printed, engine="incremental")
    expected = bytearray()
    reference = fleqc.run(str(SAMPLES / "classic_hello.sq"), output=expected, backend="reference")
    assert bytes(printed) == bytes(expected) and len(printed) > 5
    assert (result.steps, result.halted, result.memory) == (reference.steps, reference.halted, reference.memory)
    assert compiled_calls


def test_classic_address_fault_inside_the_loop_names_its_pc(tmp_path, compiled_calls):
    # 0: count down mem[10] by mem[9]; at 0 jump to 6; 3: jump back to 0; 6: reads address 1000: fault
    source = tmp_path / "fault.dec"
    source.write_text("9 10 6 11 11 0 1000 10 9 1 5 0\n")
    with pytest.raises(FleqError) as fault:
        fleqc.run(str(source), engine="incremental")
    assert fault.value.code == ErrorCode.ADDRESS_FAULT
    assert "at step 10" in str(fault.value) and "pc 6" in str(fault.value)
    assert compiled_calls


# -- the first run after an install ----------------------------------------------------------------


def test_a_compilation_is_announced_with_its_time(monkeypatch):
    import io
    import time as clock

    from fleqc.transformer import compiling as warm

    monkeypatch.setattr(warm, "NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(warm, "PROGRESS_EVERY_S", 0.05)
    stream = io.StringIO()
    from numba import njit

    with warm.compiling(stream):
        njit(lambda x: x + 1)(1)  # a new function: compiled here, never cached
        clock.sleep(0.3)
    text = stream.getvalue()
    assert "compiling the incremental engine's kernels" in text and "kernels compiled in" in text


def test_loading_is_not_announced(monkeypatch):
    import io
    import time as clock

    from fleqc.transformer import compiling as warm

    monkeypatch.setattr(warm, "NOTICE_AFTER_S", 0.05)
    stream = io.StringIO()
    with warm.compiling(stream):
        clock.sleep(0.3)  # nothing compiles, a quick load: silence
    assert stream.getvalue() == ""


def test_a_slow_load_is_announced(monkeypatch):
    import io
    import time as clock

    from fleqc.transformer import compiling as warm

    monkeypatch.setattr(warm, "NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(warm, "LOAD_NOTICE_AFTER_S", 0.1)
    stream = io.StringIO()
    with warm.compiling(stream, loading=True):
        clock.sleep(0.6)
    assert "loading the incremental engine's compiled kernels" in stream.getvalue()
    assert "kernels loaded in" in stream.getvalue()


def test_a_process_after_the_first_compiles_nothing():
    """Once the cache is written, a new process loads every kernel and compiles none (a typed list
    indexed from Python, say, would have numba compile its methods again in every process)."""
    import subprocess
    import sys

    ensure_ready()  # this process has written the cache (or found it)
    code = (
        "from numba.core import event\n"
        "names = []\n"
        "class Listener(event.Listener):\n"
        "    def on_start(self, ev):\n"
        "        names.append(str(ev.data.get('dispatcher')))\n"
        "    def on_end(self, ev):\n"
        "        pass\n"
        "event.register('numba:compile', Listener())\n"
        "import fleqc\n"
        "from fleqc.transformer.warm import ensure_ready\n"
        "ensure_ready()\n"
        "fleqc.run(fleqc.compile(open(%r).read()), engine='incremental', max_steps=300)\n"
        "print(len(names), names[:3])\n" % str(SAMPLES / "loops" / "countdown.fleq"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "0", done.stdout
