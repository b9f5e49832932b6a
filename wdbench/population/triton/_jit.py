"""The fused whole-trajectory Triton kernel: every SGD step of a block of configurations at once.

One program owns ``BLOCK_K`` configurations of one problem ``s`` (grid ``[⌈K/BLOCK_K⌉, S]``). Their
weights stay in registers for the whole run and are written back once. Each step broadcasts the
batch's rows (the shared batch order) to every configuration of the program and applies, with
η = ``lr`` and B the batch size at hand (the last batch of an epoch may be partial)::

    r_i = x_i·w + b − y_i,   g = (Σ_i r_i x_i)·(1/B),   g_b = (Σ_i r_i)·(1/B)
    sgd        w ← w − η(g + p₁·sign(w) + p₂·w)        (p₁, p₂) = (a, c)
    proximal   w ← S(w − ηg, p₁) / (1 + p₂)            (p₁, p₂) = (ηa, ηc), S: soft threshold

(the rules of ``wdbench.rules`` in the kernel's own arithmetic; decoupled is the first line
for plain SGD; the tests compare it with ``Rule.step`` and ``wdbench.train``).
    bias       b ← b − η·g_b

a and c are the penalty's L1 and L2 coefficients (``wdbench.penalties``); ``HAS_L1=False`` drops
the sign term when every p₁ is 0. Arithmetic is float32 multiply-adds and ``tl.sum`` reductions —
no ``tl.dot``, hence no TF32 anywhere.

The weight tile has two orientations (``D_MAJOR``): ``[BLOCK_D, BLOCK_K]`` puts one configuration in
each thread, so the dot products x·w are thread-local (the fast form for small dimensions, e.g. the
row-space form of ``wdbench.population.RowSpace``); ``[BLOCK_K, BLOCK_D]`` spreads a configuration
over a row of lanes and reduces across them (large dimensions, whose weights would not fit in one
thread's registers).

After every epoch a configuration whose w or b is not finite for the first time records that epoch
(where ``wdbench.train`` stops); it runs on, and NaN propagates through every step (as in the
PyTorch path), so its final parameters stay non-finite.

Import this module only where Triton is importable; under ``TRITON_INTERPRET=1`` (set before Triton
is imported) it runs on CPU tensors through Triton's interpreter.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["interpreted", "launch"]

_FLOAT32_MAX = tl.constexpr(3.4028234663852886e38)


@triton.jit
def _per_config(v, D_MAJOR: tl.constexpr):
    """A ``[BLOCK_K]`` vector, broadcastable against the weight tile."""
    if D_MAJOR:
        return v[None, :]
    else:
        return v[:, None]


@triton.jit
def _per_dim(v, D_MAJOR: tl.constexpr):
    """A ``[BLOCK_D]`` vector, broadcastable against the weight tile."""
    if D_MAJOR:
        return v[:, None]
    else:
        return v[None, :]


@triton.jit
def _dot(w, x, D_MAJOR: tl.constexpr):
    """x·w for every configuration of the tile: ``[BLOCK_K]``."""
    if D_MAJOR:
        return tl.sum(w * x[:, None], axis=0)
    else:
        return tl.sum(w * x[None, :], axis=1)


@triton.jit
def _tile_offsets(ks, ds, K, BLOCK_D: tl.constexpr, D_MAJOR: tl.constexpr):
    """Offsets of the weight tile in memory: ``[D, K]`` (thread layout) or ``[K, D]``; the
    contiguous axis is the one the threads run along, which fixes the compiler's layout."""
    if D_MAJOR:
        return ds[:, None] * K + ks[None, :]
    else:
        return ks[:, None] * BLOCK_D + ds[None, :]


@triton.jit
def _step(w, b, x_base, y_base, order_row, start, n, lr, p1, p2, ds,
          BATCH: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
          PROXIMAL: tl.constexpr, HAS_L1: tl.constexpr, D_MAJOR: tl.constexpr):  # fmt: skip
    """One minibatch step on the rows ``order_row[start : start + BATCH]`` (clipped at n)."""
    gb = tl.zeros([BLOCK_K], dtype=tl.float32)
    for j in tl.static_range(BATCH):
        valid = (tl.zeros([BLOCK_K], dtype=tl.int32) + start + j) < n
        row = tl.load(order_row + tl.minimum(start + j, n - 1))  # a partial batch: unused
        x = tl.load(x_base + row * BLOCK_D + ds)
        r = tl.where(valid, _dot(w, x, D_MAJOR) + b - tl.load(y_base + row), 0.0)
        gb += r
        if j == 0:
            gsum = _per_dim(x, D_MAJOR) * _per_config(r, D_MAJOR)
        else:
            gsum += _per_dim(x, D_MAJOR) * _per_config(r, D_MAJOR)
    inv = 1.0 / tl.minimum(n - start, BATCH).to(tl.float32)
    eta = _per_config(lr, D_MAJOR)
    if PROXIMAL:
        v = w - eta * (gsum * inv)
        shrunk = tl.maximum(tl.abs(v) - p1, 0.0, propagate_nan=tl.PropagateNan.ALL)
        w = tl.where(v < 0, -shrunk, shrunk) / (1.0 + p2)
    elif HAS_L1:
        sign = tl.where(w > 0, 1.0, tl.where(w < 0, -1.0, 0.0))
        w = w - eta * (gsum * inv + (p1 * sign + p2 * w))
    else:
        w = w - eta * (gsum * inv + p2 * w)
    return w, b - lr * (gb * inv)


