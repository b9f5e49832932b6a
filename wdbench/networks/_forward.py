"""The forward pass of a ReLU network on stacked parameters (any leading dimensions)."""

from __future__ import annotations

import torch

from wdbench.networks._architecture import Params

__all__ = ["forward"]


def forward(params: Params, X: torch.Tensor) -> torch.Tensor:
    """Outputs ``[..., m, outputs]`` of rows ``X [..., m, d]``: z = h·Wᵀ + b per layer, ReLU
    between layers (parameters ``[..., out, in]`` / ``[..., out]`` broadcast against X)."""
    h = X
    last = len(params) - 1
    for layer, (w, b) in enumerate(params):
        h = h @ w.mT + b.unsqueeze(-2)
        if layer < last:
            h = torch.relu(h)
    return h
