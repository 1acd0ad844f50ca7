"""Compiled inner loops of the incremental engine (:mod:`fleqc.transformer.engine`).

numba compiles these once (cached on disk next to this file); without numba they run as plain
Python, slowly but with the same results. Every function takes and returns plain arrays: nothing
here knows what the rows of X mean.

Vector index
------------
:func:`search` answers "which stored vectors s have s . probe >= threshold" over a set of vectors
(one per column of X: the keys, or the queries, of one attention head) without scoring every one.
The vectors are sorted lexicographically over the components that are not constant; the sorted
array is an implicit trie: at depth t, a node is a run of vectors that agree on the first t sorted
components, and ``ends[t, p]`` is the end of the run of depth t + 1 that starts at p. A node's
bound is the exact part of the score fixed so far plus, for every later component, the largest
contribution any stored value of that component can make; a node whose bound is below the
threshold holds no vector that can reach it and is not entered (``slack`` absorbs the rounding of
the bound). The threshold rises as better vectors are found (``best - reach``), so a search for the
arg-max and every vector within ``reach`` of it visits O(depth) nodes per vector found when the
components are well separated, as positional codes are. A leaf (a run of identical vectors) is
scored exactly, by one dot product over all components in their natural order.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; the fallback keeps the engine usable (slowly) where it cannot load
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True)
def dot(a, b):
    """sum_i a[i] b[i], in index order."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True)
def search(probe, probe_sorted, const, S, full, ends, cmin, cmax, leaf_of, live, threshold, reach, slack,
           out_leaf, out_score, stack_t, stack_lo, stack_hi, stack_part, child_lo, child_hi, child_bound):
    """Leaves whose vector scores >= max(threshold, best - reach) against ``probe``.

    probe (D,): the probe in natural component order; probe_sorted (Dc,): its entries at the
    sorted (non-constant) components; const: the score contribution of the constant components.
    S (n, Dc): the sorted vectors' non-constant components; full (n, D): the same vectors whole;
    ends (Dc, n); cmin/cmax (Dc,): per component, the least and largest stored value; leaf_of (n,):
    the leaf of each sorted position; live (L,): members of each leaf still indexed (a leaf with 0 is
    skipped). Writes (leaf, score) pairs to out_leaf/out_score and returns (count, best); pairs found
    before ``best`` rose may lie below ``best - reach``: the caller filters. Scratch arrays: stack_*
    (n + Dc + 1,), child_* (n,).
    """
    Dc = S.shape[1]
    n = S.shape[0]
    suffix = np.zeros(Dc + 1)
    scale = abs(const)
    for t in range(Dc - 1, -1, -1):
        a = probe_sorted[t] * cmin[t]
        b = probe_sorted[t] * cmax[t]
        suffix[t] = suffix[t + 1] + (a if a > b else b)
        scale += abs(probe_sorted[t]) * max(abs(cmin[t]), abs(cmax[t]))
    tol = slack * (1.0 + scale)
    best = -np.inf
    count = 0
    if n == 0 or const + suffix[0] < threshold - tol:
        return 0, best
    top = 0
    stack_t[0] = 0
    stack_lo[0] = 0
    stack_hi[0] = n
    stack_part[0] = const
    top = 1
    while top > 0:
        top -= 1
        t = stack_t[top]
        lo = stack_lo[top]
        hi = stack_hi[top]
        part = stack_part[top]
        floor = threshold
        if best - reach > floor:
            floor = best - reach
        if part + suffix[t] < floor - tol:
            continue
        if t == Dc:
            leaf = leaf_of[lo]
            if live[leaf] > 0:
                s = dot(probe, full[lo])
                if s >= floor:
                    out_leaf[count] = leaf
                    out_score[count] = s
                    count += 1
                    if s > best:
                        best = s
            continue
        # children: runs of equal component t inside [lo, hi)
        m = 0
        p = lo
        while p < hi:
            e = ends[t, p]
            cb = part + probe_sorted[t] * S[p, t]
            if cb + suffix[t + 1] >= floor - tol:
                child_lo[m] = p
                child_hi[m] = e
                child_bound[m] = cb
                m += 1
            p = e
        # push in increasing order of bound, so the most promising child is searched first
        for i in range(1, m):
            j = i
            while j > 0 and child_bound[j - 1] > child_bound[j]:
                child_bound[j - 1], child_bound[j] = child_bound[j], child_bound[j - 1]
                child_lo[j - 1], child_lo[j] = child_lo[j], child_lo[j - 1]
                child_hi[j - 1], child_hi[j] = child_hi[j], child_hi[j - 1]
                j -= 1
        for i in range(m):
            stack_t[top] = t + 1
            stack_lo[top] = child_lo[i]
            stack_hi[top] = child_hi[i]
            stack_part[top] = child_bound[i]
            top += 1
    return count, best


