"""Kernel modules: find them by name and close over `depends=` from their .modinfo.

Debian's kernel .deb ships no modules.dep (depmod runs at install), so dependencies are read
from each module's own .modinfo section. The result is in load order: dependencies first.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError, did_you_mean


def canonical(name: str) -> str:
    return name.replace("-", "_")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path  # host path of the .ko
    rel: str  # path relative to lib/modules/<release>/
    depends: tuple[str, ...]


INDEX_FILE = "engitor-modules.json"


def index(modules_dir: Path) -> dict[str, Path]:
    """Module name -> .ko path, for every module of the kernel.

    Walking 4,000 files costs more than the rest of an unchanged rebuild, and an unpacked
    kernel never changes, so the walk is saved beside the modules the first time.
    """
    saved = modules_dir / INDEX_FILE
    try:
        rel = json.loads(saved.read_text())
        return {name: modules_dir / path for name, path in rel.items()}
    except (OSError, ValueError):
        pass
    out: dict[str, Path] = {}
    for ko in sorted((modules_dir / "kernel").rglob("*.ko")):
        out[canonical(ko.name[:-3])] = ko
    with contextlib.suppress(OSError):  # a read-only cache still works, only slower
        home.atomic_write(saved, json.dumps({n: str(p.relative_to(modules_dir))
                                             for n, p in out.items()}))
    return out


def modinfo(path: Path) -> dict[str, list[str]]:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".modinfo")
        raw = sec.data() if sec is not None else b""
    info: dict[str, list[str]] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


DEPENDS_FILE = "engitor-depends.json"


def _depends_cache(modules_dir: Path) -> dict[str, list[str]]:
    try:
        return json.loads((modules_dir / DEPENDS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def resolve(modules_dir: Path, wanted: list[str]) -> list[Module]:
    """The closure of `wanted` over depends=, in load order (dependencies first).

    Each module's depends= is remembered beside the modules once read (an unpacked kernel is
    immutable), so an unchanged rebuild parses no module.
    """
    known = index(modules_dir)
    cache = _depends_cache(modules_dir)
    learned = False
    order: list[Module] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str, asked_by: str | None) -> None:
        name = canonical(name)
        if name in done:
            return
        if name in visiting:
            return  # modinfo cycles do not exist in practice; loading order then is arbitrary
        path = known.get(name)
        if path is None:
            who = f" (needed by {asked_by})" if asked_by else ""
            raise UserError(f"kernel module {name} not found in {modules_dir.name}{who}",
                            hint=did_you_mean(name, known) or "it may be built into the kernel")
        visiting.add(name)
        nonlocal learned
        if name not in cache:
            cache[name] = [d for dep in modinfo(path).get("depends", [])
                           for d in dep.split(",") if d]
            learned = True
        deps = tuple(cache[name])
        for dep in deps:
            visit(dep, name)
        visiting.discard(name)
        done.add(name)
        order.append(Module(name, path, str(path.relative_to(modules_dir)), deps))

    for name in wanted:
        visit(name, None)
    if learned:
        with contextlib.suppress(OSError):
            home.atomic_write(modules_dir / DEPENDS_FILE, json.dumps(cache, sort_keys=True))
    return order


def builtin(modules_dir: Path) -> set[str]:
    """Modules compiled into the kernel (modules.builtin), which need no loading."""
    path = modules_dir / "modules.builtin"
    if not path.is_file():
        return set()
    return {canonical(Path(line.strip()).name[:-3]) for line in path.read_text().splitlines()
            if line.strip().endswith(".ko")}
