"""The FLEQ machine's stated error bounds, and a lockstep driver that checks them after every step.

The bounds are the ones docs/fleq-machine.md states for each function block (measured worst
errors are far below them). One step is checked by re-running the reference interpreter from the
machine's own state before the step, so errors are never carried from step to step:

- every cell but the destination is unchanged, bit for bit;
- the destination holds the reference result within the function's bound;
- pc is exact: the machine branches iff its own stored flag value is <= 0 (the exact sign,
  fleqc.blocks.exact).

A pass that leaves X unchanged (the machine halted) is checked the same way: it must be a valid
step within the bounds. (An iteration that converges numerically, e.g. x <- sigmoid(x) in a
self-loop, can reach an exact fixed point on the machine a few ulps away from where the reference
would, so the two need not halt on the same step; programs halt with `halt`.)
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np

import fleqc
from fleqc.errors import FleqError
from fleqc.machines.fleq import reference as fleq
from fleqc.machines.fleq.functions import FLEQ_FUNCTIONS
from fleqc.machines.fleq.product import multiplier
from fleqc.machines.fleq.ulps import accepted_operands, ulp_errors
from fleqc.state import State
from fleqc.card.card import Card
from fleqc.machines import weights_for
from fleqc.program import LinkedProgram
from fleqc.transformer.executor import forward, stepper
from fleqc.transformer.sparse import compile_fast, fast_forward

def within_bound(func: str, a: np.ndarray, b: Optional[np.ndarray], expected: np.ndarray, got: np.ndarray) -> bool:
    """Whether the machine's result ``got`` meets ``func``'s stated bound (its record's ``bound``)
    around ``expected``."""
    bound = FLEQ_FUNCTIONS[func].bound
    if got.shape != expected.shape:
        return False
    if bound.exact:
        return bool(np.array_equal(got, expected))
    err = np.abs(got - expected)
    scale = np.matmul(np.abs(a), np.abs(b)) if bound.componentwise else np.abs(expected)
    return bool(np.all(err <= bound.relative * scale + bound.absolute))


def machine_state(card: Card, X: np.ndarray) -> State:
    memory = []
    for value in card.read_memory(X):
        value.flags.writeable = False
        memory.append(value)
    return State(card.read_pc(X), tuple(memory))


def assert_fleq_lockstep(program: LinkedProgram, card: Card, max_steps: int,
                         machine_pass: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> tuple[int, bool]:
    """Run the machine and check every step against the reference (see the module docstring).

    Returns (steps, halted). A domain error must come from both sides (one table of windows); then
    the run ends there. ``machine_pass(X) -> Y`` is
    one pass (default: the sparse evaluation of the weights, fleqc.transformer.sparse, which
    tests/test_fast.py holds to the dense forward pass; tests/support/interop_lockstep.py passes other
    engines').
    """
    model = weights_for(card.config)
    if machine_pass is None:  # the sparse evaluation: tests/test_fast.py holds it to the dense pass
        fast = compile_fast(model)
        machine_pass = lambda X: fast_forward(fast, X)  # noqa: E731
    check = card.machine.health_check(model, card)
    X = card.X
    for step in range(1, max_steps + 1):
        before = machine_state(card, X)
        instruction = program.instructions[before.pc]
        try:
            expected = fleq.step(program, before)
        except FleqError:
            expected = None
        Y = machine_pass(X)
        halted = np.array_equal(Y, X)  # a fixed point: the step is still checked, then the run ends
        if not halted:
            try:
                check(Y, step)
            except FleqError as error:
                assert expected is None, f"step {step}: the machine raised {error}, the reference did not"
                return step, False
        assert expected is not None, f"step {step}: the reference raised a domain error, the machine did not"
        assert_step_matches(card, Y, instruction, before, expected, step)
        if halted:
            return step - 1, True
        X = Y
    return max_steps, False


def assert_step_matches(card: Card, Y: np.ndarray, instruction, before, expected, step: int) -> None:
    """The machine's state Y after one step agrees with the reference's: the destination within its
    block's bound, every other cell unchanged, the branch taken iff the stored flag is <= 0."""
    got = machine_state(card, Y)
    a, b = before.memory[instruction.src_a], before.memory[instruction.src_b]
    dst = instruction.dst
    for address, (old, new) in enumerate(zip(before.memory, got.memory)):
        if address != dst:
            assert np.array_equal(old, new), f"step {step}: cell {address} changed"
    assert within_bound(instruction.func, a, b, expected.memory[dst], got.memory[dst]), (
        f"step {step}: {instruction.func} gave {got.memory[dst]!r}, reference {expected.memory[dst]!r}")
    flag = float(got.memory[instruction.flag])
    branch_to = instruction.target if flag <= 0 else before.pc + 1
    assert got.pc == branch_to, f"step {step}: pc {got.pc}, expected {branch_to} (flag {flag!r})"


def machine_results(func: str, a: list[np.ndarray], b: Optional[list[np.ndarray]]) -> tuple[list[np.ndarray], float]:
    """``func`` applied on the transformer to each (a[k], b[k]) 8x8 pair, one instruction per pair in
    one program; returns the results and the seconds per step (bench/fleq_accuracy.py and the ulp
    tests measure the blocks with it)."""
    def matrix(name: str, value: np.ndarray) -> str:
        return f"{name}: .matrix 8 8 " + ", ".join(repr(float(x)) for x in np.ravel(value))

    lines = [".machine fleq", ".data"]
    for k, x in enumerate(a):
        lines += [matrix(f"a{k}", x), matrix(f"c{k}", np.zeros((8, 8)))]
        if b is not None:
            lines.append(matrix(f"b{k}", b[k]))
    lines.append(".text")
    lines += [f"{func} c{k}, a{k}, b{k}" if b is not None else f"{func} c{k}, a{k}" for k in range(len(a))]
    lines.append("halt")
    program = fleqc.compile("\n".join(lines))
    start = time.perf_counter()
    result = fleqc.run(program)
    seconds = time.perf_counter() - start
    return [np.asarray(result.memory[f"c{k}"]) for k in range(len(a))], seconds / (len(a) + 1)


def measure_ulps(func: str, runs: int, rng: np.random.Generator, cells: int = 16) -> tuple[np.ndarray, float]:
    """The errors in ulps of ``func`` on the machine over ``runs`` programs of ``cells`` 8x8 cells of
    operands drawn across its window (fleqc.machines.fleq.ulps), and the seconds per step."""
    binary = FLEQ_FUNCTIONS[func].arity == 2
    ulps, seconds = [], 0.0
    for _ in range(runs):
        pairs = [accepted_operands(func, rng, (8, 8)) for _ in range(cells)]
        got, per_step = machine_results(func, [a for a, _ in pairs], [b for _, b in pairs] if binary else None)
        ulps += [ulp_errors(func, a, b, g).ravel() for (a, b), g in zip(pairs, got)]
        seconds += per_step / runs
    return np.concatenate(ulps), seconds


def run_multiplier(a: np.ndarray, b: np.ndarray, engine: str = "dense") -> tuple[np.ndarray, np.ndarray]:
    """The block's (product, error) rows for the pairs (a, b), one column each."""
    with np.errstate(over="ignore", under="ignore"):
        assert np.all(np.abs(a * b) <= 2.0**1000)
    model, rows, _ = multiplier(1)
    X = np.zeros((model.width, a.size))
    X[rows["one"][0]] = 1.0
    X[rows["x"][0]], X[rows["y"][0]] = a, b
    if engine == "dense":
        Y = forward(model, X)
    else:
        loop = stepper(model, X, engine=engine)
        loop.step()
        Y = np.array(loop.X)
    assert np.all(np.isfinite(Y))
    return Y[rows["product"][0]], Y[rows["error"][0]]
