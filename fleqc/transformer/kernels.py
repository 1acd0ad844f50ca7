"""Compiled inner loops of the incremental engine (:mod:`fleqc.transformer.incremental`).

numba compiles these once (cached on disk next to this file); without numba they run as plain
Python, slowly but with the same results. Everything here takes plain arrays and knows nothing of
what the rows of X mean. The states live in X stored by column: ``A[l]`` is (n, d), one row per
column of X, so a column is contiguous.

Vector index (a tuple of arrays, fields ``IX_*``)
-------------------------------------------------
:func:`search` answers "which stored vectors s have s . probe >= threshold" over one vector per
column (the keys, or the queries, of one head) without scoring every one. The vectors are sorted
lexicographically over their non-constant components; the sorted array is an implicit trie: at
depth t a node is a run of vectors that agree on the first t sorted components, and ``ends[t, p]``
is the end of the depth-(t + 1) run starting at p. A node's bound is the part of the score fixed
so far plus, for every later component, the largest contribution any stored value of it can make;
a node whose bound is below the threshold holds no vector that reaches it and is not entered
(``slack`` absorbs the rounding of a bound summed in another order). The threshold rises as
better vectors are found (``best - reach``). A leaf (a run of identical vectors) is scored exactly,
by one dot product over all components in their natural order.

A column whose vector changes leaves its leaf (``live`` counts the members still there) and joins
the ``overflow``, scanned directly by every search, until its vector is its snapshot again; the
engine rebuilds an index whose overflow grows large. A key index also knows, per leaf, whether its
live members share one value (``uniform``, ``leaf_value``), so a leaf of many identical keys and
values is weighed once.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; the fallback keeps the engine usable (slowly) where it cannot load
    from numba import njit
    from numba.typed import List
except ImportError:  # pragma: no cover - exercised only without numba
    List = list

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


# fields of an index tuple
(IX_COMPS, IX_CONST_COMPS, IX_CONST_VALS, IX_S, IX_FULL, IX_ENDS, IX_CMIN, IX_CMAX, IX_LEAF_OF, IX_LIVE,
 IX_ONES, IX_PERM, IX_POS_OF, IX_LEAF_START, IX_LEAF_END, IX_STALE, IX_OVERFLOW, IX_META, IX_OV_POS,
 IX_LEAF_VALUE, IX_UNIFORM) = range(21)
# fields of a head tuple
(HD_KEYS, HD_QUERIES, HD_Q, HD_K, HD_V, HD_LEAF_BEST, HD_LEAF_RESULT, HD_LEAF_VALID, HD_COL_BEST,
 HD_COL_RESULT, HD_FMETA, HD_LEAF_MARK) = range(12)
# fields of the scratch tuple
(SC_STACK_T, SC_STACK_LO, SC_STACK_HI, SC_STACK_PART, SC_CHILD_LO, SC_CHILD_HI, SC_CHILD_BOUND, SC_LEAF,
 SC_SCORE, SC_OV_SCORE, SC_PROBE_SORTED, SC_SUFFIX, SC_AFFECTED, SC_TOUCHED, SC_COL_MARK, SC_PROBE,
 SC_OUT) = range(17)

OK, NOT_FINITE = 0, 1


@njit(cache=True)
def dot(a, b):
    """sum_i a[i] b[i], in index order."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True)
