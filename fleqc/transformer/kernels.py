"""Compiled inner loops of the incremental engine (:mod:`fleqc.transformer.incremental`).

numba compiles these once (cached on disk next to this file); without numba they run as plain
Python, slowly but with the same results. Everything here takes plain arrays and knows nothing of
what the rows of X mean. The engine's state is versioned by row and stored by column: ``S`` (n,
slots) holds, per column of X (contiguous), the pass's input (slots 0 .. d-1) and one slot per
(layer, row the layer writes), that layer's latest output on the row; ``src[l, r]`` is the slot
holding row r at layer l's input and ``dst[l, r]`` the slot layer l writes it into (the section
"versioned rows" below). A layer reads and writes only the rows and columns that changed.

The compiled model (``model[0]``, built by the engine) is one tuple: the layer kinds, where each
layer's weights are, the feed-forward layers, the attention layers, the heads (their caches and
indices), the heads' gather views (per head the arrays that say each column's result: the query
index's ``stale``, ``leaf_of`` and ``pos_of``, ``col_result``, ``leaf_result``, so that collecting
the head results does not copy the whole head tuple) and two tuples of scratch arrays.

Reference counts: numba counts the references to every array a compiled function binds or passes
on (an atomic add and subtract per array, so a tuple of 50 arrays passed to a function costs 100),
and on the SUBLEQ machine those counts took about a third of a pass. The kernels that allocate
nothing and keep no array beyond the call (the index searches, attention of one query, the head
update) are compiled without numba's runtime (``_nrt=False``): they only read and write the
elements of arrays their caller holds, so they need no counts, and they compute the same values.
Such a kernel can also take the heads from their typed list by iterating it (:func:`_heads_update`,
:func:`_gather_column`): iteration lends each item, where taking one out by index counts a
reference to every array in it (about 50 per head and pass); a kernel that takes a typed list has
no Python entry point (``no_cpython_wrapper``: passing a typed list in from Python needs the
runtime) and is called from compiled code only. :func:`run_passes` takes the model's tuple apart
once per call and runs each layer's steps itself, so no array tuple is bound per layer and pass.

Vector index (a tuple of arrays, fields ``IX_*``)
-------------------------------------------------
:func:`search` answers "which stored vectors s have s . probe >= threshold" over one vector per
column (the keys, or the queries, of one head) without scoring every one. The vectors are sorted
lexicographically over their non-constant components; the sorted array is an implicit trie: at
depth t a node is a run of vectors that agree on the first t sorted components, and ``ends[p, t]``
is the end of the depth-(t + 1) run starting at p (stored by position, as the sorted vectors are:
a descent reads one row of each near its start). A node's bound is the part of the score fixed
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
 SC_OUT, SC_SEARCHED_OLD, SC_SEARCHED_NEW) = range(19)

OK, NOT_FINITE = 0, 1


@njit(cache=True, _nrt=False)
def dot(a, b):
    """sum_i a[i] b[i], in index order."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, _nrt=False)
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
            e = ends[p, t]
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


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
def attend_all(probes, head, reach, hardmax, slack, sc, out_best, out_result):
    """:func:`attend` for every row of ``probes``."""
    for q in range(probes.shape[0]):
        out_best[q] = attend(probes[q], head[HD_KEYS], head[HD_K], head[HD_V], reach, hardmax, slack, sc,
                             out_result[q])


