"""Small ReLU networks (``TrainConfig.model == "mlp"``, and the linear model on classification).

* ``_architecture`` — ``Architecture`` (widths from input to output) and ``init_network``:
  torch's default ``nn.Linear`` initialization drawn from the train seed.
* ``_forward``      — ``forward``: the network on stacked parameters (any leading dimensions).
* ``_single``       — ``NetworkRun``: one network trained by a rule and optimizer of
  ``wdbench.rules`` / ``wdbench.optimizers``, weights only penalized (``wdbench.train``).
* ``_population``   — ``train_networks``: K networks × S problems at once
  (``wdbench.train_population``; imported by the population package, not here).
* ``_batched``      — the stacked torch kernel (``BlockTrainer``) and its ``torch.func.vmap`` form.
* ``_native``       — the compiled CPU kernel (``kernel.cpp``, built on first use) for the common
  paths: networks along the SIMD lanes, a lane group's weights kept in cache for a whole epoch.

The loss of each task and the accuracy are ``wdbench.losses``.
"""

from wdbench.networks._architecture import Architecture, Params, flatten, init_network
from wdbench.networks._forward import forward
from wdbench.networks._single import NetworkRun

__all__ = [
    "Architecture",
    "NetworkRun",
    "Params",
    "flatten",
    "forward",
    "init_network",
    "uses_network",
]


def uses_network(model: str, task: str) -> bool:
    """Whether a ``model`` on a ``task`` problem is trained as a network: always for
    ``"mlp"``; for ``"linear"`` on classification (the linear regression kernels stay)."""
    return model == "mlp" or task == "classification"
