"""Running a kernel epoch by epoch, as one captured CUDA graph replayed on the GPU.

A fast kernel is written as an ``EpochProgram``: ``load`` copies one epoch's data (its Gram
columns or batch rows, targets and order, gathered ahead of time) into static buffers; ``run``
takes that epoch's steps on the static buffers and the training state only — no allocation, no
host synchronization, the same shapes every epoch; ``after`` does what must stay outside
(logging the epoch, curve hooks). On the CPU ``run`` is simply called. On CUDA the first epoch
runs eagerly on a side stream (the warm-up a capture needs), ``run`` is captured once into a
``torch.cuda.CUDAGraph``, and every later epoch is one replay: three copies and one graph
launch per epoch instead of ~10 kernel launches per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch

__all__ = ["EpochProgram", "cuda_graphs", "run_epochs"]

_graphs = {"enabled": True}


@contextmanager
def cuda_graphs(enabled: bool) -> Iterator[None]:
    """Inside the block, CUDA epochs are replayed as a graph (``True``, the default) or every
    epoch runs eagerly (``False``: for measuring what the graph saves)."""
    saved = _graphs["enabled"]
    _graphs["enabled"] = enabled
    try:
        yield
    finally:
        _graphs["enabled"] = saved


class EpochProgram(Protocol):
    """One epoch of a kernel on static buffers (see module)."""

    def load(self, epoch: int) -> None:
        """Copy epoch ``epoch``'s data into the static buffers ``run`` reads."""
        ...

    def run(self) -> None:
        """Take one epoch's steps: static shapes, no allocation, no host synchronization."""
        ...

    def after(self, epoch: int) -> None:
        """Work outside the graph once epoch ``epoch`` has run (logs, hooks)."""
        ...


def run_epochs(program: EpochProgram, epochs: int, device: torch.device) -> None:
    """Run ``epochs`` epochs of ``program``: called directly on the CPU, replayed as one CUDA
    graph on the GPU (the first epoch is the eager warm-up before the capture)."""
    graph: torch.cuda.CUDAGraph | None = None
    for epoch in range(epochs):
        program.load(epoch)
        if device.type != "cuda" or not _graphs["enabled"]:
            program.run()
        elif epoch == 0:
            _warm_up(program)
        else:
            if graph is None:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    program.run()
            graph.replay()
        program.after(epoch)


def _warm_up(program: EpochProgram) -> None:
    """Run one epoch eagerly on a side stream (what ``torch.cuda.graph`` expects first)."""
    side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        program.run()
    torch.cuda.current_stream().wait_stream(side)