@njit(cache=True, _nrt=False)
def _copy(dst, src):
    """dst[:] = src element by element (a slice assignment may allocate: not in the kernels without numba's runtime)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True, _nrt=False)
def _value_changed(ix, leaf, value):
    live = ix[IX_LIVE]
    leaf_value = ix[IX_LEAF_VALUE]
    uniform = ix[IX_UNIFORM]
    if live[leaf] == 1:
        _copy(leaf_value[leaf], value)
        uniform[leaf] = True
    elif uniform[leaf]:
        for r in range(value.shape[0]):
            if value[r] != leaf_value[leaf, r]:
                uniform[leaf] = False
                break


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
def _differs(a, b):
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return True
    return False


@njit(cache=True, _nrt=False)
def _mark(col, sc, n_touched):
    mark = sc[SC_COL_MARK]
    if not mark[col]:
        mark[col] = True
        sc[SC_TOUCHED][n_touched] = col
        n_touched += 1
    return n_touched


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
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
    # the keys searched last (old and new): the query leaves a key can reach depend on the key alone
    # (the query index does not change in this loop), so a key searched already marks nothing new
    # (many columns often change from one key to the same other key: a machine's lanes)
    searched_old = sc[SC_SEARCHED_OLD][:dk]
    searched_new = sc[SC_SEARCHED_NEW][:dk]
    have_old = False
    have_new = False
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
        if not (have_old and not _differs(K[col], searched_old)):
            for t in range(dk):
                probe[t] = K[col, t]
                searched_old[t] = K[col, t]
            have_old = True
            n_aff = _find_affected(probe[:dk], head, reach, slack, sc, n_aff)
        for t in range(dk):
            K[col, t] = P[base + dk + t, i]
        for r in range(dv):
            V[col, r] = P[base + 2 * dk + r, i]
        if kchg and not (have_new and not _differs(K[col], searched_new)):
            for t in range(dk):
                searched_new[t] = K[col, t]
            have_new = True
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
            _copy(leaf_result[leaf], result[:dv])
            for p in range(qstart[leaf], qend[leaf]):
                col = qperm[p]
                if not qstale[col]:
                    n_touched = _mark(col, sc, n_touched)
    ov = qix[IX_OVERFLOW]
    col_best = head[HD_COL_BEST]
    col_result = head[HD_COL_RESULT]
    n_ov = qix[IX_META][0]
    done = 0
    for o in range(n_ov):  # queries outside the index: computed every time, once per distinct query
        col = ov[o]
        seen = -1
        for j in range(min(done, 8)):  # a query equal to one computed already (lanes share theirs): its result
            if not _differs(Q[col], Q[ov[j]]):
                seen = ov[j]
                break
        if seen >= 0:
            best = col_best[seen]
            _copy(result[:dv], col_result[seen])
        else:
            best = attend(Q[col], kix, K, V, reach, hardmax, slack, sc, result[:dv])
            if o == done:
                done += 1
            else:  # keep the distinct queries first in the overflow (its order is free)
                ov[o], ov[done] = ov[done], ov[o]
                qix[IX_OV_POS][ov[o]] = o
                qix[IX_OV_POS][ov[done]] = done
                done += 1
        col_best[col] = best
        if best < fmeta[0]:
            fmeta[0] = best
        if _differs(result[:dv], col_result[col]):
            _copy(col_result[col], result[:dv])
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
def attention_pass(prev, cur, dirty, reads, proj, output, rows, dims, heads, gathers, reach, hardmax, slack, sc):
    """One attention layer over the columns ``dirty`` whose input changed; returns (status, changed).

    prev, cur (n, d): the layer's input and its output from the previous pass (updated in place).
    proj: the nonzeros (ptr, idx, val) of the stacked Q, K, V maps of the kept heads, (H (2dk + dv),
    len(reads)), on the rows they read; output: the nonzeros of the output maps (len(rows), H dv)
    on the rows they write. dims: H, dk, dv, first head in ``heads`` (and in ``gathers``, their
    gather views).
    """
    H, dk, dv, h0 = dims[0], dims[1], dims[2], dims[3]
    c = dirty.shape[0]
    d = prev.shape[1]
    for i in range(c):
        for r in range(d):
            if not np.isfinite(prev[dirty[i], r]):
                return NOT_FINITE, np.empty(0, np.int64)
    P = project(prev, dirty, reads, proj[0], proj[1], proj[2])
    n_touched = 0
    for i in range(c):
        n_touched = _mark(dirty[i], sc, n_touched)
    n_touched = _heads_update(heads, h0, H, dirty, P, dk, dv, reach, hardmax, slack, sc, n_touched)
    touched = sc[SC_TOUCHED]
    mark = sc[SC_COL_MARK]
    Ri = sc[SC_OUT]
    out = np.empty(d)
    changed = np.empty(n_touched, np.int64)
    n_changed = 0
    for i in range(n_touched):
        col = touched[i]
        mark[col] = False
        x = prev[col]
        for r in range(d):
            out[r] = x[r]
        _gather_column(gathers, h0, H, dv, col, Ri)
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
def _sorted_segments(cols, ptr, rows):
    """(OK, cols sorted, their ptr, their rows): the segments of ``rows`` reordered with the columns
    (the arrays themselves where the columns are in order already)."""
    ordered = True
    for i in range(1, cols.shape[0]):
        if cols[i] < cols[i - 1]:
            ordered = False
            break
    if ordered:
        return OK, cols, ptr, rows
    order = np.argsort(cols)
    out_cols = cols[order]
    out_ptr = np.zeros(cols.shape[0] + 1, np.int64)
    out_rows = np.empty(rows.shape[0], np.int64)
    m = 0
    for i in range(order.shape[0]):
        k = order[i]
        for q in range(ptr[k], ptr[k + 1]):
            out_rows[m] = rows[q]
            m += 1
        out_ptr[i + 1] = m
    return OK, out_cols, out_ptr, out_rows


# -- versioned rows: no layer copies the rows it does not write ---------------------------------
#
# The state S (n, slots) holds per column one slot per row of X (slots 0 .. d-1: the pass's input,
# the previous pass's output) and one slot per (layer, row the layer writes): that layer's output
# on the row, from the latest pass that recomputed it. The value of row r at layer l's input is
# S[c, src[l, r]] (the slot of the last layer before l that writes r, or r itself); layer l writes
# row r into slot dst[l, r]. A row a layer does not write reaches the next layer unchanged in the
# dense pass too (x + 0.0 is x: no layer output is -0.0, since every sum starts at +0.0, and the
# first pass has already turned any -0.0 of the card into +0.0), so each value is the one the
# dense pass computes, bit for bit, while no layer copies the rows it does not write and the state
# takes a few copies of X instead of one per layer; only the lists of changed rows travel from
# layer to layer (within a run of feed-forward layers, not even those: :func:`feed_forward_run`
# keeps each changed row waiting for the next layer that uses it). Every value a layer writes is checked finite as it is written (a non-finite
# value anywhere in a column spreads NaN through the dense pass's next products): the pass then
# stops with NOT_FINITE before the input slots are touched, and the caller redoes it densely.


@njit(cache=True)
def project_versions(S, src, cols, reads, ptr, idx, val):
    """:func:`project` reading row r of column c at S[c, src[r]]."""
    P = np.zeros((ptr.shape[0] - 1, cols.shape[0]))
    x = np.empty(reads.shape[0])
    for i in range(cols.shape[0]):
        c = cols[i]
        for j in range(reads.shape[0]):
            r = reads[j]
            x[j] = S[c, src[r]]
        for m in range(ptr.shape[0] - 1):
            s = 0.0
            for p in range(ptr[m], ptr[m + 1]):
                s += val[p] * x[idx[p]]
            P[m, i] = s
    return P


@njit(cache=True)
def _grow(out_rows, m, extra):
    if m + extra > out_rows.shape[0]:
        grown = np.empty(2 * out_rows.shape[0] + extra, np.int64)
        grown[:m] = out_rows[:m]
        return grown
    return out_rows


SCAN_SHARE = 8  # a layer's marked units (rows) taken in increasing order when more than 1/8 of them


@njit(cache=True)
def feed_forward_run(l0, l1, S, src, dst, cols, ptr, rows, ffns, where, rs):
    """The feed-forward layers l0 .. l1 (consecutive) on the columns and rows that changed, on
    versioned rows (above); returns (status, the columns, ptr and rows changed at l1's output).

    A feed-forward layer acts on each column alone: the units that read a changed row are
    recomputed from the rows' current versions, the written rows whose units or input changed are
    recomputed into their slots dst; a changed row the layer does not write reaches the next layer
    as it is. Each changed row of a column waits in the bucket of the next layer of the run that
    reads or writes it (``f[17]``: per row, the next such layer after this one, l1 + 1 for none;
    a layer's own readers and writers, ``cp1`` and ``is_written``), so a layer visits only the
    changed rows it uses, and no list of rows is copied from layer to layer; the last bucket holds
    the rows that leave the run changed. A written row recomputed to its old value leaves its
    bucket (later layers read that unchanged version); one that changed joins the bucket of its
    next user. i1: the slot each nonzero of W1 reads (its row's version at this layer's input).
    ``kept[c]``: whether H[c] holds column c's hidden units; the first pass keeps none (so H's
    memory is taken only by the columns that change), and a column's first change at a layer
    recomputes every unit and every written row (against the outputs the first pass left in the
    slots). Where more than 1/:data:`SCAN_SHARE` of a layer's units (or of its written rows) are
    to be recomputed, they are taken in increasing order, so that the weights are read in sequence
    (the order of the work, not of any sum). Scratch (``rs``): the marks and lists of units and
    rows, the bucket heads (one row per layer of the longest run, and one more) and a first pool
    of nodes (a larger one is allocated where a call needs it)."""
    umark, ulist, rmark, rlist, head, pool = rs[0], rs[1], rs[2], rs[3], rs[5], rs[6]
    ncols = cols.shape[0]
    end = l1 - l0 + 1  # buckets 0 .. end - 1: the layers of the run; end: the rows that leave it
    # head[b, k]: the first node of bucket b of the k-th column (-1: empty; every entry is -1
    # between calls); the nodes, two entries each: a row, the next node of its bucket (-1: none)
    need = 2 * (ptr[ncols] + 16 * ncols + 16)
    nodes = pool if need <= pool.shape[0] else np.empty(need, np.int64)
    n_nodes = 0
    f = ffns[where[l0]]
    cp1, is_written, after = f[10], f[14], f[17]
    for k in range(ncols):
        for q in range(ptr[k], ptr[k + 1]):
            r = rows[q]
            b = 0 if cp1[r + 1] > cp1[r] or is_written[r] else after[r] - l0
            nodes[2 * n_nodes] = r
            nodes[2 * n_nodes + 1] = head[b, k]
            head[b, k] = n_nodes
            n_nodes += 1
    for l in range(l0, l1 + 1):
        j = l - l0
        if l > l0:  # (each item taken from the typed list counts a reference to every array in it)
            f = ffns[where[l]]
        p1, v1, b1, p2, i2, v2, b2, written, H = f[0], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]
        cp1, cu1, cp2, cr2, is_written, i1, kept, after = f[10], f[11], f[12], f[13], f[14], f[15], f[16], f[17]
        s_src, s_dst = src[l], dst[l]
        for k in range(ncols):
            node = head[j, k]
            if node < 0:  # no row this layer reads or writes changed in this column
                continue
            head[j, k] = -1
            c = cols[k]
            hidden = H[c]
            y = S[c]
            nu = 0
            nr = 0
            if not kept[c]:  # every unit (NaN: each differs from its new value, so every written row follows)
                kept[c] = True
                for u in range(b1.shape[0]):
                    hidden[u] = np.nan
                    umark[u] = True
                    ulist[nu] = u
                    nu += 1
            while node >= 0:
                r = nodes[2 * node]
                following = nodes[2 * node + 1]
                for p in range(cp1[r], cp1[r + 1]):
                    u = cu1[p]
                    if not umark[u]:
                        umark[u] = True
                        ulist[nu] = u
                        nu += 1
                if is_written[r]:
                    if not rmark[r]:
                        rmark[r] = True
                        rlist[nr] = r
                        nr += 1
                else:  # unchanged by this layer: on to its next user
                    b = after[r] - l0
                    nodes[2 * node + 1] = head[b, k]
                    head[b, k] = node
                node = following
            if nu * SCAN_SHARE > b1.shape[0]:  # many: in increasing order (the weights read in sequence)
                nu = 0
                for u in range(b1.shape[0]):
                    if umark[u]:
                        ulist[nu] = u
                        nu += 1
            bad = False
            for i in range(nu):
                u = ulist[i]
                umark[u] = False
                if bad:
                    continue
                s = 0.0
                for p in range(p1[u], p1[u + 1]):
                    s += v1[p] * y[i1[p]]
                s += b1[u]
                if s > 0.0:
                    if s == np.inf:
                        bad = True
                        continue
                    hv = s
                elif s <= 0.0:
                    hv = 0.0
                else:
                    bad = True
                    continue
                if hv != hidden[u]:
                    hidden[u] = hv
                    for p in range(cp2[u], cp2[u + 1]):
                        rr = cr2[p]
                        if not rmark[rr]:
                            rmark[rr] = True
                            rlist[nr] = rr
                            nr += 1
            if 2 * (n_nodes + nr) > nodes.shape[0]:  # room for every row this column may change here
                nodes = _grow(nodes, 2 * n_nodes, 2 * nr)
            if nr * SCAN_SHARE > written.shape[0]:  # many: in increasing order, as the units above
                nr = 0
                for t in range(written.shape[0]):
                    if rmark[written[t]]:
                        rlist[nr] = written[t]
                        nr += 1
            for i in range(nr):
                r = rlist[i]
                rmark[r] = False
                if bad:
                    continue
                s = 0.0
                for p in range(p2[r], p2[r + 1]):
                    s += v2[p] * hidden[i2[p]]
                o = y[s_src[r]] + (s + b2[r])
                if not np.isfinite(o):
                    bad = True
                    continue
                if o != y[s_dst[r]]:  # changed: it waits for its next user
                    y[s_dst[r]] = o
                    b = after[r] - l0
                    nodes[2 * n_nodes] = r
                    nodes[2 * n_nodes + 1] = head[b, k]
                    head[b, k] = n_nodes
                    n_nodes += 1
            if bad:
                head[:end + 1, :ncols] = -1
                return NOT_FINITE, cols[:0].copy(), ptr[:1].copy(), rows[:0].copy()
    out_cols = np.empty(ncols, np.int64)
    out_ptr = np.zeros(ncols + 1, np.int64)
    out_rows = np.empty(n_nodes, np.int64)
    n_out = 0
    m = 0
    for k in range(ncols):
        node = head[end, k]
        if node < 0:
            continue
        head[end, k] = -1
        while node >= 0:
            out_rows[m] = nodes[2 * node]
            m += 1
            node = nodes[2 * node + 1]
        out_cols[n_out] = cols[k]
        n_out += 1
        out_ptr[n_out] = m
    return OK, out_cols[:n_out], out_ptr[:n_out + 1], out_rows[:m]


@njit(cache=True)
def attention_versions(S, src, dst, cols, ptr, rows, reads, reads_mask, proj, output, written, is_written, dims, heads,
                       gathers, reach, hardmax, slack, sc, where_dirty):
    """An attention layer on the columns and rows that changed, on versioned rows (above): a column's query, key and value are
    recomputed if a changed row is one the heads read; its written rows if its input on them or
    its heads' results changed; a changed row the layer does not write only stays on the list.
    The heads are updated and their results written out by kernels without numba's runtime
    (:func:`_heads_update`, :func:`_write_versions`), which take the heads from their typed lists
    without counting references."""
    H, dk, dv, h0 = dims[0], dims[1], dims[2], dims[3]
    c = cols.shape[0]
    proj_cols = np.empty(c, np.int64)
    n_proj, n_touched = _changed_reads(cols, ptr, rows, reads_mask, is_written, sc, where_dirty, proj_cols)
    P = project_versions(S, src, proj_cols[:n_proj], reads, proj[0], proj[1], proj[2])
    n_touched = _heads_update(heads, h0, H, proj_cols[:n_proj], P, dk, dv, reach, hardmax, slack, sc, n_touched)
    out_cols, out_ptr, out_rows = _output_space(c, ptr, n_touched, written.shape[0])
    optr, oidx, oval = output
    bad, n_out, m = _write_versions(S, src, dst, cols, ptr, rows, written, is_written, optr, oidx, oval, gathers, h0, H,
                                    dv, sc, n_touched, where_dirty, out_cols, out_ptr, out_rows)
    if bad:
        return NOT_FINITE, cols[:0].copy(), ptr[:1].copy(), rows[:0].copy()
    return _sorted_segments(out_cols[:n_out], out_ptr[:n_out + 1], out_rows[:m])


@njit(cache=True)
def _output_space(c, ptr, n_touched, n_written):
    """The arrays :func:`_write_versions` fills: columns, their row pointers, rows (at most every
    touched column's written rows and every changed column's rows)."""
    n_all = n_touched + c
    return (np.empty(n_all, np.int64), np.zeros(n_all + 1, np.int64),
            np.empty(ptr[c] + n_touched * n_written + 1, np.int64))


@njit(cache=True, _nrt=False)
def _changed_reads(cols, ptr, rows, reads_mask, is_written, sc, where_dirty, proj_cols):
    """For :func:`attention_versions`: where_dirty[col] = its place in ``cols``; the columns with a
    changed row the heads read into ``proj_cols``; those with a changed row the layer writes marked
    touched (sc); returns (columns to project, touched count)."""
    n_proj = 0
    n_touched = 0
    for i in range(cols.shape[0]):
        col = cols[i]
        where_dirty[col] = i
        reads_any = False
        writes_any = False
        for q in range(ptr[i], ptr[i + 1]):
            r = rows[q]
            if reads_mask[r]:
                reads_any = True
            if is_written[r]:
                writes_any = True
        if reads_any:
            proj_cols[n_proj] = col
            n_proj += 1
        if writes_any:
            n_touched = _mark(col, sc, n_touched)
    return n_proj, n_touched


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _heads_update(heads, h0, H, dirty, P, dk, dv, reach, hardmax, slack, sc, n_touched):
    """:func:`head_update` for the heads h0 .. h0 + H - 1 of the typed list ``heads`` (head h0 + h
    on rows h (2 dk + dv).. of P). Without numba's runtime, iterating the list lends each head
    without counting a reference to every array in it (taking an item out of a typed list counts
    them: about 50 per head and pass); callable from compiled code only."""
    width = 2 * dk + dv
    h = 0
    for head in heads:
        if h >= h0 + H:
            break
        if h >= h0:
            n_touched = head_update(head, dirty, P, (h - h0) * width, dk, dv, reach, hardmax, slack, sc, n_touched)
        h += 1
    return n_touched


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _gather_column(gathers, h0, H, dv, col, out):
    """The results of the heads h0 .. h0 + H - 1 for column ``col`` into out[:H dv], read from the
    heads' gather views (a query outside the index: its own result; else its group's)."""
    h = 0
    for g in gathers:
        if h >= h0 + H:
            break
        if h >= h0:
            qstale, qleaf, qpos, col_result, leaf_result = g
            base = (h - h0) * dv
            if qstale[col]:
                for r in range(dv):
                    out[base + r] = col_result[col, r]
            else:
                leaf = qleaf[qpos[col]]
                for r in range(dv):
                    out[base + r] = leaf_result[leaf, r]
        h += 1


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _write_versions(S, src, dst, cols, ptr, rows, written, is_written, optr, oidx, oval, gathers, h0, H, dv, sc,
                    n_touched, where_dirty, out_cols, out_ptr, out_rows):
    """The output of :func:`attention_versions`: the written rows of every touched column from its
    heads' results (into their slots dst where they changed), then the changed rows the layer does
    not write; the columns and rows into out_cols, out_ptr, out_rows. Returns (a value was not
    finite, columns, rows)."""
    touched = sc[SC_TOUCHED]
    mark = sc[SC_COL_MARK]
    Ri = sc[SC_OUT]
    n_out = 0
    m = 0
    bad = False
    for i in range(n_touched):
        col = touched[i]
        mark[col] = False
        if bad:
            continue
        _gather_column(gathers, h0, H, dv, col, Ri)
        y = S[col]
        start = m
        for j in range(written.shape[0]):
            r = written[j]
            s = 0.0
            for p in range(optr[j], optr[j + 1]):
                s += oval[p] * Ri[oidx[p]]
            o = y[src[r]] + s
            if not np.isfinite(o):
                bad = True
                break
            if o != y[dst[r]]:
                y[dst[r]] = o
                out_rows[m] = r
                m += 1
        k = where_dirty[col]
        if k >= 0:
            where_dirty[col] = -1
            for q in range(ptr[k], ptr[k + 1]):
                r = rows[q]
                if not is_written[r]:
                    out_rows[m] = r
                    m += 1
        if m > start:
            out_cols[n_out] = col
            n_out += 1
            out_ptr[n_out] = m
    for i in range(cols.shape[0]):  # the columns no head output reached: their changed rows pass on
        col = cols[i]
        k = where_dirty[col]
        if k < 0:
            continue
        where_dirty[col] = -1
        start = m
        for q in range(ptr[k], ptr[k + 1]):
            r = rows[q]
            if not is_written[r]:
                out_rows[m] = r
                m += 1
        if m > start:
            out_cols[n_out] = col
            n_out += 1
            out_ptr[n_out] = m
    return bad, n_out, m


@njit(cache=True)
def layer_versions(l, S, cols, ptr, rows, model, src, dst, reach, hardmax, slack):
    """Layer l on the changed (cols, ptr, rows), on versioned rows: src (L + 1, d), the slot of each row at each layer's
    input (src[L]: at the pass's output); dst (L, d), the slot each layer writes each row into."""
    return _layer(l, S, cols, ptr, rows, model[0], src, dst, reach, hardmax, slack)


@njit(cache=True)
def _layer(l, S, cols, ptr, rows, m, src, dst, reach, hardmax, slack):
    """:func:`layer_versions` on the model's tuple ``m`` = model[0], taken from its typed list once per
    compiled call rather than once per layer (a typed list's item is copied out, every array in it
    reference-counted)."""
    # m = (kinds, where, ffns, atts, heads, gathers, sc, rs), its fields taken where used: binding
    # one counts a reference to every array in it
    if cols.shape[0] == 0:
        return OK, cols, ptr, rows
    w = m[1][l]
    kinds = m[0]
    if kinds[l] == 0:
        if l > 0 and kinds[l - 1] == 0:  # evaluated with the run of feed-forward layers it belongs to
            return OK, cols, ptr, rows
        last = l
        while last + 1 < kinds.shape[0] and kinds[last + 1] == 0:
            last += 1
        return feed_forward_run(l, last, S, src, dst, cols, ptr, rows, m[2], m[1], m[7])
    a = m[3][w]
    return attention_versions(S, src[l], dst[l], cols, ptr, rows, a[0], a[5], a[1], a[2], a[3], a[6], a[4],
                              m[4], m[5], reach, hardmax, slack, m[6], m[7][4])


@njit(cache=True)
def finish_versions(S, cols, ptr, rows, last):
    """The pass's changed rows into the input slots from their last versions (last = src[L]);
    NOT_FINITE, with the input slots untouched, if one of them is not finite."""
    for k in range(cols.shape[0]):
        c = cols[k]
        for q in range(ptr[k], ptr[k + 1]):
            r = rows[q]
            if not np.isfinite(S[c, last[r]]):
                return NOT_FINITE
    for k in range(cols.shape[0]):
        c = cols[k]
        for q in range(ptr[k], ptr[k + 1]):
            r = rows[q]
            S[c, r] = S[c, last[r]]
    return OK


@njit(cache=True)
def engine_pass_versions(S, cols, ptr, rows, model, src, dst, reach, hardmax, slack, counts):
    """One pass on versioned rows: every layer of one pass after the first, then the
    changed rows into the input slots."""
    m = model[0]
    L = m[0].shape[0]
    for l in range(L):
        status, cols, ptr, rows = _layer(l, S, cols, ptr, rows, m, src, dst, reach, hardmax, slack)
        if status != OK:
            return status, cols, ptr, rows
        counts[l] += cols.shape[0]
    return finish_versions(S, cols, ptr, rows, src[L]), cols, ptr, rows


@njit(cache=True)
def layer_first_pair(l, prev, cur, cols, model, reach, hardmax, slack):
    """The layer's first pass over ``cols`` from ``prev`` (the layer's input) into ``cur`` (zeros before an attention
    layer), keeping no hidden units (:func:`feed_forward_run` keeps them as columns change)."""
    kinds, where, ffns, atts, heads, gathers, sc, rs = model[0]
    if kinds[l] == 0:
        f = ffns[where[l]]
        status, _ = feed_forward_pass(prev, cur, cols, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], True)
        return status
    a = atts[where[l]]
    status, _ = attention_pass(prev, cur, cols, a[0], a[1], a[2], a[3], a[4], heads, gathers, reach, hardmax, slack,
                               sc)
    return status


