"""The layout under way: the frozen plan (image/plan.py) and the guest root the steps of
image/pipeline.py fill in from it, one after another.

Apart from the pipeline so that step modules beside it (system.py) can name it without
importing the pipeline that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engitor.cpio import Entry
from engitor.image import kmod
from engitor.image.plan import Plan
from engitor.recipe.model import Image


@dataclass
class Context:
    plan: Plan  # read, never changed
    log: Callable[[str], None]
    entries: dict[str, Entry] = field(default_factory=dict)  # the guest root: path -> entry
    category: dict[str, str] = field(default_factory=dict)  # guest path -> size-report bucket
    env: dict[str, str] = field(default_factory=dict)  # the program's, as the closure sets it
    modules: list[kmod.Module] = field(default_factory=list)
    init_extra: dict[str, Any] = field(default_factory=dict)  # more InitConfig fields
    watched: list[str] = field(default_factory=list)  # folders/files read besides the entries
    inputs: dict[str, list[int] | None] = field(default_factory=dict)  # their fingerprints

    def add(self, entry: Entry, category: str) -> None:
        self.entries[entry.path] = entry
        self.category[entry.path] = category

    @property
    def image(self) -> Image:
        return self.plan.image

    @property
    def roots(self) -> tuple[Path, ...]:
        return self.plan.roots

    def where(self) -> str | None:
        return self.plan.where()
