"""``fit_group``: K configurations × S problems through the fused Triton kernel, in one launch.

The semantics are ``wdbench.train``'s for each (problem s, configuration k): w₀ = ``w0[s]``,
b₀ = 0, the batches of ``order``, the per-configuration η, L1 coefficient a and L2 coefficient c
(``Penalty.coefficients``), and one update rule for the whole group (``sgd``: coupled
(sub)gradient, what the scratch, optim and decoupled loops compute; ``proximal``). Float32 only.

The kernel needs Triton: CUDA tensors, or CPU tensors when ``TRITON_INTERPRET=1`` was set before
Triton was imported (the interpreter; slow, for tests). ``wdbench.kernels.triton_sgd`` is imported
on the first call, so importing this module never needs Triton.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from wdbench.kernels.rowspace import RowSpace

__all__ = ["FORMS", "LAYOUTS", "RULES", "GroupOutput", "KernelOptions", "fit_group"]

RULES = ("sgd", "proximal")
#: ``full``: the d weights; ``rowspace``: ``wdbench.kernels.rowspace`` (a = 0 only).
FORMS = ("auto", "full", "rowspace")
#: ``thread``: one configuration per thread; ``warp``: one configuration per row of lanes.
LAYOUTS = ("auto", "thread", "warp")
#: Widest padded dimension the ``thread`` layout takes under ``auto`` (w and its gradient sum
#: must fit in one thread's registers).
THREAD_MAX_DIM = 64


@dataclass(frozen=True)
class KernelOptions:
    """How the kernel tiles the work; every choice gives the same results up to rounding.

    ``form="auto"`` takes the row-space form when no configuration has an L1 part and it has
    fewer coordinates than d. ``layout="auto"`` takes ``thread`` when the padded dimension is at
    most ``THREAD_MAX_DIM``, else ``warp``. ``block_k`` (configurations per program, a power of
    two) and ``num_warps`` default (0) to 32·num_warps with 2 warps for ``thread``, and 4 with
    1 warp for ``warp``.
    """

    form: str = "auto"
    layout: str = "auto"
    block_k: int = 0
    num_warps: int = 0

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        for name in ("block_k", "num_warps"):
            value = getattr(self, name)
            if value < 0 or value & (value - 1):
                raise ValueError(f"{name} must be 0 (default) or a power of two, got {value}")

    def tiling(self, padded_dim: int) -> tuple[int, int, bool]:
        """``(block_k, num_warps, d_major)`` for a padded dimension."""
        layout = self.layout
        if layout == "auto":
            layout = "thread" if padded_dim <= THREAD_MAX_DIM else "warp"
        d_major = layout == "thread"
        num_warps = self.num_warps or (2 if d_major else 1)
        block_k = self.block_k or (32 * num_warps if d_major else 4)
        return block_k, num_warps, d_major


@dataclass(frozen=True, eq=False)
class GroupOutput:
    """``w [S, K, d]`` and ``b [S, K]`` float32 (a diverged run keeps the parameters of the epoch
    it stopped at), ``epochs_run [S, K]`` int64, ``diverged [S, K]`` bool, the form that ran, and
    ``curves [S, K, epochs, len(evaluation)]`` float64 mean half squared errors after each epoch
    (NaN from a diverged run's last epoch on), or ``None``."""

    w: torch.Tensor
    b: torch.Tensor
    epochs_run: torch.Tensor
    diverged: torch.Tensor
    form: str
    curves: torch.Tensor | None = None


def fit_group(
    X: torch.Tensor,
    y: torch.Tensor,
    w0: torch.Tensor,
    order: torch.Tensor,
    *,
    coefficients: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    rule: str,
    batch_size: int,
    evaluation: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    options: KernelOptions | None = None,
) -> GroupOutput:
    """Train every configuration on every problem; one kernel launch.

    ``X [S, n, d]``, ``y [S, n]``, ``w0 [S, d]``: the training sets and starting weights (one
    device); ``order [S or 1, epochs, n]``: row indices of each epoch (``wdbench.order``);
    ``coefficients = (lr, a, c)``, each ``[K]``: η and the penalty's L1 and L2 coefficients;
    ``evaluation``: up to three ``(X [S, m, d], y [S, m])`` splits whose losses are recorded after
    every epoch (none: no curves, the cheaper mode).
    """
    options = options or KernelOptions()
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    lr, a, c = (t.detach().to(torch.float64) for t in coefficients)
    form = _form(options.form, bool((a != 0).any()), X, w0)
    space = RowSpace.of(X, w0) if form == "rowspace" else None
    dim = space.dim if space is not None else int(X.shape[-1])
    padded = 1 << max(dim - 1, 0).bit_length()
    device = X.device
    if space is not None:
        data = (space.train_rows(X), y, order, space.start(w0))
        rows = [(space.eval_rows(Xe), ye) for Xe, ye in evaluation]
    else:
        data, rows = (X, y, order, w0), list(evaluation)
    p1, p2 = (lr * a, lr * c) if rule == "proximal" else (a, c)
    coefs = tuple(_f32(t, device) for t in (lr, p1, p2))
    from wdbench.kernels.triton_sgd import launch

    w, b, stop, sums = launch(
        _prepare(data, padded, device), coefs, dim, batch_size, rule == "proximal",  # type: ignore[arg-type]
        _evaluation(rows, padded, device) if rows else None, options.tiling(padded),
    )  # fmt: skip
    if space is not None:
        w = space.weights(w).to(torch.float32)
    return _output(w, b, stop, sums, rows, int(order.shape[1]), form)


def _form(asked: str, has_l1: bool, X: torch.Tensor, w0: torch.Tensor) -> str:
    if asked == "rowspace" and has_l1:
        raise ValueError("the row-space form needs a = 0 (penalties none and l2)")
    if asked != "auto":
        return asked
    n, d = int(X.shape[-2]), int(X.shape[-1])
    return "rowspace" if not has_l1 and min(n, d) + 1 < d else "full"


def _f32(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.to(device=device, dtype=torch.float32).contiguous()


def _pad(t: torch.Tensor, padded: int, device: torch.device) -> torch.Tensor:
    """Float32 copy with the last dimension zero-padded to ``padded`` columns."""
    out = torch.zeros(*t.shape[:-1], padded, dtype=torch.float32, device=device)
    out[..., : t.shape[-1]] = t.to(device)
    return out


def _prepare(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    padded: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    X, y, order, w0 = data
    index = order.to(device=device, dtype=torch.int32).contiguous()
    return _pad(X, padded, device), _f32(y, device), index, _pad(w0, padded, device)


def _evaluation(
    rows: list[tuple[torch.Tensor, torch.Tensor]], padded: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The splits' rows concatenated, with the split index of every row."""
    if len(rows) > 3:
        raise ValueError(f"at most 3 evaluation splits, got {len(rows)}")
    X = torch.cat([_pad(Xe, padded, device) for Xe, _ in rows], dim=1)
    y = torch.cat([_f32(ye, device) for _, ye in rows], dim=1)
    sizes = torch.tensor([int(ye.shape[-1]) for _, ye in rows])
    segment = torch.repeat_interleave(torch.arange(len(rows), dtype=torch.int32), sizes)
    return X, y, segment.to(device)


def _output(
    w: torch.Tensor,
    b: torch.Tensor,
    stop: torch.Tensor,
    sums: torch.Tensor | None,
    rows: list[tuple[torch.Tensor, torch.Tensor]],
    epochs: int,
    form: str,
) -> GroupOutput:
    """Diverged runs: flagged by the kernel, or (row-space form) non-finite once rebuilt."""
    stop = stop.to(torch.int64)
    late = (stop == 0) & ~(torch.isfinite(w).all(-1) & torch.isfinite(b))
    stop = torch.where(late, epochs, stop)
    diverged = stop > 0
    epochs_run = torch.where(diverged, stop, epochs)
    curves = None
    if sums is not None:
        sizes = torch.tensor([float(ye.shape[-1]) for _, ye in rows], dtype=torch.float64)
        curves = sums[..., : len(rows)].to(torch.float64) / (2 * sizes.to(sums.device))
        finite_epochs = torch.where(diverged, stop - 1, epochs)
        past = torch.arange(epochs, device=sums.device) >= finite_epochs[..., None]
        curves = curves.masked_fill(past[..., None], float("nan"))
    return GroupOutput(w=w, b=b, epochs_run=epochs_run, diverged=diverged, form=form,
                       curves=curves)  # fmt: skip