@njit(cache=True)
def attend(probes, comps, const_comps, const_vals, S, full, ends, cmin, cmax, leaf_of, live, uniform,
           leaf_value, leaf_start, leaf_end, perm, stale, overflow, n_overflow, keys, values, reach, hardmax,
           slack, out_best, out_result):
    """For every probe (a query, (c, dk)): its attention over the indexed keys and the overflow keys.

    Softmax (``hardmax`` False): every key within ``reach`` of the best score gets
    exp(score - best) / Z; every other key's weight is exactly 0.0 in float64 (the caller chooses
    ``reach`` so that exp(-reach) underflows) and is skipped. Hardmax: the keys tying for the best
    score get 1/t. A leaf of identical keys counts each live member: if its members hold one value
    (``uniform``) as count * weight * value, else member by member. keys (n, dk) and values
    (n, dv) are the current vectors of every column (the overflow keys are read there). Writes out_best (c,) and
    out_result (c, dv): sum_keys weight * value, the head's attention output before the output map.
    """
    n = S.shape[0]
    Dc = S.shape[1]
    dv = values.shape[1]
    size = n + Dc + 1
    stack_t = np.empty(size, np.int64)
    stack_lo = np.empty(size, np.int64)
    stack_hi = np.empty(size, np.int64)
    stack_part = np.empty(size)
    child_lo = np.empty(max(n, 1), np.int64)
    child_hi = np.empty(max(n, 1), np.int64)
    child_bound = np.empty(max(n, 1))
    out_leaf = np.empty(max(n, 1), np.int64)
    out_score = np.empty(max(n, 1))
    ov_score = np.empty(max(n_overflow, 1))
    probe_sorted = np.empty(Dc)
    for q in range(probes.shape[0]):
        probe = probes[q]
        for t in range(Dc):
            probe_sorted[t] = probe[comps[t]]
        const = 0.0
        for t in range(const_comps.shape[0]):
            const += probe[const_comps[t]] * const_vals[t]
        best = -np.inf
        for o in range(n_overflow):
            s = dot(probe, keys[overflow[o]])
            ov_score[o] = s
            if s > best:
                best = s
        threshold = best - reach if best > -np.inf else -np.inf
        count, tbest = search(probe, probe_sorted, const, S, full, ends, cmin, cmax, leaf_of, live,
                              threshold, reach, slack, out_leaf, out_score, stack_t, stack_lo, stack_hi,
                              stack_part, child_lo, child_hi, child_bound)
        if tbest > best:
            best = tbest
        floor = best - reach
        # normaliser
        Z = 0.0
        for i in range(count):
            s = out_score[i]
            if s >= floor and (not hardmax or s == best):
                e = 1.0 if hardmax else np.exp(s - best)
                Z += live[out_leaf[i]] * e
        for o in range(n_overflow):
            s = ov_score[o]
            if s >= floor and (not hardmax or s == best):
                Z += 1.0 if hardmax else np.exp(s - best)
        result = np.zeros(dv)
        for i in range(count):
            s = out_score[i]
            if s >= floor and (not hardmax or s == best):
                e = 1.0 if hardmax else np.exp(s - best)
                w = e / Z
                if w == 0.0:
                    continue
                leaf = out_leaf[i]
                if uniform[leaf]:
                    for r in range(dv):
                        result[r] += live[leaf] * (w * leaf_value[leaf, r])
                else:
                    for p in range(leaf_start[leaf], leaf_end[leaf]):
                        col = perm[p]
                        if not stale[col]:
                            for r in range(dv):
                                result[r] += w * values[col, r]
        for o in range(n_overflow):
            s = ov_score[o]
            if s >= floor and (not hardmax or s == best):
                e = 1.0 if hardmax else np.exp(s - best)
                w = e / Z
                if w == 0.0:
                    continue
                col = overflow[o]
                for r in range(dv):
                    result[r] += w * values[col, r]
        out_best[q] = best
        for r in range(dv):
            out_result[q, r] = result[r]


