"""Two machines' weights compared bit for bit (labels, metadata, every array, the nonzeros' positions)."""

from __future__ import annotations

import numpy as np

from fleqc.transformer.layers import AttentionLayer


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def assert_same_weights(a, b) -> None:
    assert a.row_labels == b.row_labels and a.ternary_rows == b.ternary_rows
    assert a.metadata == b.metadata and repr(a.metadata) == repr(b.metadata)  # the same types too
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        assert type(x) is type(y)
        if isinstance(x, AttentionLayer):
            assert x.head_names == y.head_names
            for p in ("query", "key", "value", "output"):
                u, v = getattr(x, p), getattr(y, p)
                assert u.shape == v.shape and u.dtype == v.dtype and np.array_equal(_bits(u), _bits(v)), p
        else:
            assert x.name == y.name and (x.hidden, x.width) == (y.hidden, y.width)
            for p in ("b1", "b2"):
                assert np.array_equal(_bits(getattr(x, p)), _bits(getattr(y, p)))
            for p in ("w1_sparse", "w2_sparse"):
                u, v = getattr(x, p), getattr(y, p)
                assert u.shape == v.shape and np.array_equal(u.ptr, v.ptr) and np.array_equal(u.idx, v.idx)
                assert np.array_equal(_bits(u.val), _bits(v.val))
