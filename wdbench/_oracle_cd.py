"""``native_enet_path``: the elastic-net path by compiled coordinate descent (``oracle_cd.cpp``).

scikit-learn's dense coordinate descent (cyclic, gap-safe screening, warm-started along the
path, stopping at a duality gap of tol·‖y − ȳ‖²) on the centred data, one C call per path, in
float64, without the GIL. Built and loaded with the population kernel's machinery
(``wdbench.population.native._build``); unavailable without a C++ compiler or with
``WDBENCH_NATIVE=0``, where ``wdbench.oracle`` uses scikit-learn itself.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from wdbench.population.native._build import compiled

__all__ = ["native_enet_available", "native_enet_path", "native_enet_unavailable_reason"]

SOURCE = Path(__file__).with_name("oracle_cd.cpp")
STEM = "wdbench-oracle"
#: Sweeps between Anderson extrapolations of the iterates, less one (0: none, scikit-learn's
#: iteration exactly).
ANDERSON = 5
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double


def _library() -> ctypes.CDLL | None:
    lib = compiled(SOURCE, STEM)[0]
    if lib is not None:
        lib.wd_enet_path.argtypes = [_I, _I, _P, _P, _I, _P, _D, _D, _I, _I, _P, _P, _P, _P]
        lib.wd_enet_path.restype = _I
    return lib


def native_enet_available() -> bool:
    """Whether the compiled coordinate descent can be used (it is built on the first call)."""
    return _library() is not None


def native_enet_unavailable_reason() -> str | None:
    """Why the compiled coordinate descent cannot be used here (``None`` once it is loaded)."""
    return compiled(SOURCE, STEM)[1]


def native_enet_path(
    X: torch.Tensor,
    y: torch.Tensor,
    alphas: torch.Tensor,
    l1_ratio: float,
    tol: float,
    max_iter: int,
    anderson: int = ANDERSON,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``w [L, d]``, ``b [L]`` and the sweeps of each penalty ``[L]`` for ``X [n, d]``, ``y [n]``
    (CPU, float64) at ``alphas [L]`` in the order given, each warm-started from the one before
    (the first from w = 0). A penalty not converged within ``max_iter`` sweeps keeps its last
    iterate, as scikit-learn's does (with a warning there)."""
    lib = _library()
    if lib is None:
        raise ValueError(
            f"the compiled coordinate descent is unavailable: {native_enet_unavailable_reason()}"
        )
    X = X.to("cpu", torch.float64).contiguous()
    y = y.to("cpu", torch.float64).contiguous()
    alphas = alphas.to("cpu", torch.float64).contiguous()
    n, d = (int(s) for s in X.shape)
    L = int(alphas.shape[0])
    w = torch.empty(L, d, dtype=torch.float64)
    b = torch.empty(L, dtype=torch.float64)
    n_iter = torch.empty(L, dtype=torch.int64)
    gaps = torch.empty(L, dtype=torch.float64)
    status = lib.wd_enet_path(
        n, d, X.data_ptr(), y.data_ptr(), L, alphas.data_ptr(), l1_ratio, tol, max_iter, anderson,
        w.data_ptr(), b.data_ptr(), n_iter.data_ptr(), gaps.data_ptr(),
    )  # fmt: skip
    if status < 0:
        raise ValueError(
            "coordinate descent produced non-finite coefficients: the data may contain values "
            "too large for it (standardize the features)"
        )
    return w, b, n_iter
