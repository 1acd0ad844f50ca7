"""A fleqc machine as a ``torch.nn.Module``: the same weights as standard float64 parameters.

:class:`TorchMachine` holds one submodule per layer of a :class:`~fleqc.transformer.LoopedTransformer`
and computes exactly :func:`fleqc.transformer.forward`, in the card's layout (X is (..., d, n): one
column per token, so a batch is (B, d, n)):

- :class:`TorchAttention`, parameters ``query``, ``key`` (H, dk, d), ``value`` (H, dv, d), ``output``
  (H, d, dv) (the temperature is folded into ``query``)::

      scores = (K_h X)^T (Q_h X)                       (..., H, n_keys, n_queries)
      A      = softmax over keys, the key maximum subtracted first (mode "softmax"),
               or 1/t on each of the t keys that tie for the maximum (mode "hardmax")
      X     += sum_h O_h (V_h X) A_h

- :class:`TorchFeedForward`, parameters ``w1`` (h, d), ``b1`` (h,), ``w2`` (d, h), ``b2`` (d,)::

      X += W2 ReLU(W1 X + b1) + b2

  ``w1`` and ``w2`` are torch sparse CSR tensors of the layer's nonzeros (``torch.sparse_csr``; the
  FLEQ machine's feed-forward weights are 99.96 % zeros: 108 k nonzeros against 288 M dense entries
  at n = 128, cell 8, a 2.3 GB dense form); their products are ``torch.sparse.mm``. The sums are the
  same numbers as the dense product's: every partial sum of the machines' products is exact, so
  neither the order nor the zeros left out change a bit (the biases are added after the sums, as
  in the dense pass; fleqc's sparse path and incremental engine leave the same zeros out);
  tests/test_interop_torch.py compares the passes bit for bit. ``load_state_dict`` takes ``w1``/``w2`` dense (a safetensors file's tensors) or sparse.

Nothing here knows what the rows mean. ``state_dict()`` names the parameters ``layers.{i}.query``
and so on, the names of :mod:`fleqc.transformer.weights_io` and of the safetensors files.

:meth:`TorchMachine.run` and :meth:`TorchMachine.run_batch` loop the pass like
:func:`fleqc.transformer.run` / :func:`~fleqc.transformer.run_batch`, keeping X on the device
(``cpu`` or ``cuda``; ``cuda`` is refused with a clear message when torch sees no GPU).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from fleqc.errors import ErrorCode, FleqError
from fleqc.interop.precision import check_precision
from fleqc.transformer.executor import MODES, BatchOutcome, RunOutcome
from fleqc.transformer.layers import AttentionLayer, FeedForwardLayer, LoopedTransformer, SparseMatrix

Device = Union[str, torch.device]


def resolve_device(device: Optional[Device] = None) -> torch.device:
    """``cpu`` (default) or ``cuda[:k]``; a CUDA device that torch cannot see is a FleqError."""
    device = torch.device(device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FleqError(ErrorCode.BAD_CONFIG, "--device cuda: torch sees no CUDA device on this machine "
                        f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    if device.type not in ("cpu", "cuda"):
        raise FleqError(ErrorCode.BAD_CONFIG, f"unknown device {device}: use cpu or cuda")
    return device


def check_dtype(model: LoopedTransformer, dtype: torch.dtype) -> None:
    """BAD_CONFIG unless ``dtype`` computes ``model`` exactly, by the bound its machine states
    (fleqc.interop.precision): float32 holds a SUBLEQ machine up to N = 19 bits, never FLEQ's."""
    if not dtype.is_floating_point:
        raise FleqError(ErrorCode.BAD_CONFIG, f"{dtype} is not a floating-point type; the machine runs in float64")
    have = round(-math.log2(torch.finfo(dtype).eps)) + 1  # float32: eps 2^-23, 24 bits
    if have < 53:
        check_precision(model, f"{dtype}", have)


def _parameter(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.asarray(array), dtype=dtype, device=device), requires_grad=False)


def _csr(make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()`` with torch's one-time notice that sparse CSR support is "beta" silenced (the
    operations used here, construction, ``to_sparse_csr`` and ``torch.sparse.mm``, are tested)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return make()


