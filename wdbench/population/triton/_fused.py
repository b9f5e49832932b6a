"""``train_group_triton``: a whole ``Group`` (K configurations × S problems) in one kernel launch.

Same contract as ``train_group_reference`` (``wdbench.population._group``): every (problem s,
configuration k) follows ``wdbench.train`` — w₀ = ``group.w0[k]``, b₀ = 0, the group's shared batch
order, the per-configuration η, λ and l1_ratio, the group's rule — up to float32 rounding. It takes
float32 groups with a shared order (``applies``). Without an epoch hook all epochs run in one
launch; with one (per-epoch losses) it launches once per epoch and rebuilds the weights for the
hook.

The kernel needs CUDA tensors, or CPU tensors with ``TRITON_INTERPRET=1`` set before Triton is
imported (Triton's interpreter: slow, for tests). Triton itself is imported on the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from wdbench.population._group import EpochHook, Group, GroupOutput
from wdbench.population._rowspace import RowSpace

__all__ = ["FORMS", "LAYOUTS", "TRITON_RULES", "KernelOptions", "applies", "train_group_triton"]

#: The rules the kernel's own arithmetic computes → its ``PROXIMAL`` flag (decoupled is coupled
#: for plain SGD). A rule not listed here (e.g. one with optimizer state) never reaches it.
TRITON_RULES = {"coupled": False, "decoupled": False, "proximal": True}
#: ``full``: the d weights; ``rowspace``: ``RowSpace``'s orthonormal form (no L1 part only).
FORMS = ("auto", "full", "rowspace")
#: ``thread``: one configuration per thread; ``warp``: one configuration per row of lanes.
LAYOUTS = ("auto", "thread", "warp")
Tensors2 = tuple[torch.Tensor, torch.Tensor]
Tensors3 = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Launch = Callable[[Tensors3, Tensors2, Tensors3, tuple[int, bool], tuple[int, int, bool]], Tensors3]
#: Widest padded dimension ``layout="auto"`` gives the ``thread`` layout (w and its gradient sum
#: must fit in one thread's registers).
THREAD_MAX_DIM = 64


@dataclass(frozen=True)
class KernelOptions:
    """How the kernel tiles the work; every choice computes the same steps (up to rounding).

    ``form="auto"`` takes the row-space form when no configuration has an L1 part and it carries
    fewer coordinates than d. ``layout="auto"`` takes ``thread`` when the padded dimension is at
    most ``THREAD_MAX_DIM``, else ``warp``. ``block_k`` (configurations per program) and
    ``num_warps``, powers of two, default (0) to 32·num_warps and 2 for ``thread``, 4 and 1 for
    ``warp``.
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
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 0
                or (value & (value - 1))
            ):
                raise ValueError(f"{name} must be 0 (default) or a power of two, got {value!r}")

    def resolve_form(self, has_l1: bool, n: int, d: int) -> str:
        if self.form == "rowspace" and has_l1:
            raise ValueError("the row-space form needs penalties without an L1 part (none, l2)")
        if self.form != "auto":
            return self.form
        return "rowspace" if not has_l1 and min(n, d) + 1 < d else "full"

    def tiling(self, padded_dim: int) -> tuple[int, int, bool]:
        """``(block_k, num_warps, d_major)`` for a padded dimension."""
        layout = self.layout
        if layout == "auto":
            layout = "thread" if padded_dim <= THREAD_MAX_DIM else "warp"
        d_major = layout == "thread"
        num_warps = self.num_warps or (2 if d_major else 1)
        return self.block_k or (32 * num_warps if d_major else 4), num_warps, d_major


def applies(group: Group) -> bool:
    """Whether the kernel can train ``group``: float32, a shared batch order, a known rule."""
    return group.X.dtype == torch.float32 and group.shared_order and group.rule.name in TRITON_RULES


@torch.no_grad()
def train_group_triton(
    group: Group, on_epoch: EpochHook | None = None, options: KernelOptions | None = None
) -> GroupOutput:
    """Train ``group`` with the fused kernel (see the module docstring)."""
    launch = _launcher(group)
    options = options or KernelOptions()
    lr, a, c = (t.to(torch.float64).reshape(-1) for t in (group.lr, *group.coefficients()))
    n, d = int(group.X.shape[1]), int(group.X.shape[2])
    form = options.resolve_form(group.penalty.has_l1, n, d)
    space = RowSpace.of(group.X) if form == "rowspace" else None
    X, w = (space.rows(group.X), space.start(group.w0)) if space else (group.X, group.w0[None])
    padded = 1 << (int(X.shape[-1]) - 1).bit_length()
    proximal = TRITON_RULES[group.rule.name]
    coefs = _f32(lr), _f32(lr * a if proximal else a), _f32(lr * c if proximal else c)
    X, y, order = _pad(X, padded), _f32(group.y), group.order[0].to(torch.int32)
    tiling = options.tiling(padded)
    w, b = _tiled(_pad(w, padded), tiling[2]), torch.zeros(1, group.size, device=X.device)
    bad = torch.zeros(int(X.shape[0]), group.size, dtype=torch.int64, device=X.device)
    spans = [(0, group.epochs)] if on_epoch is None else [(e, e + 1) for e in range(group.epochs)]
    for first, last in spans:
        data = (X, y, order[first:last].contiguous())
        w, b, stop = launch(data, (w, b), coefs, (group.batch_size, proximal), tiling)
        bad = torch.where((bad == 0) & (stop > 0), stop.to(torch.int64) + first, bad)
        if on_epoch is not None:
            on_epoch(last - 1, _weights(_tiled(w, tiling[2]), space, group), b.unsqueeze(-1))
    return GroupOutput(w=_weights(_tiled(w, tiling[2]), space, group), b=b, bad_epoch=bad)


def _launcher(group: Group) -> Launch:
    """``triton_sgd.launch`` once the group is known to fit it (imports Triton)."""
    from wdbench.population.triton._jit import interpreted, launch

    if not applies(group):
        raise ValueError("the Triton kernel trains float32 groups with a shared batch order")
    if group.X.device.type != "cuda" and not interpreted():
        raise RuntimeError(
            "the Triton kernel needs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1, "
            "set before Triton is first imported)"
        )
    return launch


def _weights(w: torch.Tensor, space: RowSpace | None, group: Group) -> torch.Tensor:
    """The kernel's padded coordinates ``[S, K, D]`` as weights ``[S, K, d]`` float32."""
    if space is None:
        return w[..., : group.X.shape[-1]]
    return space.weights(w[..., : space.dim], group.w0).to(torch.float32)


def _tiled(w: torch.Tensor, d_major: bool) -> torch.Tensor:
    """``[S, K, D]`` ↔ the kernel's ``[S, D, K]`` for the thread layout (its own inverse)."""
    return w.transpose(-1, -2).contiguous() if d_major else w


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).contiguous()


def _pad(t: torch.Tensor, padded: int) -> torch.Tensor:
    """Float32 copy with the last dimension zero-padded to ``padded`` columns."""
    out = torch.zeros(*t.shape[:-1], padded, dtype=torch.float32, device=t.device)
    out[..., : t.shape[-1]] = t
    return out