@njit(cache=True)
def find(probe, comps, const_comps, const_vals, S, full, ends, cmin, cmax, leaf_of, live, threshold, slack):
    """Leaves whose vector scores >= threshold against ``probe`` (no rising threshold): (leaves, scores)."""
    n = S.shape[0]
    Dc = S.shape[1]
    size = n + Dc + 1
    probe_sorted = np.empty(Dc)
    for t in range(Dc):
        probe_sorted[t] = probe[comps[t]]
    const = 0.0
    for t in range(const_comps.shape[0]):
        const += probe[const_comps[t]] * const_vals[t]
    out_leaf = np.empty(max(n, 1), np.int64)
    out_score = np.empty(max(n, 1))
    count, _ = search(probe, probe_sorted, const, S, full, ends, cmin, cmax, leaf_of, live, threshold, np.inf,
                      slack, out_leaf, out_score, np.empty(size, np.int64), np.empty(size, np.int64),
                      np.empty(size, np.int64), np.empty(size), np.empty(max(n, 1), np.int64),
                      np.empty(max(n, 1), np.int64), np.empty(max(n, 1)))
    return out_leaf[:count].copy(), out_score[:count].copy()


@njit(cache=True)
def feed_forward_columns(X, cols, w1_ptr, w1_idx, w1_val, b1, w2_ptr, w2_idx, w2_val, b2, out):
    """out[:, k] = X[:, cols[k]] + W2 ReLU(W1 X[:, cols[k]] + b1) + b2 for each k.

    W1 is given by rows (unit u reads w1_idx[w1_ptr[u]:w1_ptr[u+1]]), W2 by rows too (row r of X
    sums units w2_idx[w2_ptr[r]:w2_ptr[r+1]]): the nonzeros only, each sum in column order. Returns
    False (and leaves ``out`` unfinished) if a hidden unit is +inf or NaN or X is not finite, where
    the dense product spreads 0 * inf = NaN and the caller must use it instead.
    """
    h = b1.shape[0]
    d = X.shape[0]
    hidden = np.empty(h)
    for k in range(cols.shape[0]):
        c = cols[k]
        for r in range(d):
            if not np.isfinite(X[r, c]):
                return False
        for u in range(h):
            s = 0.0
            for p in range(w1_ptr[u], w1_ptr[u + 1]):
                s += w1_val[p] * X[w1_idx[p], c]
            s += b1[u]
            if s > 0.0:
                if s == np.inf:
                    return False
                hidden[u] = s
            elif s <= 0.0:
                hidden[u] = 0.0
            else:  # NaN
                return False
        for r in range(d):
            s = 0.0
            for p in range(w2_ptr[r], w2_ptr[r + 1]):
                s += w2_val[p] * hidden[w2_idx[p]]
            out[r, k] = X[r, c] + (s + b2[r])
    return True


@njit(cache=True)
def affected(probes, comps, const_comps, const_vals, S, full, ends, cmin, cmax, leaf_of, live, leaf_best,
             threshold, reach, slack, out):
    """The query leaves for which some probe (a key, old or new) scores within ``reach`` of the
    leaf's best score, i.e. where that key has or gains a nonzero weight. Searches every leaf, live or
    not (``live`` is all ones here); writes the distinct leaves to ``out`` and returns their count."""
    n = S.shape[0]
    Dc = S.shape[1]
    size = n + Dc + 1
    probe_sorted = np.empty(Dc)
    out_leaf = np.empty(max(n, 1), np.int64)
    out_score = np.empty(max(n, 1))
    stack_t = np.empty(size, np.int64)
    stack_lo = np.empty(size, np.int64)
    stack_hi = np.empty(size, np.int64)
    stack_part = np.empty(size)
    child_lo = np.empty(max(n, 1), np.int64)
    child_hi = np.empty(max(n, 1), np.int64)
    child_bound = np.empty(max(n, 1))
    seen = np.zeros(leaf_best.shape[0], np.bool_)
    total = 0
    for q in range(probes.shape[0]):
        probe = probes[q]
        for t in range(Dc):
            probe_sorted[t] = probe[comps[t]]
        const = 0.0
        for t in range(const_comps.shape[0]):
            const += probe[const_comps[t]] * const_vals[t]
        count, _ = search(probe, probe_sorted, const, S, full, ends, cmin, cmax, leaf_of, live, threshold,
                          np.inf, slack, out_leaf, out_score, stack_t, stack_lo, stack_hi, stack_part, child_lo,
                          child_hi, child_bound)
        for i in range(count):
            leaf = out_leaf[i]
            best = leaf_best[leaf]
            if not seen[leaf] and out_score[i] >= best - reach - slack * (1.0 + abs(best)):
                seen[leaf] = True
                out[total] = leaf
                total += 1
    return total
