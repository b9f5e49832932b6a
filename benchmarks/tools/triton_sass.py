"""The compiled kernel without a GPU: compile for an NVIDIA target and read the machine code.

``python -m benchmarks.tools.triton_sass [--arch 90] [--json]`` compiles each variant of the kernel
with Triton's bundled ``ptxas`` and reports its registers per thread, its stack (spill) bytes, and
the instruction mix of its hot loop (the longest backward branch: an epoch of steps). What to look
for: the ``thread`` layout must have no ``SHFL`` (its dot products are thread-local) and no
local-memory traffic (``LDL``/``STL``: spilled weights) in the loop. Needs Triton's NVIDIA backend;
must run without ``TRITON_INTERPRET`` (the interpreter has nothing to compile).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["VARIANTS", "Variant", "inspect", "main"]

#: Instructions worth counting in the hot loop.
OPCODES = ("FFMA", "FMUL", "FADD", "LDG", "LDS", "STS", "BAR", "SHFL", "LDL", "STL")


@dataclass(frozen=True)
class Variant:
    """One specialization of the kernel: layout, padded dimension, rule, L1 part, tiling."""

    name: str
    d_major: bool
    padded_dim: int
    proximal: bool
    has_l1: bool
    block_k: int
    num_warps: int
    batch: int = 5


VARIANTS = (
    Variant("thread-64-sgd-l2", True, 64, False, False, 64, 2),  # the row-space form at n = 50
    Variant("thread-64-proximal-l1", True, 64, True, True, 64, 2),
    Variant("thread-32-sgd-l2", True, 32, False, False, 128, 4),  # n = 20
    Variant("warp-256-sgd-l1", False, 256, False, True, 4, 1),  # full space at d = 200
    Variant("warp-256-proximal-l1", False, 256, True, True, 4, 1),
)


def inspect(variant: Variant, arch: int = 90) -> dict[str, object]:
    """Compile ``variant`` for ``sm_<arch>``: registers, stack bytes, hot-loop opcode counts."""
    import triton
    from triton.backends.compiler import GPUTarget

    from wdbench.population.triton import _jit

    kernel = _jit._fit_kernel
    names = list(kernel.arg_names)
    pointers = names[: names.index("K")]  # the tensors come first, then the integers
    signature = {name: "*i32" if name in ("ORDER", "STOP_OUT") else "*fp32" for name in pointers}
    signature.update(dict.fromkeys(names[len(pointers) :], "i32"))
    constants = {"BATCH": variant.batch, "BLOCK_K": variant.block_k,
                 "BLOCK_D": variant.padded_dim, "PROXIMAL": variant.proximal,
                 "HAS_L1": variant.has_l1, "D_MAJOR": variant.d_major}  # fmt: skip
    signature.update(dict.fromkeys(constants, "constexpr"))
    source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": variant.num_warps,
                                       "enable_fp_fusion": True})  # fmt: skip
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        sass = _run(tools / "cuobjdump", "-sass", cubin)
        usage = _run(tools / "cuobjdump", "-res-usage", cubin)
    loop = _hot_loop(sass)
    return {
        **asdict(variant),
        "registers": int(re.findall(r"REG:(\d+)", usage)[0]),
        "stack_bytes": int(re.findall(r"STACK:(\d+)", usage)[0]),
        "loop_instructions": sum(loop.values()),
        **{f"loop_{op}": loop.get(op, 0) for op in OPCODES},
    }


def _run(tool: Path, flag: str, cubin: Path) -> str:
    return subprocess.run([str(tool), flag, str(cubin)], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def _hot_loop(sass: str) -> Counter[str]:
    """Opcode counts between the target and the source of the longest backward branch."""
    rows = [(int(m[1], 16), m[2]) for m in re.finditer(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    span = (0, -1)
    for address, text in rows:
        branch = re.search(r"BRA (0x[0-9a-f]+)", text)
        target = int(branch[1], 16) if branch else address
        if target < address and address - target > span[1] - span[0]:
            span = (target, address)
    body = [text for address, text in rows if span[0] <= address <= span[1]]
    opcodes = (re.match(r"(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", text) for text in body)
    return Counter(m[1] for m in opcodes if m)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tools.triton_sass", description=__doc__
    )
    parser.add_argument("--arch", type=int, default=90, help="compute capability ×10 (90: H100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per variant")
    args = parser.parse_args(argv)
    try:
        from wdbench.population.triton._jit import interpreted
    except ImportError as error:
        print(f"error: Triton is not importable: {error}", file=sys.stderr)
        return 2
    if interpreted():
        print("error: unset TRITON_INTERPRET: the interpreter compiles nothing", file=sys.stderr)
        return 2
    for variant in VARIANTS:
        report = inspect(variant, args.arch)
        if args.json:
            print(json.dumps(report))
        else:
            print(" ".join(f"{k}={v}" for k, v in report.items() if k != "batch"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
