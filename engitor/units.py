"""Sizes as engitor states them: one MiB, one way to print a size."""

from __future__ import annotations

MiB = 1024 * 1024


def mib(size: int | float) -> str:
    """A size in bytes as people read it in engitor's messages: "12.3 MiB"."""
    return f"{size / MiB:.1f} MiB"