def sparse_parameter(matrix: Union[SparseMatrix, torch.Tensor], dtype: torch.dtype,
                     device: torch.device) -> nn.Parameter:
    """A matrix as a frozen torch sparse CSR parameter of its nonzeros; ``matrix`` is fleqc's
    :class:`~fleqc.transformer.layers.SparseMatrix` or a torch tensor, dense or sparse."""
    if isinstance(matrix, SparseMatrix):
        tensor = _csr(lambda: torch.sparse_csr_tensor(
            torch.as_tensor(matrix.ptr, dtype=torch.int64), torch.as_tensor(matrix.idx, dtype=torch.int64),
            torch.as_tensor(matrix.val, dtype=dtype), size=matrix.shape, dtype=dtype, device=device,
            check_invariants=True))
    else:
        tensor = _csr(lambda: matrix.detach().to(dtype=dtype, device=device).to_sparse_csr())
    return nn.Parameter(tensor, requires_grad=False)


def sparse_times(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """W X for a sparse CSR W (h, d) and X (..., d, n): (..., h, n), the batch's columns side by side."""
    if X.dim() == 2:
        return torch.sparse.mm(W, X)
    d, n, batch = X.shape[-2], X.shape[-1], X.shape[:-2]
    columns = X.movedim(-2, 0).reshape(d, -1)  # (d, B... n)
    return torch.sparse.mm(W, columns).reshape(W.shape[0], *batch, n).movedim(0, -2)


def attention_weights(scores: torch.Tensor, mode: str) -> torch.Tensor:
    """Column-normalised weights from scores (..., n_keys, n_queries): softmax or hardmax over keys."""
    scores = scores - scores.amax(dim=-2, keepdim=True)
    if mode == "softmax":
        weights = torch.exp(scores)
    elif mode == "hardmax":
        weights = (scores == 0.0).to(scores.dtype)
    else:
        raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
    return weights / weights.sum(dim=-2, keepdim=True)


class TorchAttention(nn.Module):
    """H heads over the residual X (..., d, n); all heads in one batched product."""

    def __init__(self, layer: AttentionLayer, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.query = _parameter(layer.query, dtype, device)
        self.key = _parameter(layer.key, dtype, device)
        self.value = _parameter(layer.value, dtype, device)
        self.output = _parameter(layer.output, dtype, device)
        self.head_names = tuple(layer.head_names)

    def pattern(self, X: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, V): the attention weights (..., H, n_keys, n_queries) and the values (..., H, dv, n)."""
        H, dk, d = self.query.shape
        dv = self.value.shape[1]
        batch, n = X.shape[:-2], X.shape[-1]
        Q = torch.matmul(self.query.reshape(H * dk, d), X).reshape(*batch, H, dk, n)
        K = torch.matmul(self.key.reshape(H * dk, d), X).reshape(*batch, H, dk, n)
        V = torch.matmul(self.value.reshape(H * dv, d), X).reshape(*batch, H, dv, n)
        return attention_weights(torch.matmul(K.transpose(-1, -2), Q), mode), V

    def forward(self, X: torch.Tensor, mode: str = "softmax") -> torch.Tensor:
        H, d, dv = self.output.shape
        A, V = self.pattern(X, mode)
        heads = torch.matmul(V, A).reshape(*X.shape[:-2], H * dv, X.shape[-1])
        O = self.output.permute(1, 0, 2).reshape(d, H * dv)
        return X + torch.matmul(O, heads)


class TorchFeedForward(nn.Module):
    """X + W2 ReLU(W1 X + b1) + b2, the biases shared by all columns; W1 and W2 sparse CSR (their
    nonzeros, see the module's docstring)."""

    def __init__(self, layer: FeedForwardLayer, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.w1 = sparse_parameter(layer.w1_sparse, dtype, device)
        self.b1 = _parameter(layer.b1, dtype, device)
        self.w2 = sparse_parameter(layer.w2_sparse, dtype, device)
        self.b2 = _parameter(layer.b2, dtype, device)
        self.name = layer.name

    def forward(self, X: torch.Tensor, mode: str = "softmax") -> torch.Tensor:  # mode: unused
        hidden = torch.relu(sparse_times(self.w1, X) + self.b1[:, None])
        return X + (sparse_times(self.w2, hidden) + self.b2[:, None])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """``w1``/``w2`` given dense or sparse become the parameters' new nonzeros (a CSR tensor's
        ``copy_`` takes only the same pattern); the rest as torch loads it."""
        for name in ("w1", "w2"):
            given = state_dict.get(prefix + name)
            mine = getattr(self, name)
            if isinstance(given, torch.Tensor) and given.shape == mine.shape:
                setattr(self, name, sparse_parameter(given, mine.dtype, mine.device))
                state_dict[prefix + name] = getattr(self, name)  # torch's copy is then of itself
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TorchMachine(nn.Module):
    """A looped transformer as a torch module: ``machine(X)`` is one pass through every layer.

    ``mode`` is the attention of :meth:`forward` (``softmax`` or ``hardmax``); ``dtype`` defaults to
    float64, the executor's. ``row_labels`` and ``metadata`` are the model's, kept for decoding.
    """

    def __init__(self, model: LoopedTransformer, *, mode: str = "softmax", device: Optional[Device] = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown attention mode {mode!r}; use one of {MODES}")
        check_dtype(model, dtype)
        device = resolve_device(device)
        self.mode = mode
        self.layers = nn.ModuleList(
            TorchAttention(layer, dtype, device) if isinstance(layer, AttentionLayer)
            else TorchFeedForward(layer, dtype, device)
            for layer in model.layers
        )
        self.row_labels = tuple(model.row_labels)
        self.metadata = dict(model.metadata)
        self.dtype, self.device = dtype, device

    def forward(self, X: torch.Tensor, observe: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """One pass over X (..., d, n); ``observe(i, X)`` sees X after layer i."""
        for index, layer in enumerate(self.layers):
            X = layer(X, self.mode)
            if observe is not None:
                observe(index, X)
        return X

    def tensor(self, X: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(X), dtype=self.dtype).to(self.device)

    @torch.no_grad()
    def pass_numpy(self, X: np.ndarray) -> np.ndarray:
        """One pass of a numpy card (or batch of cards): the same shape back, float64 on the CPU."""
        return self(self.tensor(X)).cpu().numpy().astype(np.float64, copy=False)

    @torch.no_grad()
    def run(self, X: np.ndarray, *, max_steps: int, check: Optional[Callable[[np.ndarray, int], None]] = None,
            on_step: Optional[Callable[[int, np.ndarray], None]] = None) -> RunOutcome:
        """Loop the pass until X is a fixed point or ``max_steps`` passes changed it (as
        :func:`fleqc.transformer.run` counts them). X stays on the device; it is copied to the CPU
        only for ``check(X, step)`` and ``on_step(step, X)``."""
        X_t = self.tensor(X)
        steps = 0
        while True:
            Y = self(X_t)
            if torch.equal(Y, X_t):
                return RunOutcome(X_t.cpu().numpy(), steps, halted=True)
            if steps == max_steps:
                return RunOutcome(X_t.cpu().numpy(), steps, halted=False)
            steps += 1
            if check is not None or on_step is not None:
                Y_np = Y.cpu().numpy()
                if check is not None:
                    check(Y_np, steps)
                if on_step is not None:
                    on_step(steps, Y_np)
            X_t = Y

    @torch.no_grad()
    def run_batch(self, X: np.ndarray, *, max_steps: int) -> BatchOutcome:
        """:meth:`run` for a batch (B, d, n): each card stops at its own fixed point, the cards still
        running are stepped together (as :func:`fleqc.transformer.run_batch`)."""
        X_t = self.tensor(X).clone()
        batch = X_t.shape[0]
        steps = torch.zeros(batch, dtype=torch.int64, device=self.device)
        halted = torch.zeros(batch, dtype=torch.bool, device=self.device)
        running = torch.arange(batch, device=self.device)
        while running.numel():
            current = X_t[running]
            Y = self(current)
            fixed = (Y == current).flatten(1).all(dim=1)
            halted[running[fixed]] = True
            moving = ~fixed & (steps[running] != max_steps)
            X_t[running[moving]] = Y[moving]
            steps[running[moving]] += 1
            running = running[moving]
        return BatchOutcome(X_t.cpu().numpy(), steps.cpu().numpy(), halted.cpu().numpy())


def to_torch(model: LoopedTransformer, *, mode: str = "softmax", device: Optional[Device] = None,
             dtype: torch.dtype = torch.float64) -> TorchMachine:
    """The machine ``model`` as a :class:`TorchMachine` (float64 on the CPU by default)."""
    return TorchMachine(model, mode=mode, device=device, dtype=dtype)
