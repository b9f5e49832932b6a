"""Fused GPU kernels for the population trainer (optional: they need Triton)."""