def search(probe, ix, live, threshold, reach, slack, sc):
    """Leaves whose vector scores >= max(threshold, best - reach) against ``probe``.

    Writes (leaf, score) pairs to sc[SC_LEAF], sc[SC_SCORE] and returns (count, best); a pair found
    before ``best`` rose may lie below ``best - reach``: the caller filters. Leaves with ``live`` 0
    are skipped.
    """
    comps = ix[IX_COMPS]
    S = ix[IX_S]
    full = ix[IX_FULL]
    ends = ix[IX_ENDS]
    cmin = ix[IX_CMIN]
    cmax = ix[IX_CMAX]
    leaf_of = ix[IX_LEAF_OF]
    Dc = comps.shape[0]
    n = S.shape[0]
    ps = sc[SC_PROBE_SORTED]
    suffix = sc[SC_SUFFIX]
    const = 0.0
    cc = ix[IX_CONST_COMPS]
    cv = ix[IX_CONST_VALS]
    for t in range(cc.shape[0]):
        const += probe[cc[t]] * cv[t]
    scale = abs(const)
    suffix[Dc] = 0.0
    for t in range(Dc - 1, -1, -1):
        ps[t] = probe[comps[t]]
        a = ps[t] * cmin[t]
        b = ps[t] * cmax[t]
        suffix[t] = suffix[t + 1] + (a if a > b else b)
        scale += abs(ps[t]) * max(abs(cmin[t]), abs(cmax[t]))
    tol = slack * (1.0 + scale)
    best = -np.inf
    count = 0
    if n == 0 or const + suffix[0] < threshold - tol:
        return 0, best
    st_t = sc[SC_STACK_T]
    st_lo = sc[SC_STACK_LO]
    st_hi = sc[SC_STACK_HI]
    st_part = sc[SC_STACK_PART]
    ch_lo = sc[SC_CHILD_LO]
    ch_hi = sc[SC_CHILD_HI]
    ch_b = sc[SC_CHILD_BOUND]
    out_leaf = sc[SC_LEAF]
    out_score = sc[SC_SCORE]
    st_t[0] = 0
    st_lo[0] = 0
    st_hi[0] = n
    st_part[0] = const
    top = 1
    while top > 0:
        top -= 1
        t = st_t[top]
        lo = st_lo[top]
        hi = st_hi[top]
        part = st_part[top]
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
        m = 0
        p = lo
        while p < hi:  # children: the runs of equal component t inside [lo, hi)
            e = ends[t, p]
            cb = part + ps[t] * S[p, t]
            if cb + suffix[t + 1] >= floor - tol:
                ch_lo[m] = p
                ch_hi[m] = e
                ch_b[m] = cb
                m += 1
            p = e
        for i in range(1, m):  # push in increasing bound: the most promising child is popped first
            j = i
            while j > 0 and ch_b[j - 1] > ch_b[j]:
                ch_b[j - 1], ch_b[j] = ch_b[j], ch_b[j - 1]
                ch_lo[j - 1], ch_lo[j] = ch_lo[j], ch_lo[j - 1]
                ch_hi[j - 1], ch_hi[j] = ch_hi[j], ch_hi[j - 1]
                j -= 1
        for i in range(m):
            st_t[top] = t + 1
            st_lo[top] = ch_lo[i]
            st_hi[top] = ch_hi[i]
            st_part[top] = ch_b[i]
            top += 1
    return count, best


@njit(cache=True)
def attend(probe, kix, K, V, reach, hardmax, slack, sc, result):
    """One query's attention over the indexed and the overflow keys; writes sum_keys weight * value
    to ``result`` (dv,) and returns the best score.

    Softmax: every key within ``reach`` of the best score gets exp(score - best) / Z; every other
    key's weight is exactly 0.0 in float64 (``reach`` is chosen so that exp(-reach) underflows) and
    is left out. Hardmax: the keys tying for the best score get 1/t. A leaf counts each live member:
    as count * (weight * value) if its members share one value, else member by member.
    """
    ov = kix[IX_OVERFLOW]
    n_ov = kix[IX_META][0]
    live = kix[IX_LIVE]
    uniform = kix[IX_UNIFORM]
    leaf_value = kix[IX_LEAF_VALUE]
    ov_score = sc[SC_OV_SCORE]
    dv = V.shape[1]
    best = -np.inf
    for o in range(n_ov):
        s = dot(probe, K[ov[o]])
        ov_score[o] = s
        if s > best:
            best = s
    threshold = best - reach
    count, tbest = search(probe, kix, live, threshold, reach, slack, sc)
    if tbest > best:
        best = tbest
    floor = best - reach
    out_leaf = sc[SC_LEAF]
    out_score = sc[SC_SCORE]
    Z = 0.0
    for i in range(count):
        s = out_score[i]
        if s >= floor and (not hardmax or s == best):
            Z += live[out_leaf[i]] * (1.0 if hardmax else np.exp(s - best))
    for o in range(n_ov):
        s = ov_score[o]
        if s >= floor and (not hardmax or s == best):
            Z += 1.0 if hardmax else np.exp(s - best)
    for r in range(dv):
        result[r] = 0.0
    for i in range(count):
        s = out_score[i]
        if s >= floor and (not hardmax or s == best):
            w = (1.0 if hardmax else np.exp(s - best)) / Z
            if w == 0.0:
                continue
            leaf = out_leaf[i]
            if uniform[leaf]:
                c = live[leaf]
                for r in range(dv):
                    result[r] += c * (w * leaf_value[leaf, r])
            else:
                perm = kix[IX_PERM]
                stale = kix[IX_STALE]
                for p in range(kix[IX_LEAF_START][leaf], kix[IX_LEAF_END][leaf]):
                    col = perm[p]
                    if not stale[col]:
                        for r in range(dv):
                            result[r] += w * V[col, r]
    for o in range(n_ov):
        s = ov_score[o]
        if s >= floor and (not hardmax or s == best):
            w = (1.0 if hardmax else np.exp(s - best)) / Z
            if w == 0.0:
                continue
            col = ov[o]
            for r in range(dv):
                result[r] += w * V[col, r]
    return best


