"""numpy twins of the applications in samples/apps/: the iterations of the stdlib routines they call,
written out instruction by instruction, in the same order of floating-point operations as the FLEQ
program, so that on the reference interpreter every output cell agrees bit for bit.

- :func:`app_inverse4`, :func:`app_inverse8`: stdlib/linalg_inverse.fleq ``inverse``
  (Newton-Schulz) with its helpers ``norm1``, ``norminf``, ``vmax8`` (stdlib/linalg_norms.fleq),
  and the code of samples/apps/app_inverse4.fleq / app_inverse8.fleq around it;
- :func:`app_power_iteration`: stdlib/linalg_power.fleq ``power_iteration`` with ``rsqrt``
  (stdlib/arith_rsqrt.fleq: its range reduction by 2^+-64 and two Newton steps);
- :func:`app_backprop`: stdlib/learn_backprop.fleq ``backprop_mlp2`` as
  samples/apps/app_backprop.fleq drives it (two batches of 8 per epoch).

This module is plain numpy and imports nothing from fleqc on purpose: it is an independent
statement of what the programs compute. The FLEQ functions are restated here from their reference
semantics (fleqc/machines/fleq/functions.py, FLEQ_FUNCTIONS):

- add, sub, relu, mov, transpose: the IEEE numpy operations;
- mul: ``a * b`` elementwise (a scalar broadcasts), IEEE for every pair of factors (subnormal
  results included); zeros +0.0;
- matmul: every product by ``mul``, each entry's products summed pairwise in the order of the inner
  index k over the terms padded with zeros to a power of two, ((t0 + t1) + (t2 + t3)) + ...: NOT
  numpy's ``@``, which sums in another order (and may fuse). A 1-D left operand is a row, a 1-D right
  operand a column; the result has numpy.matmul's shape;
- recip and sqrt: linear interpolation in a table (fleqc/machines/fleq/tables.py): |x| = x' 4^s with x'
  in (1/2, 2]; x' rounded to a multiple of 2^-29; the line between the two knots around it (knots
  every 2^-11 on [1/2, 1], every 2^-10 on [1, 2], values f(t) rounded to multiples of 2^-30);
  recip(x) = sign(x) 4^-s g, sqrt(x) = 2^s g;
- sigmoid: e^z, z = min(x, 0) - b(y), y = min(|x|, 22) rounded to 2^-26, b the line through the
  knots of log(1 + e^-y) (spacing per quarter of y: the coarsest power of two from 2^-3 down to
  2^-10 with h^2/8 max b'' <= 2^-25; values rounded to 2^-30); e^z: z rounded to 2^-40, z = n LN2 + r
  (LN2 = ln 2 rounded to 2^-40, 0 <= r < LN2), r rounded to 2^-29, the line through exp's knots (every
  2^-11 from 0 to 1420 2^-11, values e^t rounded to 2^-30, the last lowered on its grid until the
  line at LN2 rounded to 2^-29 is <= 2), times 2^n (one rounding if subnormal); 0 below -768;
- ``fleq dst, f, a, b, flag, p``: ``dst = f(a, b)``, then go to ``p`` if the flag cell (read after the
  write) is <= 0; ``subleq a, b, c`` is ``fleq b, sub, b, a, b, c``; ``jle flag, p`` branches on
  ``flag <= 0``.

Each twin takes plain numpy arrays (the programs' initial data, read by the caller) and returns the
values the program leaves in its output cells, and the number of iterations it made.
"""

from __future__ import annotations

import bisect

import numpy as np

# The FLEQ functions ------------------------------------------------------------------------------

FIT_LO, FIT_HI = 2.0**-81, 2.0**81  # the window of recip (and of sqrt's positive operands)


def f64(value) -> np.ndarray:
    return np.array(value, dtype=np.float64)


