"""How two images differ: files added, removed and changed, and Debian package versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engitor.catalog.index import File


@dataclass(frozen=True)
class Change:
    path: str
    status: str  # A added, D removed, M changed
    old_size: int = 0
    new_size: int = 0


@dataclass(frozen=True)
class PackageChange:
    name: str
    old: str | None
    new: str | None


def files(a: list[File], b: list[File]) -> list[Change]:
    old = {f.path: f for f in a}
    new = {f.path: f for f in b}
    out = []
    for path in sorted(old.keys() | new.keys()):
        x, y = old.get(path), new.get(path)
        if x is None and y is not None:
            out.append(Change(path, "A", 0, y.size))
        elif y is None and x is not None:
            out.append(Change(path, "D", x.size, 0))
        elif x is not None and y is not None and not x.same(y):
            out.append(Change(path, "M", x.size, y.size))
    return out


def packages(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None
             ) -> list[PackageChange]:
    old = {p["name"]: p["version"] for p in a or []}
    new = {p["name"]: p["version"] for p in b or []}
    return [PackageChange(n, old.get(n), new.get(n)) for n in sorted(old.keys() | new.keys())
            if old.get(n) != new.get(n)]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(changes: list[Change]) -> str:
    """A few words: '+3 files, 1 changed, -1 file' ('no change' when equal)."""
    added = sum(1 for c in changes if c.status == "A")
    removed = sum(1 for c in changes if c.status == "D")
    changed = sum(1 for c in changes if c.status == "M")
    parts = []
    if added:
        parts.append("+" + _plural(added, "file"))
    if changed:
        parts.append(f"{changed} changed")
    if removed:
        parts.append("-" + _plural(removed, "file"))
    return ", ".join(parts) or "no change"


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if abs(size) < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def stat_lines(changes: list[Change], pkgs: list[PackageChange], width: int = 20) -> list[str]:
    """As `git diff --stat` shows a diff: one line a path, a bar of the size change, a total."""
    lines = []
    if changes:
        name_w = min(60, max(len(c.path) for c in changes))
        biggest = max(max(c.old_size, c.new_size) for c in changes) or 1
        for c in changes:
            grow = max(c.new_size - c.old_size, 0)
            shrink = max(c.old_size - c.new_size, 0)
            bar = "+" * round(width * grow / biggest) + "-" * round(width * shrink / biggest)
            sizes = {"A": f"new, {human(c.new_size)}", "D": f"gone, {human(c.old_size)}",
                     "M": f"{human(c.old_size)} -> {human(c.new_size)}"}[c.status]
            lines.append(f" {c.status} {c.path:<{name_w}} | {sizes} {bar}".rstrip())
    for p in pkgs:
        lines.append(f" package {p.name}: {p.old or '(none)'} -> {p.new or '(none)'}")
    added = sum(c.new_size - c.old_size for c in changes if c.new_size > c.old_size)
    removed = sum(c.old_size - c.new_size for c in changes if c.old_size > c.new_size)
    n_added = sum(1 for c in changes if c.status == "A")
    n_removed = sum(1 for c in changes if c.status == "D")
    total = (f" {_plural(len(changes), 'file')} changed, {n_added} added, {n_removed} removed; "
             f"{human(added)} more, {human(removed)} less")
    if pkgs:
        total += f", {_plural(len(pkgs), 'package')} changed"
    return [*lines, total]