@njit(cache=True)
def attend_all(probes, head, reach, hardmax, slack, sc, out_best, out_result):
    """:func:`attend` for every row of ``probes``."""
    for q in range(probes.shape[0]):
        out_best[q] = attend(probes[q], head[HD_KEYS], head[HD_K], head[HD_V], reach, hardmax, slack, sc,
                             out_result[q])


@njit(cache=True)
def _value_changed(ix, leaf, value):
    live = ix[IX_LIVE]
    leaf_value = ix[IX_LEAF_VALUE]
    uniform = ix[IX_UNIFORM]
    if live[leaf] == 1:
        leaf_value[leaf, :] = value
        uniform[leaf] = True
    elif uniform[leaf]:
        for r in range(value.shape[0]):
            if value[r] != leaf_value[leaf, r]:
                uniform[leaf] = False
                break


@njit(cache=True)
def index_update(ix, col, vector, value, has_value):
    """Column ``col`` now holds ``vector`` (and ``value``): keep its leaf, ``live`` and the overflow right."""
    p = ix[IX_POS_OF][col]
    leaf = ix[IX_LEAF_OF][p]
    full = ix[IX_FULL]
    back = True
    for t in range(vector.shape[0]):
        if vector[t] != full[p, t]:
            back = False
            break
    stale = ix[IX_STALE]
    live = ix[IX_LIVE]
    ov = ix[IX_OVERFLOW]
    meta = ix[IX_META]
    ov_pos = ix[IX_OV_POS]
    if not stale[col]:
        if back:
            if has_value:
                _value_changed(ix, leaf, value)
            return
        stale[col] = True
        live[leaf] -= 1
        ov[meta[0]] = col
        ov_pos[col] = meta[0]
        meta[0] += 1
    elif back:
        stale[col] = False
        i = ov_pos[col]
        last = ov[meta[0] - 1]
        ov[i] = last
        ov_pos[last] = i
        meta[0] -= 1
        live[leaf] += 1
        if has_value:
            _value_changed(ix, leaf, value)


@njit(cache=True)
def _differs(a, b):
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return True
    return False


@njit(cache=True)
def _mark(col, sc, n_touched):
    mark = sc[SC_COL_MARK]
    if not mark[col]:
        mark[col] = True
        sc[SC_TOUCHED][n_touched] = col
        n_touched += 1
    return n_touched


@njit(cache=True)
def _find_affected(probe, head, reach, slack, sc, n_aff):
    """Add to sc[SC_AFFECTED] the query leaves for which ``probe`` (a key, old or new) scores within
    ``reach`` of the leaf's best: where that key has, or gains, a nonzero weight."""
    qix = head[HD_QUERIES]
    leaf_best = head[HD_LEAF_BEST]
    mark = head[HD_LEAF_MARK]
    aff = sc[SC_AFFECTED]
    count, _ = search(probe, qix, qix[IX_ONES], head[HD_FMETA][0] - reach, np.inf, slack, sc)
    out_leaf = sc[SC_LEAF]
    out_score = sc[SC_SCORE]
    for i in range(count):
        leaf = out_leaf[i]
        best = leaf_best[leaf]
        if not mark[leaf] and out_score[i] >= best - reach - slack * (1.0 + abs(best)):
            mark[leaf] = True
            aff[n_aff] = leaf
            n_aff += 1
    return n_aff


