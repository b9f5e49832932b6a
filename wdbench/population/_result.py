"""``PopulationResult``: the columnar outcome of ``train_population`` (leading dims ``[S, K]``).

``S`` problems (data seeds) × ``K`` configurations. Entry ``[s, k]`` is what
``wdbench.train(problems[s], configs[k])`` returns, stored as tensors rather than K·S objects:
scalars in float64, weights in the widest dtype of the configurations (or dropped with
``keep_weights=False``). ``result(k, s)`` rebuilds one ``TrainResult``; ``to_frame()`` gives one
flat row per (data index, configuration).
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdbench.config import TrainConfig, loop_name
from wdbench.result import TrainResult

__all__ = ["CONFIG_FIELDS", "PopulationResult", "config_columns"]

CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
SCALARS = ("b", "train_loss", "val_loss", "test_loss", "w_norm", "zero_fraction")
ACCURACIES = ("train_acc", "val_acc", "test_acc")


def config_columns(configs: tuple[TrainConfig, ...]) -> dict[str, np.ndarray]:
    """Every ``TrainConfig`` field as one numpy column of length K (one pass over the configs)."""
    rows = list(map(operator.attrgetter(*CONFIG_FIELDS), configs))
    columns = zip(*rows, strict=True) if rows else ((),) * len(CONFIG_FIELDS)
    return {name: np.asarray(col) for name, col in zip(CONFIG_FIELDS, columns, strict=True)}


@dataclass(frozen=True, eq=False)
class PopulationResult:
    """Final parameters and losses of K configurations trained on S problems.

    Tensors (CPU): ``w [S, K, d]`` or ``None``; ``b``, the three losses, ``w_norm`` and
    ``zero_fraction`` ``[S, K]`` float64; ``diverged [S, K]`` bool; ``epochs_run [S, K]`` int64.
    ``curves`` (when asked for) maps ``"train"``, ``"val"``, ``"test"`` (or the splits asked
    for) to ``[S, K, E]`` float64 with E the largest ``epochs``; entries past a configuration's
    last epoch are NaN.
    A diverged run's losses are ``inf`` and its weights are not finite. ``train_acc``,
    ``val_acc``, ``test_acc`` ``[S, K]`` float64 for classification, ``None`` for regression.
    For networks (``wdbench.networks``) ``w [S, K, P]`` holds every weight matrix flattened in
    layer order and ``biases [S, K, Q]`` every bias (``None`` for the linear model, or when the
    weights were not kept); ``b`` is as in ``TrainResult``.
    """

    configs: tuple[TrainConfig, ...]
    columns: dict[str, np.ndarray]
    w: torch.Tensor | None
    b: torch.Tensor
    train_loss: torch.Tensor
    val_loss: torch.Tensor
    test_loss: torch.Tensor
    w_norm: torch.Tensor
    zero_fraction: torch.Tensor
    diverged: torch.Tensor
    epochs_run: torch.Tensor
    curves: dict[str, torch.Tensor] | None = None
    train_acc: torch.Tensor | None = None
    val_acc: torch.Tensor | None = None
    test_acc: torch.Tensor | None = None
    biases: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(S, K)``: problems × configurations."""
        return int(self.b.shape[0]), int(self.b.shape[1])

    @property
    def status(self) -> np.ndarray:
        """``[S, K]`` array of ``"ok"`` / ``"diverged"``."""
        return np.where(self.diverged.numpy(), "diverged", "ok")

    def result(self, k: int, s: int = 0) -> TrainResult:
        """Configuration ``k`` on problem ``s`` as a ``TrainResult`` (what ``train`` returns;
        its ``w`` is empty when the weights were not kept)."""
        curves = None
        if self.curves is not None:
            epochs = int(self.epochs_run[s, k]) - int(self.diverged[s, k])
            curves = {split: c[s, k, :epochs].tolist() for split, c in self.curves.items()}
        w = self.w[s, k].clone() if self.w is not None else torch.empty(0)
        return TrainResult(
            config=self.configs[k],
            w=w,
            b=float(self.b[s, k]),
            train_loss=float(self.train_loss[s, k]),
            val_loss=float(self.val_loss[s, k]),
            test_loss=float(self.test_loss[s, k]),
            w_norm=float(self.w_norm[s, k]),
            zero_fraction=float(self.zero_fraction[s, k]),
            status="diverged" if bool(self.diverged[s, k]) else "ok",
            epochs_run=int(self.epochs_run[s, k]),
            curves=curves,
            biases=None if self.biases is None else self.biases[s, k].clone(),
            **{name: self._accuracy(name, k, s) for name in ACCURACIES},
        )

    def _accuracy(self, name: str, k: int, s: int) -> float | None:
        values: torch.Tensor | None = getattr(self, name)
        return None if values is None else float(values[s, k])

    def to_frame(self) -> pd.DataFrame:
        """One row per (``data_index`` s, ``config_index`` k), s-major: the config fields and
        the scalar results (the columns of ``TrainResult.to_row``, with the legacy ``loop``; the
        accuracies are ``None`` for regression, as there)."""
        n_problems, n_configs = self.shape
        frame: dict[str, Any] = {
            "data_index": np.repeat(np.arange(n_problems), n_configs),
            "config_index": np.tile(np.arange(n_configs), n_problems),
        }
        for name, column in self.columns.items():
            frame[name] = np.tile(column, n_problems)
        loops = [loop_name(r, i) for r, i in zip(self.columns["rule"], self.columns["impl"],
                                                 strict=True)]  # fmt: skip
        frame["loop"] = np.tile(np.asarray(loops, dtype=object), n_problems)
        for name in SCALARS:
            frame[name] = getattr(self, name).reshape(-1).numpy()
        frame["status"] = self.status.reshape(-1)
        frame["epochs_run"] = self.epochs_run.reshape(-1).numpy()
        for name in ACCURACIES:
            values = getattr(self, name)
            frame[name] = (
                np.full(n_problems * n_configs, None, dtype=object)
                if values is None
                else values.reshape(-1).numpy()
            )
        return pd.DataFrame(frame)
