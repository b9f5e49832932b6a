"""The fused whole-trajectory Triton kernel: every SGD step of a block of configurations at once.

One program owns ``BLOCK_K`` configurations of one problem ``s`` (grid ``[⌈K/BLOCK_K⌉, S]``). Their
weights stay in registers for the whole run and are written back once. Each step broadcasts the
batch's rows (the shared batch order) to every configuration of the program and applies, with
η = ``lr`` and B the batch size at hand (the last batch of an epoch may be partial)::

    r_i = x_i·w + b − y_i,   g = (Σ_i r_i x_i)·(1/B),   g_b = (Σ_i r_i)·(1/B)
    sgd        w ← w − η(g + p₁·sign(w) + p₂·w)        (p₁, p₂) = (a, c)
    proximal   w ← S(w − ηg, p₁) / (1 + p₂)            (p₁, p₂) = (ηa, ηc), S: soft threshold
    bias       b ← b − η·g_b

a and c are the penalty's L1 and L2 coefficients (``wdbench.penalties``); ``HAS_L1=False`` drops
the sign term when every p₁ is 0. Arithmetic is float32 multiply-adds and ``tl.sum`` reductions —
no ``tl.dot``, hence no TF32 anywhere.

The weight tile has two orientations (``D_MAJOR``): ``[BLOCK_D, BLOCK_K]`` puts one configuration
in each thread, so the dot products x·w are thread-local (the fast form for small dimensions, e.g.
the row-space form of ``wdbench.kernels.rowspace``); ``[BLOCK_K, BLOCK_D]`` spreads a configuration
over a row of lanes and reduces across them (large dimensions, whose weights would not fit in one
thread's registers).

After every epoch a configuration whose w or b is not finite is marked diverged: its parameters of
that epoch are written and the epoch count is recorded (where ``wdbench.train`` stops). With
``WITH_CURVES`` the kernel also sums (x·w + b − y)² over the rows of each evaluation segment after
every epoch; the caller turns the sums into mean half squared errors.

Import this module only where Triton is importable; under ``TRITON_INTERPRET=1`` (set before Triton
is imported) it runs on CPU tensors through Triton's interpreter.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["N_SEGMENTS", "launch"]

#: Evaluation segments the per-epoch losses are summed into (train, validation, test).
N_SEGMENTS = 3
_FLOAT32_MAX = tl.constexpr(3.4028234663852886e38)


@triton.jit
def _per_config(v, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]
    """A ``[BLOCK_K]`` vector, broadcastable against the weight tile."""
    if D_MAJOR:
        return v[None, :]
    else:
        return v[:, None]


@triton.jit
def _per_dim(v, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]
    """A ``[BLOCK_D]`` vector, broadcastable against the weight tile."""
    if D_MAJOR:
        return v[:, None]
    else:
        return v[None, :]


@triton.jit
def _dot(w, x, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]
    """x·w for every configuration of the tile: ``[BLOCK_K]``."""
    if D_MAJOR:
        return tl.sum(w * x[:, None], axis=0)
    else:
        return tl.sum(w * x[None, :], axis=1)


@triton.jit
def _zeros(BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]
    if D_MAJOR:
        return tl.zeros([BLOCK_D, BLOCK_K], dtype=tl.float32)
    else:
        return tl.zeros([BLOCK_K, BLOCK_D], dtype=tl.float32)


@triton.jit
def _step(w, b, x_base, y_base, order_row, start, n, lr, p1, p2, ds,
          BATCH: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
          PROXIMAL: tl.constexpr, HAS_L1: tl.constexpr, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]  # fmt: skip
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
        shrunk = tl.maximum(tl.abs(v) - p1, 0.0)
        w = tl.where(v < 0, -shrunk, shrunk) / (1.0 + p2)
    elif HAS_L1:
        sign = tl.where(w > 0, 1.0, tl.where(w < 0, -1.0, 0.0))
        w = w - eta * (gsum * inv + (p1 * sign + p2 * w))
    else:
        w = w - eta * (gsum * inv + p2 * w)
    return w, b - lr * (gb * inv)


@triton.jit
def _fit_kernel(
    X, Y, ORDER, W0, LR, P1, P2,
    W_OUT, B_OUT, STOP_OUT,
    EX, EY, ESEG, CURVES,
    K, n, dim, m_eval, epochs,
    stride_os,
    BATCH: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
    PROXIMAL: tl.constexpr, HAS_L1: tl.constexpr, D_MAJOR: tl.constexpr,
    WITH_CURVES: tl.constexpr,
):  # type: ignore[no-untyped-def]  # fmt: skip
    s = tl.program_id(1)
    ks = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    kmask = ks < K
    ds = tl.arange(0, BLOCK_D)
    lr = tl.load(LR + ks, mask=kmask, other=0.0)
    p1 = _per_config(tl.load(P1 + ks, mask=kmask, other=0.0), D_MAJOR)
    p2 = _per_config(tl.load(P2 + ks, mask=kmask, other=0.0), D_MAJOR)
    w = _zeros(BLOCK_K, BLOCK_D, D_MAJOR) + _per_dim(tl.load(W0 + s * BLOCK_D + ds), D_MAJOR)
    b = tl.zeros([BLOCK_K], dtype=tl.float32)
    stop = tl.zeros([BLOCK_K], dtype=tl.int32)
    out = _per_config((s * K + ks) * dim, D_MAJOR) + _per_dim(ds, D_MAJOR)
    out_mask = _per_config(kmask, D_MAJOR) & _per_dim(ds < dim, D_MAJOR)
    x_base = X + s * n * BLOCK_D
    for epoch in range(epochs):
        order_row = ORDER + s * stride_os + epoch * n
        for start in range(0, n, BATCH):
            w, b = _step(w, b, x_base, Y + s * n, order_row, start, n, lr, p1, p2, ds,
                         BATCH, BLOCK_K, BLOCK_D, PROXIMAL, HAS_L1, D_MAJOR)  # fmt: skip
        bad = tl.sum(tl.where(tl.abs(w) <= _FLOAT32_MAX, 0, 1), axis=0 if D_MAJOR else 1)
        bad += tl.where(tl.abs(b) <= _FLOAT32_MAX, 0, 1)
        newly = (bad > 0) & (stop == 0)
        tl.store(W_OUT + out, w, mask=out_mask & _per_config(newly, D_MAJOR))
        tl.store(B_OUT + s * K + ks, b, mask=kmask & newly)
        stop = tl.where(newly, epoch + 1, stop)
        if WITH_CURVES:
            base = CURVES + ((s * K + ks) * epochs + epoch) * 3
            _curves(w, b, EX + s * m_eval * BLOCK_D, EY + s * m_eval, ESEG, base, kmask, ds,
                    m_eval, BLOCK_K, BLOCK_D, D_MAJOR)  # fmt: skip
    done = stop == 0
    tl.store(W_OUT + out, w, mask=out_mask & _per_config(done, D_MAJOR))
    tl.store(B_OUT + s * K + ks, b, mask=kmask & done)
    tl.store(STOP_OUT + s * K + ks, stop, mask=kmask)


@triton.jit
def _curves(w, b, ex, ey, ESEG, base, kmask, ds, m_eval,
            BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, D_MAJOR: tl.constexpr):  # type: ignore[no-untyped-def]  # fmt: skip
    """Σ (x·w + b − y)² over each segment's rows, stored at ``base + segment``."""
    acc0 = tl.zeros([BLOCK_K], dtype=tl.float32)
    acc1 = tl.zeros([BLOCK_K], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK_K], dtype=tl.float32)
    for i in range(m_eval):
        r = _dot(w, tl.load(ex + i * BLOCK_D + ds), D_MAJOR) + b - tl.load(ey + i)
        seg = tl.load(ESEG + i)
        acc0 += tl.where(seg == 0, r * r, 0.0)
        acc1 += tl.where(seg == 1, r * r, 0.0)
        acc2 += tl.where(seg == 2, r * r, 0.0)
    tl.store(base, acc0, mask=kmask)
    tl.store(base + 1, acc1, mask=kmask)
    tl.store(base + 2, acc2, mask=kmask)