@njit(cache=True)
def head_update(head, dirty, P, base, dk, dv, reach, hardmax, slack, sc, n_touched):
    """Bring one head up to date with the new queries, keys and values of the columns ``dirty``
    (rows base.. of P: dk query rows, dk key rows, dv value rows, one column per dirty column); mark
    in sc the columns whose attention output (or group) changed; return the new touched count."""
    kix = head[HD_KEYS]
    qix = head[HD_QUERIES]
    Q = head[HD_Q]
    K = head[HD_K]
    V = head[HD_V]
    leaf_best = head[HD_LEAF_BEST]
    leaf_result = head[HD_LEAF_RESULT]
    leaf_valid = head[HD_LEAF_VALID]
    fmeta = head[HD_FMETA]
    mark = head[HD_LEAF_MARK]
    aff = sc[SC_AFFECTED]
    probe = sc[SC_PROBE]
    result = sc[SC_OUT]
    n_aff = 0
    c = dirty.shape[0]
    for i in range(c):  # keys and values
        col = dirty[i]
        kchg = False
        for t in range(dk):
            if P[base + dk + t, i] != K[col, t]:
                kchg = True
                break
        vchg = False
        for r in range(dv):
            if P[base + 2 * dk + r, i] != V[col, r]:
                vchg = True
                break
        if not (kchg or vchg):
            continue
        for t in range(dk):
            probe[t] = K[col, t]
        n_aff = _find_affected(probe[:dk], head, reach, slack, sc, n_aff)
        for t in range(dk):
            K[col, t] = P[base + dk + t, i]
        for r in range(dv):
            V[col, r] = P[base + 2 * dk + r, i]
        if kchg:
            n_aff = _find_affected(K[col], head, reach, slack, sc, n_aff)
        index_update(kix, col, K[col], V[col], True)
    qstale = qix[IX_STALE]
    for i in range(c):  # queries
        col = dirty[i]
        qchg = False
        for t in range(dk):
            if P[base + t, i] != Q[col, t]:
                qchg = True
                break
        if not qchg:
            continue
        for t in range(dk):
            Q[col, t] = P[base + t, i]
        index_update(qix, col, Q[col], V[col], False)
        n_touched = _mark(col, sc, n_touched)
        if not qstale[col]:
            leaf = qix[IX_LEAF_OF][qix[IX_POS_OF][col]]
            if not leaf_valid[leaf] and not mark[leaf]:
                mark[leaf] = True
                aff[n_aff] = leaf
                n_aff += 1
    qlive = qix[IX_LIVE]
    qfull = qix[IX_FULL]
    qstart = qix[IX_LEAF_START]
    qend = qix[IX_LEAF_END]
    qperm = qix[IX_PERM]
    for a in range(n_aff):  # recompute the groups that can have changed
        leaf = aff[a]
        mark[leaf] = False
        if qlive[leaf] == 0:
            leaf_valid[leaf] = False
            continue
        best = attend(qfull[qstart[leaf]], kix, K, V, reach, hardmax, slack, sc, result[:dv])
        leaf_valid[leaf] = True
        leaf_best[leaf] = best
        if best < fmeta[0]:
            fmeta[0] = best
        if _differs(result[:dv], leaf_result[leaf]):
            leaf_result[leaf, :] = result[:dv]
            for p in range(qstart[leaf], qend[leaf]):
                col = qperm[p]
                if not qstale[col]:
                    n_touched = _mark(col, sc, n_touched)
    ov = qix[IX_OVERFLOW]
    col_best = head[HD_COL_BEST]
    col_result = head[HD_COL_RESULT]
    for o in range(qix[IX_META][0]):  # queries outside the index: computed every time
        col = ov[o]
        best = attend(Q[col], kix, K, V, reach, hardmax, slack, sc, result[:dv])
        col_best[col] = best
        if best < fmeta[0]:
            fmeta[0] = best
        if _differs(result[:dv], col_result[col]):
            col_result[col, :] = result[:dv]
            n_touched = _mark(col, sc, n_touched)
    return n_touched