# what ended a run of passes (:func:`run_passes`), named where the executor reads them without numba
from fleqc.transformer.passes import (  # noqa: E402
    RUN_FIXED, RUN_FLAGGED, RUN_LIMIT, RUN_NOT_FINITE, RUN_REBUILD, RUN_WATCHED)


@njit(cache=True)
def _flagged(S, last, cols, ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max):
    """Whether the output of a pass (row r of column c at S[c, last[r]], last = src[L]; not yet
    committed into the input slots) leaves the caller's filter, looking at the columns ``cols``
    it changed: a value that is not finite, an entry of a ``ternary`` row that is not exactly
    -1, 0 or +1, a register (the unsigned number read from the signs of rows reg_rows[reg_ptr[k]:
    reg_ptr[k + 1]] of column reg_col[k]) outside [reg_lo[k], reg_hi[k]), an entry (lim_row[k],
    lim_col[k]) above lim_max[k]."""
    d = last.shape[0]
    for i in range(cols.shape[0]):
        x = S[cols[i]]
        for r in range(d):
            v = x[last[r]]
            if not np.isfinite(v):
                return True
            if ternary[r] and not (v == 0.0 or v == 1.0 or v == -1.0):
                return True
    for k in range(reg_col.shape[0]):
        x = S[reg_col[k]]
        value = 0
        for j in range(reg_ptr[k], reg_ptr[k + 1]):
            if x[last[reg_rows[j]]] > 0.0:
                value += 1 << (j - reg_ptr[k])
        if value < reg_lo[k] or value >= reg_hi[k]:
            return True
    for k in range(lim_row.shape[0]):
        if not S[lim_col[k], last[lim_row[k]]] <= lim_max[k]:
            return True
    return False


