"""The import structure: stages in one order, imports only going down, no cycles.

Every `import` in every engitor module counts, those inside functions too (a lazy import is
still a dependency: it only moves the cost to first use). The order below is the project's
layout, written down once; README's layout section describes the same stages.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import engitor

PACKAGE = Path(engitor.__file__).parent

# Lowest first, one folder a stage. A module belongs to the stage of its longest matching
# prefix; a stage may import its own and lower stages only.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("engitor", "engitor.errors", "engitor.proc", "engitor.home", "engitor.resources",
              "engitor.protocol", "engitor.units", "engitor.luasyntax", "engitor.faults",
              "engitor.kernel_traits", "engitor.paths")),
    ("ffi", ("engitor.ffi",)),                  # headers -> cdef text, pycparser index
    ("lua", ("engitor.lua",)),                  # the sandboxed LuaJIT runtime, fs/log/sh/c
    ("recipe", ("engitor.recipe",)),            # settings table -> model; front ends; targets
    ("store", ("engitor.store", "engitor.reflog")),  # content-addressed images, names' logs
    # cpio is a plain archive format: Debian packages' trees are laid out as its entries too,
    # and vm/ seeds a new volume from an image's initramfs with it.
    ("archive", ("engitor.cpio",)),
    ("packages", ("engitor.packages",)),        # Debian packages as runtimes
    ("image", ("engitor.image",)),              # plan, closure, kernel, init, pipeline
    ("vm", ("engitor.vm",)),                    # QEMU argv, accel probe, instances
    ("catalog", ("engitor.catalog",)),          # what images hold: inspect, diff, prune, SBOM
    ("export", ("engitor.export",)),            # disks, UKI, OCI, engines' descriptions
    ("shell", ("engitor.shell",)),              # the REPL, and VMs as Lua values (vm_api)
    ("commands", ("engitor.commands", "engitor.cli", "engitor.__main__")),
)


@functools.cache
def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The engitor module an imported dotted name lives in (a name imported from a package
    may be a submodule or an attribute)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported engitor module, line) for every import statement, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        for name in names:
            owner = _owner(name, known) if name.startswith("engitor") else None
            if owner and owner != module:
                yield owner, node.lineno


def stage_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            inside = prefix != "engitor" and module.startswith(prefix + ".")  # the root: itself
            if (module == prefix or inside) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no stage: add it to STAGES"
    return rank


@functools.cache
def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {m: dict(imports(m, p, known)) for m, p in known.items()}


def test_every_module_has_a_stage():
    for module in modules():
        stage_of(module)


def test_imports_only_go_down():
    known = modules()
    upward = []
    for module, targets in graph().items():
        for target, line in targets.items():
            if stage_of(target) > stage_of(module):
                upward.append(f"{known[module].relative_to(PACKAGE.parent)}:{line}: {module} "
                              f"({STAGES[stage_of(module)][0]}) imports {target} "
                              f"({STAGES[stage_of(target)][0]})")
    assert not upward, "imports going up the stages:\n" + "\n".join(upward)


def _cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None (depth-first, three colours)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    # A package's __init__ is imported with any of its submodules; an edge into the package
    # itself is what counts, so packages are nodes like modules.
    found = _cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found or [])


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1}}) is None


def test_stage_of_takes_the_longest_prefix():
    assert STAGES[stage_of("engitor.shell.vm_api")][0] == "shell"
    assert STAGES[stage_of("engitor.lua.api.sh")][0] == "lua"
    assert STAGES[stage_of("engitor.errors")][0] == "base"


def test_settings_and_model_agree_on_every_default():
    # The table and the model state the non-trivial defaults through shared constants; this
    # keeps every setting, new ones included, in step with its model field.
    from dataclasses import MISSING, fields

    from engitor.recipe.model import Image
    from engitor.recipe.settings import SETTINGS

    model = {f.name: f for f in fields(Image)}
    for s in SETTINGS:
        f = model[s.name]
        default = f.default_factory() if f.default is MISSING and f.default_factory is not MISSING \
            else f.default
        assert default == s.default, (s.name, default, s.default)