@njit(cache=True)
def project(X, cols, reads, ptr, idx, val):
    """M @ X[cols][:, reads].T for M given by its nonzeros row by row (ptr, idx, val): (rows of M,
    len(cols)), each sum over the nonzeros in index order (the zeros add nothing to a finite sum)."""
    P = np.zeros((ptr.shape[0] - 1, cols.shape[0]))
    x = np.empty(reads.shape[0])
    for i in range(cols.shape[0]):
        row = X[cols[i]]
        for j in range(reads.shape[0]):
            x[j] = row[reads[j]]
        for m in range(ptr.shape[0] - 1):
            s = 0.0
            for p in range(ptr[m], ptr[m + 1]):
                s += val[p] * x[idx[p]]
            P[m, i] = s
    return P


@njit(cache=True)
def attention_pass(prev, cur, dirty, reads, proj, output, rows, dims, heads, reach, hardmax, slack, sc):
    """One attention layer over the columns ``dirty`` whose input changed; returns (status, changed).

    prev, cur (n, d): the layer's input and its output from the previous pass (updated in place).
    proj: the nonzeros (ptr, idx, val) of the stacked Q, K, V maps of the kept heads, (H (2dk + dv),
    len(reads)), on the rows they read; output: the nonzeros of the output maps (len(rows), H dv)
    on the rows they write. dims: H, dk, dv, first head in ``heads``.
    """
    H, dk, dv, h0 = dims[0], dims[1], dims[2], dims[3]
    c = dirty.shape[0]
    d = prev.shape[1]
    for i in range(c):
        for r in range(d):
            if not np.isfinite(prev[dirty[i], r]):
                return NOT_FINITE, np.empty(0, np.int64)
    width = 2 * dk + dv
    P = project(prev, dirty, reads, proj[0], proj[1], proj[2])
    n_touched = 0
    for i in range(c):
        n_touched = _mark(dirty[i], sc, n_touched)
    for h in range(H):
        n_touched = head_update(heads[h0 + h], dirty, P, h * width, dk, dv, reach, hardmax, slack, sc, n_touched)
    touched = sc[SC_TOUCHED]
    mark = sc[SC_COL_MARK]
    R = np.empty((n_touched, H * dv))  # every touched column's head outputs, gathered head by head
    for h in range(H):
        head = heads[h0 + h]
        qix = head[HD_QUERIES]
        qstale = qix[IX_STALE]
        qleaf = qix[IX_LEAF_OF]
        qpos = qix[IX_POS_OF]
        col_result = head[HD_COL_RESULT]
        leaf_result = head[HD_LEAF_RESULT]
        for i in range(n_touched):
            col = touched[i]
            if qstale[col]:
                for r in range(dv):
                    R[i, h * dv + r] = col_result[col, r]
            else:
                leaf = qleaf[qpos[col]]
                for r in range(dv):
                    R[i, h * dv + r] = leaf_result[leaf, r]
    out = np.empty(d)
    changed = np.empty(n_touched, np.int64)
    n_changed = 0
    for i in range(n_touched):
        col = touched[i]
        mark[col] = False
        x = prev[col]
        for r in range(d):
            out[r] = x[r]
        Ri = R[i]
        optr, oidx, oval = output
        for j in range(rows.shape[0]):
            s = 0.0
            for p in range(optr[j], optr[j + 1]):
                s += oval[p] * Ri[oidx[p]]
            out[rows[j]] = x[rows[j]] + s
        if _differs(out, cur[col]):
            cur[col, :] = out
            changed[n_changed] = col
            n_changed += 1
    return OK, np.sort(changed[:n_changed])