@njit(cache=True)
def run_passes(S, cols, ptr, rows, model, src, dst, reach, hardmax, slack, counts, max_passes, overflow, rebuild_at,
               check, watch, union, union_mark, n_union):
    """Up to ``max_passes`` passes (after the first) on the versioned state S, each what
    :func:`engine_pass_versions` does (the same layers, the same commit into the input slots):
    returns (reason, passes committed, the last pass's changed columns, ptr, rows, columns in
    ``union``).

    After each pass: no column changed -> RUN_FIXED (a fixed point); a value the pass met was not
    finite (in a layer, or in a changed row of its output) -> RUN_NOT_FINITE (nothing committed:
    the input slots hold the pass's input, and the caller redoes the pass by the definition); its
    output leaves the caller's filter ``check`` (:func:`_flagged`; ternary, register and limit
    arrays) -> RUN_FLAGGED (computed, not committed: the caller commits it, :func:`finish_versions`,
    with its own checks); otherwise the changed rows go into the input slots (committed), the
    columns join ``union`` (marked in ``union_mark``), and the loop returns RUN_WATCHED after a pass
    that changed an entry (watch[k, 0], watch[k, 1]) = (row, column), RUN_REBUILD when an index's
    overflow passed ``rebuild_at``, RUN_LIMIT after ``max_passes``.
    """
    ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max = check
    # the model's tuple taken apart once per call, and each layer run as :func:`_layer` runs it, here
    # rather than through it: binding the tuple in a call counts a reference to every array in it
    kinds, where, ffns, atts, heads, gathers, sc, rs = model[0]
    L = kinds.shape[0]
    last = src[L]
    for done in range(max_passes):
        status = OK
        for l in range(L):
            if cols.shape[0] == 0:
                continue
            w = where[l]
            if kinds[l] == 0:  # as :func:`_layer`: a run of feed-forward layers at its first layer
                if l > 0 and kinds[l - 1] == 0:
                    status = OK
                else:
                    last_ff = l
                    while last_ff + 1 < L and kinds[last_ff + 1] == 0:
                        last_ff += 1
                    status, cols, ptr, rows = feed_forward_run(l, last_ff, S, src, dst, cols, ptr, rows, ffns, where,
                                                               rs)
            else:  # attention_versions' steps (its helpers), inline: calling it here measured 7% slower on SUBLEQ
                reads, proj, output, written, dims, reads_mask, is_written = atts[w]
                H, dk, dv, h0 = dims[0], dims[1], dims[2], dims[3]
                where_dirty = rs[4]
                proj_cols = np.empty(cols.shape[0], np.int64)
                n_proj, n_touched = _changed_reads(cols, ptr, rows, reads_mask, is_written, sc, where_dirty, proj_cols)
                proj_cols = proj_cols[:n_proj]
                P = project_versions(S, src[l], proj_cols, reads, proj[0], proj[1], proj[2])
                n_touched = _heads_update(heads, h0, H, proj_cols, P, dk, dv, reach, hardmax, slack, sc, n_touched)
                out_cols, out_ptr, out_rows = _output_space(cols.shape[0], ptr, n_touched, written.shape[0])
                bad, n_out, n_rows = _write_versions(S, src[l], dst[l], cols, ptr, rows, written, is_written, output[0],
                                                     output[1], output[2], gathers, h0, H, dv, sc, n_touched,
                                                     where_dirty, out_cols, out_ptr, out_rows)
                if bad:
                    status = NOT_FINITE
                else:
                    status, cols, ptr, rows = _sorted_segments(out_cols[:n_out], out_ptr[:n_out + 1],
                                                               out_rows[:n_rows])
            if status != OK:
                break
            counts[l] += cols.shape[0]
        if status != OK:
            return RUN_NOT_FINITE, done, cols, ptr, rows, n_union
        if cols.shape[0] == 0:
            return RUN_FIXED, done, cols, ptr, rows, n_union
        for k in range(cols.shape[0]):  # finish_versions' test, before the filter reads the output
            c = cols[k]
            for q in range(ptr[k], ptr[k + 1]):
                if not np.isfinite(S[c, last[rows[q]]]):
                    return RUN_NOT_FINITE, done, cols, ptr, rows, n_union
        if _flagged(S, last, cols, ternary, reg_col, reg_ptr, reg_rows, reg_lo, reg_hi, lim_row, lim_col, lim_max):
            return RUN_FLAGGED, done, cols, ptr, rows, n_union
        watched = False
        for k in range(watch.shape[0]):
            r, c = watch[k, 0], watch[k, 1]
            if S[c, last[r]] != S[c, r]:
                watched = True
        finish_versions(S, cols, ptr, rows, last)  # OK: every changed row was found finite above
        for i in range(cols.shape[0]):
            c = cols[i]
            if not union_mark[c]:
                union_mark[c] = True
                union[n_union] = c
                n_union += 1
        if watched:
            return RUN_WATCHED, done + 1, cols, ptr, rows, n_union
        for h in range(overflow.shape[0]):
            if overflow[h, 0] > rebuild_at or overflow[h, 1] > rebuild_at:
                return RUN_REBUILD, done + 1, cols, ptr, rows, n_union
    return RUN_LIMIT, max_passes, cols, ptr, rows, n_union


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
