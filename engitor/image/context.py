"""The build's context: what the steps of image/pipeline.py fill in, one after another.

Apart from the pipeline so that step modules beside it (system.py) can name it without
importing the pipeline that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engitor import store
from engitor.image import elf, kernel, kmod
from engitor.image import init as guest_init
from engitor.image.cpio import Entry
from engitor.recipe.model import Image


@dataclass
class Context:
    image: Image
    log: Callable[[str], None]
    roots: list[Path] = field(default_factory=lambda: [Path("/")])
    kernel: kernel.Kernel | None = None
    program_guest: str = ""
    program_host: Path | None = None
    program_info: elf.ElfInfo | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    category: dict[str, str] = field(default_factory=dict)  # guest path -> size-report bucket
    modules: list[kmod.Module] = field(default_factory=list)
    init_config: guest_init.InitConfig | None = None
    cmdline: str = ""
    input_key: str = ""
    stored: store.StoredImage | None = None
    new: bool = False
    staging: Path | None = None
    watched: list[str] = field(default_factory=list)  # folders/files read besides the entries
    actions: Any = None  # what the image's Debian packages ask for (users, dirs: system.py)
    accounts: Any = None  # the image's users and groups (system.py)
    run_as: Any = None  # who runs the program (the user setting, resolved)
    init_extra: dict[str, Any] = field(default_factory=dict)  # more InitConfig fields
    inputs: dict[str, list[int] | None] = field(default_factory=dict)  # their fingerprints
    packages: list[dict[str, Any]] = field(default_factory=list)  # Debian packages, for the manifest

    def add(self, entry: Entry, category: str) -> None:
        self.entries[entry.path] = entry
        self.category[entry.path] = category

    def where(self) -> str | None:
        return self.image.where or None