def launch(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    coefs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    dim: int,
    batch_size: int,
    proximal: bool,
    evaluation: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    tiling: tuple[int, int, bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run the kernel on prepared, contiguous tensors of one device; returns its raw outputs.

    ``data = (X [S, n, D], y [S, n], order [S or 1, epochs, n] int32, w0 [S, D])``, float32, with
    ``D`` a power of two ≥ ``dim`` (columns past ``dim`` are zero); ``coefs = (lr, p1, p2)``, each
    ``[K]`` float32 (see the module docstring); ``evaluation = (X_eval [S, M, D], y_eval [S, M],
    segment [M] int32)`` or ``None``; ``tiling = (block_k, num_warps, d_major)``. Returns
    ``w [S, K, dim]``, ``b [S, K]``, ``stop [S, K]`` (0, or the epoch after which the configuration
    diverged) and the per-epoch sums ``[S, K, epochs, 3]`` (or ``None``).
    """
    X, y, order, w0 = data
    (n_problems, n, padded), epochs = X.shape, int(order.shape[1])
    lr, p1, p2 = coefs
    k, device = int(lr.shape[0]), X.device
    w = torch.empty(n_problems, k, dim, dtype=torch.float32, device=device)
    b = torch.empty(n_problems, k, dtype=torch.float32, device=device)
    stop = torch.empty(n_problems, k, dtype=torch.int32, device=device)
    if evaluation is None:
        dummy = torch.zeros(1, dtype=torch.float32, device=device)
        ex, ey, seg, curves, m_eval = dummy, dummy, dummy.to(torch.int32), None, 0
    else:
        (ex, ey, seg), m_eval = evaluation, int(evaluation[0].shape[1])
        curves = torch.zeros(n_problems, k, epochs, N_SEGMENTS, dtype=torch.float32,
                             device=device)  # fmt: skip
    block_k, num_warps, d_major = tiling
    _fit_kernel[(triton.cdiv(k, block_k), n_problems)](
        X, y, order, w0, lr, p1, p2, w, b, stop,
        ex, ey, seg, curves if curves is not None else ex,
        k, n, dim, m_eval, epochs, order.stride(0) if order.shape[0] > 1 else 0,
        BATCH=batch_size, BLOCK_K=block_k, BLOCK_D=padded, PROXIMAL=proximal,
        HAS_L1=bool((p1 != 0).any()), D_MAJOR=d_major, WITH_CURVES=evaluation is not None,
        num_warps=num_warps,
    )  # fmt: skip
    return w, b, stop, curves