@triton.jit
def _fit_kernel(
    X, Y, ORDER, W0, B0, LR, P1, P2,
    W_OUT, B_OUT, STOP_OUT,
    K, n, epochs, stride_w0, stride_b0,
    BATCH: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
    PROXIMAL: tl.constexpr, HAS_L1: tl.constexpr, D_MAJOR: tl.constexpr,
):  # fmt: skip
    s = tl.program_id(1)
    ks = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    kmask = ks < K
    ds = tl.arange(0, BLOCK_D)
    lr = tl.load(LR + ks, mask=kmask, other=0.0)
    p1 = _per_config(tl.load(P1 + ks, mask=kmask, other=0.0), D_MAJOR)
    p2 = _per_config(tl.load(P2 + ks, mask=kmask, other=0.0), D_MAJOR)
    rows = _tile_offsets(ks, ds, K, BLOCK_D, D_MAJOR)
    tile_mask = _per_config(kmask, D_MAJOR) & _per_dim(ds < BLOCK_D, D_MAJOR)  # kmask, as a tile
    w = tl.load(W0 + s * stride_w0 + rows, mask=tile_mask, other=0.0)
    b = tl.load(B0 + s * stride_b0 + ks, mask=kmask, other=0.0)
    stop = tl.zeros([BLOCK_K], dtype=tl.int32)
    x_base = X + s * n * BLOCK_D
    for epoch in range(epochs):
        for start in range(0, n, BATCH):
            w, b = _step(w, b, x_base, Y + s * n, ORDER + epoch * n, start, n, lr, p1, p2, ds,
                         BATCH, BLOCK_K, BLOCK_D, PROXIMAL, HAS_L1, D_MAJOR)  # fmt: skip
        bad = tl.sum(tl.where(tl.abs(w) <= _FLOAT32_MAX, 0, 1), axis=0 if D_MAJOR else 1)
        bad += tl.where(tl.abs(b) <= _FLOAT32_MAX, 0, 1)
        stop = tl.where((bad > 0) & (stop == 0), epoch + 1, stop)
    tl.store(W_OUT + s * K * BLOCK_D + rows, w, mask=tile_mask)
    tl.store(B_OUT + s * K + ks, b, mask=kmask)
    tl.store(STOP_OUT + s * K + ks, stop, mask=kmask)


def interpreted() -> bool:
    """Whether the kernel runs in Triton's interpreter: ``TRITON_INTERPRET=1`` was set before
    Triton was first imported (Triton's own ``tl.zeros`` is then interpreted too)."""
    compiled = triton.runtime.JITFunction
    return not isinstance(_fit_kernel, compiled) and not isinstance(tl.zeros, compiled)


def launch(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    start: tuple[torch.Tensor, torch.Tensor],
    coefs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    rule: tuple[int, bool],
    tiling: tuple[int, int, bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run every epoch of ``order`` in one launch, on prepared contiguous tensors of one device.

    ``data = (X [S, n, D], y [S, n], order [epochs, n] int32)`` float32, ``D`` a power of two
    (columns past the problem's dimension are zero); ``start = (w0, b0 [S or 1, K])`` with ``w0``
    ``[S or 1, D, K]`` when ``d_major`` (the thread layout), else ``[S or 1, K, D]``;
    ``coefs = (lr, p1, p2)``, each ``[K]`` float32 (module docstring); ``rule = (batch_size,
    proximal)``; ``tiling = (block_k, num_warps, d_major)``. Returns ``w`` (laid out as ``w0``,
    with S rows), ``b [S, K]`` and ``stop [S, K]`` int32: 0, or the epoch (1-based) after which
    the run first stopped being finite. Multiply-adds are fused (``enable_fp_fusion``).
    """
    X, y, order = data
    w0, b0 = start
    lr, p1, p2 = coefs
    (n_problems, n, padded), k = X.shape, int(lr.shape[0])
    w = torch.empty(n_problems, *w0.shape[1:], dtype=torch.float32, device=X.device)
    b = torch.empty(n_problems, k, dtype=torch.float32, device=X.device)
    stop = torch.empty(n_problems, k, dtype=torch.int32, device=X.device)
    if max(w.numel(), X.numel()) >= 2**31:
        raise ValueError("the kernel indexes with int32: split the configurations into chunks")
    batch_size, proximal = rule
    block_k, num_warps, d_major = tiling
    _fit_kernel[(triton.cdiv(k, block_k), n_problems)](
        X, y, order, w0, b0, lr, p1, p2, w, b, stop,
        k, n, int(order.shape[0]), w0.stride(0) if w0.shape[0] > 1 else 0,
        b0.stride(0) if b0.shape[0] > 1 else 0,
        BATCH=batch_size, BLOCK_K=block_k, BLOCK_D=padded, PROXIMAL=proximal,
        HAS_L1=bool((p1 != 0).any()), D_MAJOR=d_major, num_warps=num_warps,
        enable_fp_fusion=True,
    )  # fmt: skip
    return w, b, stop
