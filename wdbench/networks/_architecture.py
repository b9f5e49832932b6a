"""A network's shape and its initialization: torch's default ``nn.Linear`` rule, from the seed.

Layer l maps ``dims[l]`` features to ``dims[l + 1]``; its weight is ``[out, in]`` (``nn.Linear``'s
layout) and its bias ``[out]``. Every layer but the last is followed by a ReLU. Parameters are
drawn in float64 on the CPU from ``wdbench.seeding.generator(seed, "init", "network")``, layer by
layer (weight, then bias), then cast and moved, so every dtype and device starts from the same
point: W ~ U(±1/√fan_in) (``kaiming_uniform_(a=√5)``, what ``nn.Linear.reset_parameters`` draws)
times ``init_scale``, b ~ U(±1/√fan_in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wdbench.config import TrainConfig
from wdbench.seeding import generator

__all__ = ["Architecture", "Params", "flatten", "init_network"]

#: A network's parameters, layer by layer: ``(weight [..., out, in], bias [..., out])``.
Params = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Architecture:
    """Feature widths from input to output: ``(d, h₁, …, h_L, outputs)``."""

    dims: tuple[int, ...]

    @classmethod
    def of(cls, config: TrainConfig, features: int, outputs: int) -> Architecture:
        """``config.layers`` hidden layers of ``config.hidden`` units for ``"mlp"``, none for
        ``"linear"`` (x·Wᵀ + b: the linear model, or multinomial logistic regression)."""
        hidden = (config.hidden,) * config.layers if config.model == "mlp" else ()
        return cls((features, *hidden, outputs))

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(out, in)`` of every layer's weight."""
        return list(zip(self.dims[1:], self.dims[:-1], strict=True))

    @property
    def n_weights(self) -> int:
        return sum(o * i for o, i in self.shapes)

    @property
    def n_biases(self) -> int:
        return sum(self.dims[1:])


def init_network(arch: Architecture, seed: int, init_scale: float = 1.0) -> Params:
    """The start of train seed ``seed`` in float64 on the CPU (see the module docstring)."""
    gen = generator(seed, "init", "network")
    params: Params = []
    for out, fan_in in arch.shapes:
        bound = 1 / math.sqrt(fan_in)
        w = torch.empty(out, fan_in, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
        b = torch.empty(out, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
        params.append((w * init_scale, b))
    return params


def flatten(params: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, biases)``: every weight matrix, then every bias, flattened over the trailing
    dimensions and concatenated in layer order (leading dimensions kept)."""
    weights = torch.cat([w.flatten(-2) for w, _ in params], -1)
    biases = torch.cat([b for _, b in params], -1)
    return weights, biases
