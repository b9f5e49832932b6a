"""Exact, converged solutions of the penalized objectives (bias unpenalized), in float64.

    ridge    argmin (1/2n)‖Xw + b − y‖² + λ/2 ‖w‖²
    lasso    argmin (1/2n)‖Xw + b − y‖² + λ‖w‖₁
    elastic  argmin (1/2n)‖Xw + b − y‖² + λ(ρ‖w‖₁ + (1−ρ)/2 ‖w‖²)

Our λ is scikit-learn's ``alpha`` for ``Lasso`` / ``ElasticNet`` (same 1/(2n) data term); for
``Ridge``, whose data term has no 1/(2n), ``alpha = n·λ``. The lasso and the elastic net are
solved by scikit-learn's coordinate descent and stopping rule, compiled (``oracle_cd.cpp``, with
its iterates extrapolated) where a C++ compiler is, else by scikit-learn itself.

``null_model`` is the limit λ → ∞ of every path: w = 0, b = mean of y_train (predict the
training mean). For classification the null model is ``null_classifier``: no weights, the
logits b = log of the training class frequencies (the intercept-only softmax regression), i.e.
predict the majority class of the training rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from wdbench._oracle_cd import native_enet_available, native_enet_path
from wdbench.losses import half_mse
from wdbench.problems import Problem
from wdbench.training import SPLITS

__all__ = [
    "NullClassifier",
    "OraclePath",
    "elastic_net_path",
    "lasso_path",
    "null_classifier",
    "null_model",
    "ridge_path",
]


@dataclass(frozen=True, eq=False)
class OraclePath:
    """Solutions for each λ: ``w [L, d]``, ``b [L]`` and the loss of every split ``[L]``."""

    penalty: str
    lams: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor
    losses: dict[str, torch.Tensor]
    l1_ratio: float | None = None


def _as_lams(lams: Sequence[float] | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(lams, dtype=torch.float64).reshape(-1)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError("lams must be a non-empty sequence of finite values >= 0")
    return t


def _path(
    prob: Problem,
    penalty: str,
    lams: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    l1_ratio: float | None = None,
) -> OraclePath:
    losses = {s: half_mse(*prob.split(s), w, b.unsqueeze(-1)) for s in SPLITS}
    return OraclePath(penalty, lams, w, b, losses, l1_ratio)


def ridge_path(problem: Problem, lams: Sequence[float] | torch.Tensor) -> OraclePath:
    """Ridge for every λ from one SVD of the centred training matrix.

    With Xc = X − x̄ = U S Vᵀ and yc = y − ȳ: w = V diag(s / (s² + nλ)) Uᵀ yc, b = ȳ − x̄·w.
    At λ = 0 this is the minimum-norm least-squares solution.
    """
    lam = _as_lams(lams)
    prob = problem.to("cpu", torch.float64)
    X, y = prob.X_train, prob.y_train
    n = X.shape[0]
    x_mean, y_mean = X.mean(0), y.mean()
    U, S, Vh = torch.linalg.svd(X - x_mean, full_matrices=False)
    cutoff = S.max() * max(X.shape) * torch.finfo(S.dtype).eps
    keep = S > cutoff
    U, S, Vh = U[:, keep], S[keep], Vh[keep]
    uty = U.T @ (y - y_mean)
    factors = S / (S * S + n * lam.unsqueeze(-1))
    w = (factors * uty) @ Vh
    b = y_mean - w @ x_mean
    return _path(prob, "l2", lam, w, b)


def elastic_net_path(
    problem: Problem,
    lams: Sequence[float] | torch.Tensor,
    l1_ratio: float = 0.5,
    tol: float = 1e-12,
    max_iter: int = 1_000_000,
    backend: str = "auto",
) -> OraclePath:
    """scikit-learn's coordinate descent at α = λ, warm-started along the path (in the order given).

    ``backend``: ``"native"`` runs it compiled (``oracle_cd.cpp``: scikit-learn's iteration,
    screening and duality-gap stopping rule, the whole path in one call); ``"sklearn"`` runs
    scikit-learn's ``ElasticNet`` / ``Lasso``; ``"auto"`` the compiled one where it can be built
    (a C++ compiler, ``WDBENCH_NATIVE`` not 0), else scikit-learn.
    """
    if not 0 <= l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
    if backend not in ("auto", "native", "sklearn"):
        raise ValueError(f"backend must be 'auto', 'native' or 'sklearn', got {backend!r}")
    lam = _as_lams(lams)
    prob = problem.to("cpu", torch.float64)
    if backend == "native" or (backend == "auto" and native_enet_available()):
        w, b, _ = native_enet_path(prob.X_train, prob.y_train, lam, l1_ratio, tol, max_iter)
    else:
        w, b = _sklearn_path(prob, lam, l1_ratio, tol, max_iter)
    penalty = "l1" if l1_ratio == 1 else "elastic"
    return _path(prob, penalty, lam, w, b, None if l1_ratio == 1 else l1_ratio)


def _sklearn_path(
    prob: Problem, lam: torch.Tensor, l1_ratio: float, tol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNet, Lasso

    X, y = prob.X_train.numpy(), prob.y_train.numpy()
    ws, bs = [], []
    model: Lasso | ElasticNet
    if l1_ratio == 1:
        model = Lasso(tol=tol, max_iter=max_iter, warm_start=True)
    else:
        model = ElasticNet(l1_ratio=l1_ratio, tol=tol, max_iter=max_iter, warm_start=True)
    for alpha in lam.tolist():
        model.set_params(alpha=alpha)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        ws.append(torch.from_numpy(model.coef_.copy()))
        bs.append(float(model.intercept_))
    return torch.stack(ws), torch.tensor(bs, dtype=torch.float64)


def lasso_path(
    problem: Problem,
    lams: Sequence[float] | torch.Tensor,
    tol: float = 1e-12,
    backend: str = "auto",
) -> OraclePath:
    """The lasso (l1) solution for every λ (``elastic_net_path`` at l1_ratio = 1)."""
    return elastic_net_path(problem, lams, l1_ratio=1.0, tol=tol, backend=backend)


def null_model(problem: Problem) -> OraclePath:
    """The intercept-only model: w = 0, b = mean of y_train (``lams`` = [inf], penalty "null")."""
    prob = problem.to("cpu", torch.float64)
    w = torch.zeros(1, prob.dim, dtype=torch.float64)
    b = prob.y_train.mean().reshape(1)
    return _path(prob, "null", torch.tensor([math.inf], dtype=torch.float64), w, b)


@dataclass(frozen=True, eq=False)
class NullClassifier:
    """The intercept-only classifier of a problem's training rows: class ``frequencies`` ``[C]``,
    the ``majority`` class (the lowest index among ties), and per split the cross-entropy of the
    frequencies (``losses``; inf when a class of the split never occurs in training) and the
    accuracy of always predicting the majority class (``accuracies``)."""

    frequencies: torch.Tensor
    majority: int
    losses: dict[str, float]
    accuracies: dict[str, float]


def null_classifier(problem: Problem) -> NullClassifier:
    """The null model of a classification problem: predict the training class frequencies."""
    if not problem.n_classes:
        raise ValueError("null_classifier needs a classification problem (use null_model)")
    y_train = problem.y_train.cpu()
    counts = torch.bincount(y_train, minlength=problem.n_classes).to(torch.float64)
    frequencies = counts / counts.sum()
    majority = int(torch.argmax(counts))
    log_f = torch.log(frequencies)
    losses, accuracies = {}, {}
    for split in SPLITS:
        y = problem.split(split)[1].cpu()
        losses[split] = float(-log_f[y].mean())
        accuracies[split] = float((y == majority).to(torch.float64).mean())
    return NullClassifier(frequencies, majority, losses, accuracies)