@njit(cache=True)
def feed_forward_pass(prev, cur, cols, p1, i1, v1, b1, p2, i2, v2, b2, written, first):
    """cur[c] = prev[c] + W2 ReLU(W1 prev[c] + b1) + b2 for each column c in ``cols``, through the
    nonzeros of W1 and W2 (given by rows), each sum in index order; returns (status, changed).
    ``written``: the rows W2 or b2 can change; every other row is prev + 0.0, as in the dense sum.

    NOT_FINITE if an input or a hidden unit is not finite: the dense product spreads 0 * inf = NaN
    where this one would not, so the caller must evaluate the dense definition instead.
    """
    h = b1.shape[0]
    d = prev.shape[1]
    hidden = np.empty(h)
    out = np.empty(d)
    changed = np.empty(cols.shape[0], np.int64)
    n_changed = 0
    for k in range(cols.shape[0]):
        c = cols[k]
        x = prev[c]
        for r in range(d):
            if not np.isfinite(x[r]):
                return NOT_FINITE, np.empty(0, np.int64)
            out[r] = x[r] + 0.0
        for u in range(h):
            s = 0.0
            for p in range(p1[u], p1[u + 1]):
                s += v1[p] * x[i1[p]]
            s += b1[u]
            if s > 0.0:
                if s == np.inf:
                    return NOT_FINITE, np.empty(0, np.int64)
                hidden[u] = s
            elif s <= 0.0:
                hidden[u] = 0.0
            else:
                return NOT_FINITE, np.empty(0, np.int64)
        for t in range(written.shape[0]):
            r = written[t]
            s = 0.0
            for p in range(p2[r], p2[r + 1]):
                s += v2[p] * hidden[i2[p]]
            out[r] = x[r] + (s + b2[r])
        if first or _differs(out, cur[c]):
            cur[c, :] = out
            changed[n_changed] = c
            n_changed += 1
    return OK, changed[:n_changed].copy()


@njit(cache=True)
def layer_pass(l, A, dirty, model, reach, hardmax, slack, first):
    """Layer ``l`` of a pass: A[l] is its input, A[l + 1] its output; returns (status, changed).

    ``model`` is a typed list of one tuple (kinds, where, feed-forward layers, attention layers,
    heads, scratch): one argument to pass from Python instead of six.
    """
    kinds, where, ffns, atts, heads, sc = model[0]
    if kinds[l] == 0:
        f = ffns[where[l]]
        return feed_forward_pass(A[l], A[l + 1], dirty, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], first)
    a = atts[where[l]]
    if dirty.shape[0] == 0:
        return OK, dirty.copy()
    return attention_pass(A[l], A[l + 1], dirty, a[0], a[1], a[2], a[3], a[4], heads, reach, hardmax, slack, sc)


@njit(cache=True)
def engine_pass(A, dirty, model, reach, hardmax, slack, counts):
    """Every layer of one pass (after the first): returns (status, columns of the output that changed).

    The caller copies the changed columns of A[L] into A[0], the next pass's input.
    """
    for l in range(model[0][0].shape[0]):
        status, dirty = layer_pass(l, A, dirty, model, reach, hardmax, slack, False)
        if status != OK:
            return status, dirty
        counts[l] += dirty.shape[0]
    return OK, dirty


# what ended a run of passes (:func:`run_passes`), named where the executor reads them without numba
from fleqc.transformer.passes import (  # noqa: E402
    RUN_FIXED, RUN_FLAGGED, RUN_LIMIT, RUN_NOT_FINITE, RUN_REBUILD, RUN_WATCHED)


