"""``train_block_native``: a ``Block`` trained by the compiled CPU kernel (``kernel.cpp``).

Same contract as ``train_block`` (entry [s, k] follows ``wdbench.train`` up to rounding). The
kernel runs networks along the SIMD lanes: a lane group of 8 (float32) or 4 (float64) networks
shares each batch row, and takes every step of an epoch while its weights stay in cache, so no
weight is streamed through memory at each step. It applies to the common paths — a shared batch
order; plain SGD, momentum or Adam; no penalty, or L2 by any rule (``coupled``,
``decoupled``, ``proximal``) — and is built with the linear kernel's machinery
(``wdbench.population.native._build``); ``train_block`` falls back to the torch kernel
elsewhere. Evaluation and the divergence log are those of ``_batched``.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from pathlib import Path

import torch

from wdbench.networks._architecture import Params
from wdbench.networks._batched import Block, BlockOutput, _factors
from wdbench.population._group import DivergenceLog
from wdbench.population.native._build import compiled

__all__ = [
    "NativeTrainer",
    "native_block_applies",
    "network_kernel_available",
    "network_kernel_unavailable_reason",
    "train_block_native",
]

SOURCE = Path(__file__).with_name("kernel.cpp")
#: Most rows a batch may have in the kernel.
MAX_BATCH = 64
_ENTRIES = {torch.float32: "wd_mlp_f32", torch.float64: "wd_mlp_f64"}
_OPT_CODES = {"sgd": 0, "momentum": 1, "adam": 3}
#: The kernel's rule code: 0 when the penalty has no part to apply.
_RULE_CODES = {"coupled": 1, "decoupled": 2, "proximal": 3}


def _library() -> ctypes.CDLL | None:
    return compiled(SOURCE, "wdbench-networks")[0]


def network_kernel_available() -> bool:
    """Whether the compiled networks kernel can be used (it is built on the first call)."""
    return _library() is not None


def network_kernel_unavailable_reason() -> str | None:
    """Why the networks kernel cannot be used here (``None`` once it is loaded)."""
    return compiled(SOURCE, "wdbench-networks")[1]


def native_block_applies(block: Block) -> bool:
    """Whether the kernel can train ``block``: a CPU block in float32 or float64 with one shared
    batch order, an optimizer it knows, no L1 part and batches of at most ``MAX_BATCH`` rows."""
    X, _ = block.splits["train"]
    return (
        X.device.type == "cpu"
        and X.dtype in _ENTRIES
        and int(block.order.shape[0]) == 1
        and block.optimizer.name in _OPT_CODES
        and block.rule.name in _RULE_CODES
        and not block.penalty.has_l1
        and block.batch_size <= MAX_BATCH
    )


class _Packed:
    """The block's parameters (or a state) in the kernel's layout ``[S, G, P, lanes]``."""

    def __init__(self, shapes: list[tuple[int, int]], K: int, lanes: int) -> None:
        self.shapes, self.K, self.lanes = shapes, K, lanes
        self.G = math.ceil(K / lanes)

    def pack(self, params: Params, S: int) -> torch.Tensor:
        """``[K, out, in]`` / ``[K, out]`` per layer → packed, the last network repeated into the
        lanes past K (they train alongside and are dropped)."""
        pad = self.G * self.lanes - self.K
        parts = []
        for w, b in params:
            for t in (w.flatten(1), b):
                if pad:
                    t = torch.cat([t, t[-1:].expand(pad, -1)])
                parts.append(t.reshape(self.G, self.lanes, -1).transpose(1, 2))
        packed = torch.cat(parts, 1)
        return packed.expand(S, *packed.shape).contiguous()

    def unpack(self, packed: torch.Tensor) -> Params:
        """Packed ``[S, G, P, lanes]`` → ``[S, K, out, in]`` / ``[S, K, out]`` per layer."""
        S = int(packed.shape[0])
        flat = packed.transpose(2, 3).reshape(S, self.G * self.lanes, -1)[:, : self.K]
        params, at = [], 0
        for out, fan_in in self.shapes:
            w = flat[..., at : at + out * fan_in].reshape(S, self.K, out, fan_in)
            at += out * fan_in
            params.append((w, flat[..., at : at + out]))
            at += out
        return params


class NativeTrainer:
    """A block's networks in the kernel's layout, trained ``run`` by ``run`` (or ``step`` by
    ``step``); ``params`` and ``evaluate`` read them back."""

    def __init__(self, block: Block) -> None:
        lib = _library()
        if lib is None or not native_block_applies(block):
            raise ValueError("the networks kernel is unavailable or does not apply to this block")
        self.lib, self.block = lib, block
        X, _ = block.splits["train"]
        dtype, S = X.dtype, int(X.shape[0])
        K = int(block.lr.shape[0])
        lanes = int(getattr(lib, _ENTRIES[dtype].replace("mlp", "mlp_lanes"))())
        shapes = [(int(w.shape[1]), int(w.shape[2])) for w, _ in block.params]
        self.packer = _Packed(shapes, K, lanes)
        self.packed = self.packer.pack(block.params, S)
        opt = block.optimizer
        n_states = 2 if opt.name == "adam" else int(opt.stateful)
        self.states = [torch.zeros_like(self.packed) for _ in range(n_states)]
        w_factors, _ = _factors(block, X)
        assert w_factors.c is not None
        columns = (w_factors.lr, w_factors.lr_c, w_factors.c, w_factors.shrink)
        self.factors = torch.stack([_lane_column(t, K, self.packer, dtype) for t in columns])
        self.dims = (ctypes.c_int * (len(shapes) + 1))(shapes[0][1], *(o for o, _ in shapes))
        self.data = {split: _split(X, y, block.loss.has_accuracy)
                     for split, (X, y) in block.splits.items()}  # fmt: skip
        self.hyper = torch.tensor(
            [opt.momentum, opt.beta1, opt.beta2, opt.eps], dtype=torch.float64
        )
        self.code_opt = 2 if opt.name == "momentum" and opt.nesterov else _OPT_CODES[opt.name]
        self.code_rule = _RULE_CODES[block.rule.name] if block.penalty.has_l2 else 0
        self.finite = torch.zeros(S, self.packer.G * lanes, dtype=torch.uint8)
        self.steps = 0
        self.call = _entry(lib, dtype)

    def run(self, order: torch.Tensor) -> torch.Tensor:
        """Every epoch of ``order [E, n]`` (row indices of the train split): whether each
        network's parameters are all finite at the end, ``[S, K]``."""
        X, cls, yreg = self.data["train"]
        S, m = int(X.shape[0]), int(X.shape[1])
        order = order.to(torch.int64).contiguous()
        epochs, n = int(order.shape[0]), int(order.shape[1])
        G, B = self.packer.G, self.block.batch_size
        state1 = self.states[0] if self.states else None
        state2 = self.states[1] if len(self.states) > 1 else None
        code = self.call(
            self.code_opt, self.code_rule, S, m, len(self.packer.shapes), self.dims, G, 0, G, B,
            _ptr(X), _ptr(cls), _ptr(yreg), _ptr(order), n, epochs, self.steps,
            _ptr(self.hyper), _ptr(self.packed), _ptr(state1), _ptr(state2),
            _ptr(self.factors), _ptr(self.finite),
        )  # fmt: skip
        if code:
            raise RuntimeError(f"the networks kernel failed (code {code})")
        self.steps += epochs * math.ceil(n / B)
        return self.finite[:, : self.packer.K].bool()

    def step(self, idx: torch.Tensor) -> None:
        """One step on the training rows ``idx [B]``."""
        self.run(idx.unsqueeze(0))

    def params(self) -> Params:
        """The parameters as ``[S, K, out, in]`` / ``[S, K, out]`` per layer."""
        return self.packer.unpack(self.packed)

    def evaluate(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Per split: the loss ``[S, K]`` float64 (non-finite → inf) and the accuracy, as
        ``_batched``'s evaluation computes them (the accuracy rounded in the block's dtype)."""
        dtype, packer = self.packed.dtype, self.packer
        call = getattr(self.lib, _ENTRIES[dtype].replace("mlp", "mlp_eval"))
        call.restype = ctypes.c_int
        out = {}
        for split, (X, cls, yreg) in self.data.items():
            S, m = int(X.shape[0]), int(X.shape[1])
            loss = torch.empty(S, packer.G * packer.lanes, dtype=torch.float64)
            right = torch.empty_like(loss)
            code = call(
                ctypes.c_int(S), ctypes.c_int(m), ctypes.c_int(len(packer.shapes)), self.dims,
                ctypes.c_int(packer.G), ctypes.c_int(0), ctypes.c_int(packer.G), _ptr(X),
                _ptr(cls), _ptr(yreg), _ptr(self.packed), _ptr(loss), _ptr(right),
            )  # fmt: skip
            if code:
                raise RuntimeError(f"the networks kernel failed (code {code})")
            value = loss[:, : packer.K].to(dtype).to(torch.float64)
            value = torch.where(torch.isfinite(value), value, math.inf)
            acc = None
            if cls is not None:
                acc = (right[:, : packer.K].to(dtype) / m).to(torch.float64)
            out[split] = (value, acc)
        return out


@torch.no_grad()
def train_block_native(block: Block, curves: bool = False) -> BlockOutput:
    """Train the block's networks through every epoch with the kernel (see the module
    docstring): one kernel call an epoch, then the divergence log (and the curves)."""
    trainer = NativeTrainer(block)
    S, K = int(trainer.packed.shape[0]), trainer.packer.K
    order = block.order[0]
    epochs = int(order.shape[0])
    log = DivergenceLog(epochs, trainer.packed.new_zeros(S, K))
    history = {s: torch.full((S, K, epochs), math.nan, dtype=torch.float64) for s in block.splits}
    for epoch in range(epochs):
        finite = trainer.run(order[epoch : epoch + 1])
        log.current.copy_(torch.where(finite, 0.0, math.nan))
        log.keep(epoch)
        if curves:
            for split, (loss, _) in trainer.evaluate().items():
                history[split][..., epoch] = loss
    final = trainer.evaluate()
    return BlockOutput.of(block, trainer.params(), final, log, history if curves else None)


def _split(
    X: torch.Tensor, y: torch.Tensor, classification: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """A split's rows, and its classes (int64) or its targets, contiguous."""
    if classification:
        return X.contiguous(), y.to(torch.int64).contiguous(), None
    return X.contiguous(), None, y.contiguous()


def _lane_column(t: torch.Tensor, K: int, packer: _Packed, dtype: torch.dtype) -> torch.Tensor:
    """A per-network factor (``[K, 1, 1]``, or broadcastable) as ``[G·lanes]`` in ``dtype``."""
    flat = t.to(dtype).reshape(-1).expand(K) if t.numel() == 1 else t.to(dtype).reshape(K)
    pad = packer.G * packer.lanes - K
    return torch.cat([flat, flat[-1:].expand(pad)]) if pad else flat


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    if t is None:
        return None
    assert t.is_contiguous()
    return ctypes.c_void_p(t.data_ptr())


def _entry(lib: ctypes.CDLL, dtype: torch.dtype) -> Callable[..., int]:
    fn = getattr(lib, _ENTRIES[dtype])
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int] * 5 + [ctypes.c_void_p] + [ctypes.c_int] * 4
    fn.argtypes += [ctypes.c_void_p] * 4 + [ctypes.c_int] * 2 + [ctypes.c_int64]
    fn.argtypes += [ctypes.c_void_p] * 6
    return fn  # type: ignore[no-any-return]
