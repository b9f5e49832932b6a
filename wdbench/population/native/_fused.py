"""``train_group_native``: a ``Group`` trained by the compiled CPU kernel (``kernel.cpp``).

Same contract as ``train_group_reference``: every (problem s, configuration k) follows
``wdbench.train`` up to rounding. The kernel keeps a block of configurations (two SIMD vectors of
them) in L1 for the whole run and takes every step of it there: a step reads the batch's rows
once for all the block's lanes, and w is never streamed through memory. Groups the row space
applies to (``rowspace_applies``: no L1 part) run the same kernel on ``RowSpace``'s orthonormal
coordinates (n + 1 of them instead of d), as the Triton kernel does. Momentum and Adam groups
run in the weight space with the optimizer's state beside w in the block (one or two vectors
per weight), the step count carried across calls. The blocks of a group are independent: they
run as chunks on the thread pool of ``wdbench.threads``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
from collections.abc import Callable
from functools import partial

import torch

from wdbench.population._group import DivergenceLog, EpochHook, Group, GroupOutput
from wdbench.population._rowspace import RowSpace, null_decay, rowspace_applies
from wdbench.population.native._build import library
from wdbench.threads import cpu_threads, run_parallel

__all__ = [
    "NATIVE_OPTIMIZERS",
    "NATIVE_RULES",
    "native_applies",
    "native_available",
    "train_group_native",
]

#: The rules the kernel's arithmetic computes → its rule code. A rule not listed here (e.g. one
#: with optimizer state) never reaches the kernel.
NATIVE_RULES = {"coupled": 0, "decoupled": 2, "proximal": 1}
#: The optimizers the kernel computes (plain SGD by the stateless kernel; momentum, Adam with
#: state per configuration).
NATIVE_OPTIMIZERS = ("sgd", "momentum", "adam")
#: Most rows a batch may have in the kernel.
MAX_BATCH = 64
#: Configurations per chunk of the pool: a few chunks per worker, so a worker slowed by
#: another process just takes fewer of them.
CHUNKS_PER_WORKER = 4
#: AVX2 vectors per block of the plain-SGD kernel (``NV`` in ``kernel.cpp``): chunks hold whole
#: blocks.
BLOCK_VECTORS = 2
_DTYPES = {torch.float32: "wd_train_f32", torch.float64: "wd_train_f64"}
_STATE_DTYPES = {torch.float32: "wd_train_state_f32", torch.float64: "wd_train_state_f64"}
#: Optimizer → the kernel's code (momentum with Nesterov: 2).
_OPT_CODES = {"momentum": 1, "adam": 3}


def native_available() -> bool:
    """Whether the compiled kernel can be used (it is built on the first call)."""
    return library() is not None


def native_applies(group: Group) -> bool:
    """Whether the kernel can train ``group``: a CPU group in float32 or float64 with a shared
    batch order, an optimizer and a rule it knows and batches of at most ``MAX_BATCH`` rows."""
    return (
        group.optimizer.name in NATIVE_OPTIMIZERS
        and group.X.device.type == "cpu"
        and group.X.dtype in _DTYPES
        and group.shared_order
        and group.rule.name in NATIVE_RULES
        and group.batch_size <= MAX_BATCH
    )


@torch.no_grad()
def train_group_native(group: Group, on_epoch: EpochHook | None = None) -> GroupOutput:
    """Train ``group`` with the compiled kernel (see the module docstring)."""
    if group.optimizer.stateful:
        return _train_state(group, on_epoch)
    output, bounded = _train(group, on_epoch)
    exact = group.X.dtype == torch.float64
    if not (bounded and exact) or not bool((output.bad_epoch > 0).any()):
        return output
    # float64 row space: the bound on w can overflow an epoch before w does, so the runs it
    # flags run again, epoch by epoch, and their weights are checked exactly (in float32 train's
    # own products overflow within the bound's margin: the bound is what matches it)
    flagged = (output.bad_epoch > 0).any(0).nonzero().flatten()
    part = dataclasses.replace(
        group,
        w0=group.w0[flagged],
        lr=group.lr[flagged],
        lam=group.lam[flagged],
        l1_ratio=group.l1_ratio[flagged],
    )
    first = torch.zeros(int(group.X.shape[0]), len(flagged), dtype=torch.int64)

    def check(epoch: int, w: torch.Tensor, b: torch.Tensor) -> None:
        bad = ~(torch.isfinite(w).all(-1) & torch.isfinite(b.squeeze(-1)))
        first[(first == 0) & bad] = epoch + 1

    _train(part, check)
    output.bad_epoch[:, flagged] = first
    return output


def _train(group: Group, on_epoch: EpochHook | None) -> tuple[GroupOutput, bool]:
    """The kernel's run of ``group``; also whether its divergence log is a bound (row space)."""
    lib = library()
    if lib is None or not native_applies(group):
        raise ValueError("the native kernel is unavailable or does not apply to this group")
    X, dtype = group.X, group.X.dtype
    S, K = int(X.shape[0]), group.size
    space = RowSpace.of(X) if rowspace_applies(group) else None
    bound: _NullBound | None = None
    if space is not None:  # the scale σ of w₀⊥ only decays: κ^steps in float64 at the end
        z0 = space.project(group.w0)
        rows = space.rows(X)[..., :-1].to(dtype).contiguous()
        w = z0.to(dtype, copy=True).contiguous()  # the kernel writes it in place
        bound = _NullBound(space, group, z0)
    else:
        rows = X.contiguous()
        w = group.w0.expand(S, -1, -1).contiguous()
    b = torch.zeros(S, K, dtype=dtype)
    log = DivergenceLog(group.epochs, b)
    factors = [t.reshape(-1).contiguous() for t in _factors(group)]
    y = group.y.contiguous()
    order = group.order[0].to(torch.int64).contiguous()
    call = _entry(lib, dtype)
    block = BLOCK_VECTORS * 32 // X.element_size()  # configurations per block of the kernel
    per_chunk = block * max(1, math.ceil(K / (block * cpu_threads() * CHUNKS_PER_WORKER)))
    n, D = int(rows.shape[1]), int(rows.shape[2])
    w_out = w if space is None else torch.empty(S, K, int(X.shape[2]), dtype=dtype)
    spans = [(0, group.epochs)] if on_epoch is None else [(e, e + 1) for e in range(group.epochs)]
    for first, last in spans:

        def chunk(k0: int, first: int = first, last: int = last) -> int:
            """Train configurations [k0, k1) over the span; after the last, their weights."""
            k1 = min(k0 + per_chunk, K)
            code = call(
                S, n, D, K, k0, k1, group.batch_size,
                _ptr(rows), _ptr(y), _ptr(order[first:last]), last - first,
                NATIVE_RULES[group.rule.name], int(group.penalty.has_l1),
                int(group.penalty.has_l2), _ptr(w), _ptr(b), *(_ptr(f) for f in factors),
                None if bound is None else _ptr(bound.columns), _ptr(log.sums[first]), S * K,
            )  # fmt: skip
            if space is not None and last == group.epochs and not code:
                w_out[:, k0:k1] = _weights(w[:, k0:k1], space, group, z0, slice(k0, k1), last)
            return int(code)

        codes = run_parallel([partial(chunk, k0) for k0 in range(0, K, per_chunk)])
        if any(codes):
            raise RuntimeError(f"the native kernel failed (codes {sorted(set(codes))})")
        if bound is not None:
            bound.add(log.sums, first, last)
        if on_epoch is not None:
            w_now = w if space is None else _weights(w, space, group, z0, slice(0, K), last)
            on_epoch(last - 1, w_now, b.unsqueeze(-1))
    return GroupOutput(w=w_out, b=b, bad_epoch=log.bad_epoch()), bound is not None