def mul(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(f64(a), f64(b))
    with np.errstate(under="ignore"):
        out = a * b
    return out + 0.0


def pairwise_sum(terms: np.ndarray) -> np.ndarray:
    """The sum over the last axis: ((t0 + t1) + (t2 + t3)) + ..., padded with zeros to 2^n terms."""
    size = 1
    while size < terms.shape[-1]:
        size *= 2
    t = np.concatenate([terms, np.zeros(terms.shape[:-1] + (size - terms.shape[-1],))], axis=-1)
    while t.shape[-1] > 1:
        t = t[..., 0::2] + t[..., 1::2]
    return t[..., 0] + 0.0


def matmul(a, b) -> np.ndarray:
    a, b = f64(a), f64(b)
    rows = a if a.ndim == 2 else a[None, :]
    cols = b if b.ndim == 2 else b[:, None]
    assert rows.shape[1] == cols.shape[0], (a.shape, b.shape)
    products = mul(rows[:, :, None], cols[None, :, :])  # [i, k, j] = a_ik * b_kj
    out = pairwise_sum(np.moveaxis(products, 1, -1))  # [i, j], summed over k
    shape = a.shape[:-1] + b.shape[1:]
    return out.reshape(shape)


def add(a, b) -> np.ndarray:
    return f64(a) + f64(b)


def sub(a, b) -> np.ndarray:
    return f64(a) - f64(b)


def relu(a) -> np.ndarray:
    return np.maximum(f64(a), 0.0)


def _table_line(f, x: float) -> float:
    """f(x) for x in (1/2, 2] as the machine's table gives it (see the module docstring), written
    per entry: the knots around x, their rounded values and the line through them."""
    q = (x + 1.5 * 2.0**23) - 1.5 * 2.0**23  # to a multiple of 2^-29
    h = 2.0**-11 if q < 1.0 else 2.0**-10
    lo = np.floor(q / h) * h if q < 2.0 else 2.0 - h
    ends = [round(float(f(t)) * 2.0**30) * 2.0**-30 for t in (lo, lo + h)]
    return ends[0] + (ends[1] - ends[0]) / h * (q - lo)


def _tabled(f, a: np.ndarray, power: float) -> np.ndarray:
    """sign(x) 2^(power * 2 s) f(x') for |x| = x' 4^s (power -1: recip; 1/2: sqrt); 0 at x = 0."""
    out = np.zeros(a.shape)
    for index, x in np.ndenumerate(a):
        if x != 0:
            s = 0
            while abs(x) / 4.0**s > 2.0:
                s += 1
            while abs(x) / 4.0**s <= 0.5:
                s -= 1
            out[index] = np.copysign(_table_line(f, abs(x) / 4.0**s) * 4.0 ** (power * s), x)
    return out


def recip(a) -> np.ndarray:
    a = f64(a)
    assert np.all((np.abs(a) > FIT_LO) & (np.abs(a) <= FIT_HI)), a  # recip's window
    return _tabled(lambda t: 1.0 / t, a, -1.0)


def sqrt(a) -> np.ndarray:
    a = f64(a)
    assert np.all((a == 0) | ((a > FIT_LO) & (a <= FIT_HI))), a  # sqrt's window
    return _tabled(np.sqrt, a, 0.5)


def _grid(x: float, quantum: float) -> float:
    return round(x / quantum) * quantum  # exact for the grids used here (Python rounds half to even)


def _line(knots: list[float], values: list[float], x: float) -> float:
    j = min(bisect.bisect_right(knots, x) - 1, len(knots) - 2)
    slope = (values[j + 1] - values[j]) / (knots[j + 1] - knots[j])
    return values[j] + slope * (x - knots[j])


def _softplus_knots() -> list[float]:
    knots = [0.0]
    for quarter in range(88):
        start, h = quarter / 4, 2.0**-3
        curvature = np.exp(-start) / (1 + np.exp(-start)) ** 2
        while h * h / 8 * curvature > 2.0**-25 and h > 2.0**-10:
            h /= 2
        knots += [start + h * k for k in range(1, int(0.25 / h) + 1)]
    return knots


SOFTPLUS_KNOTS = _softplus_knots()
SOFTPLUS_VALUES = [_grid(float(np.log1p(np.exp(-t))), 2.0**-30) for t in SOFTPLUS_KNOTS]
LN2_40 = _grid(float(np.log(2.0)), 2.0**-40)
EXP_KNOTS = [k * 2.0**-11 for k in range(1421)]
EXP_VALUES = [_grid(float(np.exp(t)), 2.0**-30) for t in EXP_KNOTS]
_R_TOP = _grid(LN2_40, 2.0**-29)  # the largest rounded r
while _line(EXP_KNOTS, EXP_VALUES, _R_TOP) > 2.0:
    EXP_VALUES[-1] -= 2.0**-30


def _exp(z: float) -> float:
    if z < -768.0:
        return 0.0
    q = (z + 1.5 * 2.0**12) - 1.5 * 2.0**12  # to a multiple of 2^-40
    n = int(q * 2.0**40) // int(LN2_40 * 2.0**40)
    r = q - n * LN2_40
    rq = (r + 1.5 * 2.0**23) - 1.5 * 2.0**23  # to a multiple of 2^-29
    return float(np.ldexp(_line(EXP_KNOTS, EXP_VALUES, rq), n))


def sigmoid(a) -> np.ndarray:
    out = np.zeros(np.shape(a))
    for index, x in np.ndenumerate(f64(a)):
        y = (min(abs(x), 22.0) + 1.5 * 2.0**26) - 1.5 * 2.0**26  # to a multiple of 2^-26
        out[index] = _exp(min(x, 0.0) - _line(SOFTPLUS_KNOTS, SOFTPLUS_VALUES, y))
    return out


# stdlib constants (restated from stdlib/*.fleq) -------------------------------------------------

ONE, HALF, ZERO = f64(1.0), f64(0.5), f64(0.0)  # arith_base: ar_one, ar_half, ar_zero
LA_ONES = np.ones(8)  # linalg_base: la_ones
LA_LO4, LA_HI4 = np.eye(8)[:4], np.eye(8)[4:]  # linalg_norms: the halves picked by 0/1 matrices
LA_LO2, LA_HI2 = np.eye(4)[:2], np.eye(4)[2:]
LA_LO1, LA_HI1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
LA_TWO_I = 2.0 * np.eye(8)  # linalg_inverse: la_two_i
AR_ROUNDS = f64(18.0)  # arith_range
AR_P92 = f64(2.0**92)  # arith_exact
SPLIT = f64(2.0**52 + 1)  # arith_exact: ar_split (Veltkamp's split to one bit)
AR_P32, AR_M32, AR_P64, AR_M64 = f64(2.0**32), f64(2.0**-32), f64(2.0**64), f64(2.0**-64)


def one_bit(a) -> np.ndarray:
    """``a`` rounded to one significant bit by Veltkamp's split (three instructions)."""
    c = mul(a, SPLIT)
    f = sub(c, a)
    return sub(c, f)


# linalg_norms.fleq ---------------------------------------------------------------------------------

def vmax8(x) -> np.ndarray:
    u4 = matmul(LA_LO4, x)
    w4 = matmul(LA_HI4, x)
    u4 = sub(u4, w4)
    u4 = relu(u4)
    u4 = add(w4, u4)
    u2 = matmul(LA_LO2, u4)
    w2 = matmul(LA_HI2, u4)
    u2 = sub(u2, w2)
    u2 = relu(u2)
    u2 = add(w2, u2)
    u1 = matmul(LA_LO1, u2)
    w1 = matmul(LA_HI1, u2)
    u1 = sub(u1, w1)
    u1 = relu(u1)
    return add(w1, u1)


def _abs(a) -> np.ndarray:
    m = sub(a, a)  # 0
    m = sub(m, a)
    m = relu(m)
    t = relu(a)
    return add(m, t)  # |A|


def norm1(a) -> np.ndarray:
    return vmax8(matmul(LA_ONES, _abs(a)))  # the largest column sum


def norminf(a) -> np.ndarray:
    return vmax8(matmul(_abs(a), LA_ONES))  # the largest row sum


# linalg_inverse.fleq -------------------------------------------------------------------------------

def inverse(a, max_iters=100.0, tol=1e18) -> tuple[np.ndarray, np.ndarray]:
    """``inverse``: (inv_out, inv_iters) for the 8 x 8 inv_a = ``a``; ``max_iters``, ``tol``: the
    cells inv_max and _iv_tol."""
    a, max_iters, tol = f64(a), f64(max_iters), f64(tol)
    s = mul(norm1(a), norminf(a))
    s = one_bit(s)  # 2^k
    s = recip(s)
    s = one_bit(s)  # exactly 2^-k
    x = a.T.copy()
    x = mul(x, s)
    iters = ZERO
    while True:
        r = matmul(a, x)
        r = sub(LA_TWO_I, r)  # 2I - A X
        out = matmul(x, r)  # X_new
        iters = add(iters, ONE)
        d = sub(out, x)
        d = mul(d, d)
        col = matmul(LA_ONES, d)
        c = matmul(col, LA_ONES)  # ||X_new - X||^2
        d = mul(out, out)
        col = matmul(LA_ONES, d)
        s = matmul(col, LA_ONES)  # ||X_new||^2
        x = out.copy()
        c = mul(c, tol)
        c = sub(c, s)
        if mul(c, AR_P92) <= 0:  # change <= 1e-9: stop
            break
        if sub(max_iters, iters) <= 0:  # out of iterations
            break
    return out, iters


def app_inverse4(a, e, et, p, **inverse_cells) -> dict[str, np.ndarray]:
    """samples/apps/app_inverse4.fleq: A (4 x 4) embedded as E A E^T + P, inverted, the corner
    E^T inv E taken back."""
    t84 = matmul(e, a)
    inv_a = matmul(t84, et)  # E A E^T
    inv_a = add(inv_a, p)  # [[A, 0], [0, I]]
    inv_out, inv_iters = inverse(inv_a, **inverse_cells)
    t48 = matmul(et, inv_out)
    x = matmul(t48, e)  # the top left block
    return {"x": x, "iters": inv_iters.copy()}


def app_inverse8(a, **inverse_cells) -> dict[str, np.ndarray]:
    """samples/apps/app_inverse8.fleq: the inverse of an 8 x 8 matrix."""
    inv_out, inv_iters = inverse(f64(a).copy(), **inverse_cells)
    return {"x": inv_out.copy(), "iters": inv_iters.copy()}


# arith_rsqrt.fleq ----------------------------------------------------------------------------------

def rsqrt(x) -> np.ndarray:
    """``rsqrt``: 1 / sqrt(x) by range reduction x = v 2^(-64k), y = recip(sqrt(v)), two Newton
    steps, y 2^(32k)."""
    v, k, n = f64(x), ZERO, AR_ROUNDS
    while True:  # _rs_down
        f = mul(v, AR_M32)
        if sub(ONE, f) <= 0:  # _rs_downscale
            v = mul(v, AR_M64)
            k = sub(k, ONE)
            continue
        break
    while True:  # _rs_up
        f = mul(v, AR_P32)
        if sub(f, ONE) > 0:
            break
        n = sub(n, ONE)  # _rs_upscale: subleq ar_one, _rs_n, _rs_newton
        if n <= 0:
            break
        v = mul(v, AR_P64)
        k = add(k, ONE)
    y = sqrt(v)  # _rs_newton
    y = recip(y)
    for _ in range(2):
        e = mul(y, y)
        e = mul(e, v)
        e = sub(ONE, e)
        e = mul(e, y)
        e = mul(e, HALF)
        y = add(y, e)
    while sub(k, HALF) > 0:  # _rs_grow
        y = mul(y, AR_P32)
        k = sub(k, ONE)
    while add(k, HALF) <= 0:  # _rs_shrink / _rs_less
        y = mul(y, AR_M32)
        k = add(k, ONE)
    return y.copy()


# linalg_power.fleq ---------------------------------------------------------------------------------

def power_iteration(a, v, max_iters=1000.0, tol=1e22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``power_iteration``: (pi_lambda, pi_v, pi_iters) for pi_a = ``a`` and the start vector pi_v =
    ``v``; ``max_iters``, ``tol``: the cells pi_max and _pi_tol."""
    a, v, max_iters, tol = f64(a), f64(v), f64(max_iters), f64(tol)
    v = mul(v, rsqrt(matmul(v, v)))
    iters, lam = ZERO, ZERO
    while True:
        w = matmul(a, v)
        l = matmul(v, w)  # lambda = v . A v
        v = mul(w, rsqrt(matmul(w, w)))
        iters = add(iters, ONE)
        c = sub(l, lam)
        lam = l.copy()
        c = mul(c, c)
        l = mul(l, l)
        c = mul(c, tol)
        c = sub(c, l)
        if mul(c, AR_P92) <= 0:  # change^2 1e22 <= lambda^2
            break
        if sub(max_iters, iters) <= 0:
            break
    return lam, v, iters


def app_power_iteration(a, v0, **cells) -> dict[str, np.ndarray]:
    """samples/apps/app_power_iteration.fleq: ``v0`` is the initial pi_v; ``cells``: max_iters,
    tol (pi_max, _pi_tol)."""
    lam, v, iters = power_iteration(a, v0, **cells)
    return {"lambda": lam, "v": v, "iters": iters}


# learn_backprop.fleq -------------------------------------------------------------------------------

_BP_ONES, _BP_ONEST, _BP_J = np.ones((1, 8)), np.ones((8, 1)), np.ones((4, 8))
_BP_E1, _BP_QUARTER, _BP_EIGHTH = np.ones(1), f64(0.25), f64(0.125)


def backprop_mlp2(x, y, lr, w1, b1, w2, b2):
    """One call of ``backprop_mlp2``: (bp_loss, w1, b1, w2, b2) for the batch bp_x = ``x`` (2 x 8),
    bp_y = ``y`` (1 x 8)."""
    z = matmul(w1, x)  # forward
    b48 = matmul(b1, _BP_ONES)
    z = add(z, b48)
    h = sigmoid(z)
    o = matmul(w2, h)
    b18 = matmul(b2, _BP_ONES)
    o = add(o, b18)
    e = sub(o, y)  # loss
    ev = matmul(_BP_E1, e)
    loss = matmul(ev, ev)
    loss = mul(loss, _BP_EIGHTH)
    d_out = mul(e, _BP_QUARTER)  # backward
    ht = h.T.copy()
    gw2 = matmul(d_out, ht)
    gb2 = matmul(d_out, _BP_ONEST)
    w2t = w2.T.copy()
    dh = matmul(w2t, d_out)
    s = sub(_BP_J, h)
    s = mul(s, h)
    s = mul(dh, s)  # dZ
    xt = x.T.copy()
    gw1 = matmul(s, xt)
    gb1 = matmul(s, _BP_ONEST)
    gw1 = mul(gw1, lr)  # update
    w1 = sub(w1, gw1)
    gb1 = mul(gb1, lr)
    b1 = sub(b1, gb1)
    gw2 = mul(gw2, lr)
    w2 = sub(w2, gw2)
    gb2 = mul(gb2, lr)
    b2 = sub(b2, gb2)
    return loss, w1, b1, w2, b2


def app_backprop(xa, ya, xb, yb, w1, b1, w2, b2, lr, epochs) -> dict[str, np.ndarray]:
    """samples/apps/app_backprop.fleq: ``epochs`` epochs of two batches (xa, ya), (xb, yb);
    loss_first / loss_last: the mean of the two batch losses in the first / last epoch."""
    weights = tuple(f64(w) for w in (w1, b1, w2, b2))
    lr, n, first = f64(lr), f64(epochs), ONE
    loss_first, done = ZERO, 0
    while True:
        loss_a, *weights = backprop_mlp2(f64(xa), f64(ya), lr, *weights)
        loss_b, *weights = backprop_mlp2(f64(xb), f64(yb), lr, *weights)
        loss_last = add(loss_a, loss_b)
        loss_last = mul(loss_last, HALF)
        done += 1
        if not first <= 0:  # jle _first, counted
            loss_first = loss_last.copy()  # the first epoch only
            first = ZERO
        n = sub(n, ONE)  # subleq _one, _n, trained
        if n <= 0:
            break
    w1, b1, w2, b2 = weights
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "loss_first": loss_first, "loss_last": loss_last,
            "epochs_run": f64(done)}


# Comparing in ulps ---------------------------------------------------------------------------------

def ulp_distance(got, want) -> np.ndarray:
    """How many float64 values lie between ``got`` and ``want``, entry by entry (0: bit for bit
    equal, +0.0 and -0.0 alike; 1: neighbours): the distance of their bit patterns mapped to an order
    that is monotone over the signs."""
    got, want = f64(got), f64(want)
    assert got.shape == want.shape, (got.shape, want.shape)

    def ordered(x: np.ndarray) -> np.ndarray:
        bits = (x + 0.0).view(np.int64).astype(object)  # + 0.0: -0.0 is +0.0
        return np.where(x < 0, -(bits & (2**63 - 1)), bits)

    return np.abs(ordered(got) - ordered(want)).astype(np.float64)