@njit(cache=True)
def _flagged(A, L, changed, ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max):
    """Whether the output of a pass (A[L], committed only for the columns ``changed``) leaves the
    caller's filter: a value that is not finite, an entry of a ``ternary`` row that is not exactly
    -1, 0 or +1, a register (the unsigned number read from the signs of rows reg_rows[reg_ptr[k]:
    reg_ptr[k + 1]] of column reg_col[k]) outside [reg_lo[k], reg_hi[k]), an entry (lim_row[k],
    lim_col[k]) above lim_max[k]."""
    out = A[L]
    d = out.shape[1]
    for i in range(changed.shape[0]):
        x = out[changed[i]]
        for r in range(d):
            v = x[r]
            if not np.isfinite(v):
                return True
            if ternary[r] and not (v == 0.0 or v == 1.0 or v == -1.0):
                return True
    for k in range(reg_col.shape[0]):
        x = out[reg_col[k]]
        value = 0
        for j in range(reg_ptr[k], reg_ptr[k + 1]):
            if x[reg_rows[j]] > 0.0:
                value += 1 << (j - reg_ptr[k])
        if value < reg_lo[k] or value >= reg_hi[k]:
            return True
    for k in range(lim_row.shape[0]):
        if not out[lim_col[k], lim_row[k]] <= lim_max[k]:
            return True
    return False


@njit(cache=True)
def run_passes(A, changed, model, reach, hardmax, slack, counts, max_passes, overflow, rebuild_at, check, watch,
               union, union_mark, n_union):
    """Up to ``max_passes`` passes (after the first) in one call: returns (reason, passes committed,
    columns changed by the last pass computed, columns in ``union``).

    After each pass: no column changed -> RUN_FIXED (a fixed point); a value the pass met was not
    finite -> RUN_NOT_FINITE (nothing committed: the caller redoes the pass by the definition);
    its output leaves the caller's filter ``check`` (:func:`_flagged`; ternary, register and limit
    arrays) -> RUN_FLAGGED (computed, not committed: the caller commits it with its own checks);
    otherwise the changed columns of A[L] are copied into A[0] (committed) and added to ``union``
    (marked in ``union_mark``), and the loop returns RUN_WATCHED after a pass that changed an entry
    (watch[k, 0], watch[k, 1]) = (row, column), RUN_REBUILD when an index's overflow passed
    ``rebuild_at``, RUN_LIMIT after ``max_passes``.
    """
    ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max = check
    kinds, where, ffns, atts, heads, sc = model[0]  # once per call: every item taken out is counted
    L = kinds.shape[0]
    for done in range(max_passes):
        status = OK
        dirty = changed
        for l in range(L):  # layer_pass, without taking the model apart again for every layer
            if kinds[l] == 0:
                f = ffns[where[l]]
                status, dirty = feed_forward_pass(A[l], A[l + 1], dirty, f[0], f[1], f[2], f[3], f[4], f[5], f[6],
                                                  f[7], f[8], False)
            elif dirty.shape[0] > 0:
                a = atts[where[l]]
                status, dirty = attention_pass(A[l], A[l + 1], dirty, a[0], a[1], a[2], a[3], a[4], heads, reach,
                                               hardmax, slack, sc)
            if status != OK:
                break
            counts[l] += dirty.shape[0]
        if status != OK:
            return RUN_NOT_FINITE, done, changed, n_union
        changed = dirty
        if changed.shape[0] == 0:
            return RUN_FIXED, done, changed, n_union
        if _flagged(A, L, changed, ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max):
            return RUN_FLAGGED, done, changed, n_union
        watched = False
        for k in range(watch.shape[0]):
            if A[L, watch[k, 1], watch[k, 0]] != A[0, watch[k, 1], watch[k, 0]]:
                watched = True
        for i in range(changed.shape[0]):
            c = changed[i]
            A[0, c, :] = A[L, c, :]
            if not union_mark[c]:
                union_mark[c] = True
                union[n_union] = c
                n_union += 1
        if watched:
            return RUN_WATCHED, done + 1, changed, n_union
        for h in range(overflow.shape[0]):
            if overflow[h, 0] > rebuild_at or overflow[h, 1] > rebuild_at:
                return RUN_REBUILD, done + 1, changed, n_union
    return RUN_LIMIT, max_passes, changed, n_union


# Typed lists are made and changed here, in compiled (and so cached) code: numba compiles the
# methods of a typed list used from Python anew in every process, seconds each time.


@njit(cache=True)
def new_list(item):
    """A typed list holding ``item``."""
    items = List()
    items.append(item)
    return items


@njit(cache=True)
def list_append(items, item):
    items.append(item)


@njit(cache=True)
def list_set(items, index, item):
    items[index] = item