def _train_state(group: Group, on_epoch: EpochHook | None) -> GroupOutput:
    """The kernel's run of a momentum or Adam ``group`` in the weight space."""
    lib = library()
    if lib is None or not native_applies(group):
        raise ValueError("the native kernel is unavailable or does not apply to this group")
    X, dtype, opt = group.X, group.X.dtype, group.optimizer
    S, K, n, D = int(X.shape[0]), group.size, int(X.shape[1]), int(X.shape[2])
    w = group.w0.expand(S, -1, -1).contiguous()
    b = torch.zeros(S, K, dtype=dtype)
    adam = opt.name == "adam"
    w_state = [torch.zeros_like(w) for _ in range(2 if adam else 1)]
    b_state = [torch.zeros_like(b) for _ in range(2 if adam else 1)]
    w_state2, b_state2 = (w_state[-1], b_state[-1]) if adam else (w, b)  # unread without Adam
    f = group.factors()
    assert f.a is not None and f.c is not None
    factors = [
        t.to(dtype).expand(K, 1).reshape(-1).contiguous()
        for t in (f.lr, f.lr_a, f.lr_c, f.shrink, f.a, f.c)
    ]
    code_opt = 2 if opt.name == "momentum" and opt.nesterov else _OPT_CODES[opt.name]
    hyper = torch.tensor([opt.momentum, opt.beta1, opt.beta2, opt.eps], dtype=torch.float64)
    log = DivergenceLog(group.epochs, b)
    y = group.y.contiguous()
    order = group.order[0].to(torch.int64).contiguous()
    call = _state_entry(lib, dtype)
    lanes = 32 // X.element_size()
    per_chunk = lanes * max(1, math.ceil(K / (lanes * cpu_threads() * CHUNKS_PER_WORKER)))
    steps = math.ceil(n / group.batch_size)
    spans = [(0, group.epochs)] if on_epoch is None else [(e, e + 1) for e in range(group.epochs)]
    for first, last in spans:

        def chunk(k0: int, first: int = first, last: int = last) -> int:
            """Train configurations [k0, k1) over the span."""
            k1 = min(k0 + per_chunk, K)
            code = call(
                S, n, D, K, k0, k1, group.batch_size,
                _ptr(X), _ptr(y), _ptr(order[first:last]), last - first,
                NATIVE_RULES[group.rule.name], int(group.penalty.has_l1),
                int(group.penalty.has_l2), code_opt, first * steps, _ptr(hyper), _ptr(w), _ptr(b),
                *(_ptr(t) for t in factors), _ptr(w_state[0]), _ptr(w_state2),
                _ptr(b_state[0]), _ptr(b_state2), _ptr(log.sums[first]), S * K,
            )  # fmt: skip
            return int(code)

        codes = run_parallel([partial(chunk, k0) for k0 in range(0, K, per_chunk)])
        if any(codes):
            raise RuntimeError(f"the native kernel failed (codes {sorted(set(codes))})")
        if on_epoch is not None:
            on_epoch(last - 1, w, b.unsqueeze(-1))
    return GroupOutput(w=w, b=b, bad_epoch=log.bad_epoch())


class _NullBound:
    """Divergence in the row space: w = Q z + σ·w₀⊥ can overflow while z is finite, so the
    epoch's log holds the bound Σᵢ|zᵢ|·‖qᵢ‖₁ + |σ|·‖w₀⊥‖₁ ≥ ‖w‖₁ (+ b) instead of w's row sum:
    the kernel sums the first part (``columns`` = ‖qᵢ‖₁, ``[S, R]``), ``add`` the second. The
    bound never misses a diverged run; the runs it flags are checked exactly."""

    def __init__(self, space: RowSpace, group: Group, z0: torch.Tensor) -> None:
        dtype = group.X.dtype
        self.columns = space.basis.abs().sum(1).to(dtype).contiguous()
        self.null_l1 = space.null_l1(group.w0, z0)  # [S, K] float64
        steps = math.ceil(int(group.X.shape[1]) / group.batch_size)
        self.epoch_decay = null_decay(group, steps).abs().T  # [1, K]: |κ|^steps, one epoch's
        self.sigma = torch.ones_like(self.epoch_decay)  # |σ| after the epochs added so far
        self.done = 0

    def add(self, sums: torch.Tensor, first: int, last: int) -> None:
        """Add |σ|·‖w₀⊥‖₁ to the log of epochs [first, last) (``sums [E, S, K]``; spans in
        order), |σ| = |κ|^steps after each epoch: a running product of one epoch's decay."""
        assert first == self.done, "spans of epochs are added in order"
        # the running product along the last dimension ([K, E']: torch's cumprod along a
        # leading one is several times slower)
        steps = self.epoch_decay.T.expand(-1, last - first).cumprod(1)
        decay = (steps * self.sigma.T).T.unsqueeze(1)  # [E', 1, K]
        self.sigma, self.done = decay[-1], last
        sums[first:last].add_((decay * self.null_l1).to(sums.dtype))


def _factors(group: Group) -> tuple[torch.Tensor, ...]:
    """η, ηa, ηc and 1 + ηc per configuration, in the group's dtype (``Factors``)."""
    f = group.factors()
    return tuple(t.expand(group.size, 1) for t in (f.lr, f.lr_a, f.lr_c, f.shrink))


def _weights(
    z: torch.Tensor, space: RowSpace, group: Group, z0: torch.Tensor, part: slice, epochs: int
) -> torch.Tensor:
    """Row-space coordinates ``z [S, k, R]`` of the configurations ``part`` after ``epochs``
    epochs as weights ``[S, k, d]`` in the group's dtype, with σ = κ^steps (what the decay
    leaves of w₀⊥)."""
    steps = epochs * math.ceil(int(group.X.shape[1]) / group.batch_size)
    sigma = null_decay(group, steps)[part].expand(z.shape[0], -1, -1)
    full = torch.cat([z.to(torch.float64), sigma], dim=-1)
    return space.weights(full, group.w0[part], z0[:, part]).to(group.X.dtype)


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    assert t.is_contiguous()
    return ctypes.c_void_p(t.data_ptr())


def _entry(lib: ctypes.CDLL, dtype: torch.dtype) -> Callable[..., int]:
    fn = getattr(lib, _DTYPES[dtype])
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int] * 7 + [ctypes.c_void_p] * 3 + [ctypes.c_int] * 4
    fn.argtypes += [ctypes.c_void_p] * 8 + [ctypes.c_int]
    return fn  # type: ignore[no-any-return]


def _state_entry(lib: ctypes.CDLL, dtype: torch.dtype) -> Callable[..., int]:
    fn = getattr(lib, _STATE_DTYPES[dtype])
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int] * 7 + [ctypes.c_void_p] * 3 + [ctypes.c_int] * 5
    fn.argtypes += [ctypes.c_int64] + [ctypes.c_void_p] * 14 + [ctypes.c_int]
    return fn  # type: ignore[no-any-return]
