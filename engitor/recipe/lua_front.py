"""The Lua front end: a recipe's description scope, lowered to the one recipe model.

    recipe = load_recipe(Path("recipes/web.lua"))          # -> model.Recipe
    recipe = load_recipe(Path("web.yaml"), source=lua_text, chunkname="web.yaml")

Each `image` call becomes a `model.Image` through `settings.make_image`, with errors located at
the line of the offending key. Functions in a recipe become `model.Hook`s bound to the runtime
that evaluated it; calling one runs it in the script scope (the recipe's own environment with
fs, log, sh and c added; see `Runtime.run_hook`) and returns plain data.

What the builder calls, in this order, for an image with hooks:
    image = settings.expand_generators(image, {"name": image.name, "staging": str(root)})
    image.hooks["before_build"].call({"name": image.name, "staging": str(root)})
        -- files the hook writes under root belong to the image's root
    image.hooks["after_build"].call({"name": image.name, "id": stored.id})
Each raises `UserError` located in the recipe when the hook fails.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.lua import source as lua_source
from engitor.lua.isolate import Described, describe
from engitor.lua.runtime import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, Declaration
from engitor.recipe import settings
from engitor.recipe.model import Hook, Image, Recipe

_ORDER = {s.name: n for n, s in enumerate(settings.SETTINGS)}


def load_recipe(path: Path, *, source: str | None = None, chunkname: str | None = None,
                time_limit: float | None = DEFAULT_TIME_LIMIT,
                memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> Recipe:
    """Evaluate a Lua recipe (the file at `path`, or `source` given for it) and validate every
    image it declares. Raises `UserError` located at `FILE:LINE`, FILE being `chunkname` when
    given, else `path` as given."""
    path = Path(path)
    display = chunkname or str(path)
    if source is None:
        source = _read(path, display)
    rt = describe(path, source, display, time_limit=time_limit, memory_limit=memory_limit)
    decls = rt.declarations
    if not decls:
        raise UserError("the recipe declares no images",
                        hint='declare one: image "web" { program = "./server" }', where=display)
    images: list[Image] = []
    seen: dict[str, Declaration] = {}
    for decl in decls:
        if isinstance(decl.name, str) and decl.name in seen:
            raise UserError(f"image {decl.name!r} is declared twice",
                            hint=f"first declared at {seen[decl.name].where}; names must be "
                                 "unique (add a suffix in loops)", where=decl.where)
        images.append(_image(rt, decl, path.parent))
        seen[decl.name] = decl
    return Recipe(source=str(path), images=tuple(images))


def load_declarations(path: Path, kind: str, *, time_limit: float | None = DEFAULT_TIME_LIMIT,
                      memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> list[Declared]:
    """Evaluate a Lua file and return its `kind` declarations ("package" for runtime package
    recipes) as plain data with their locations; the caller validates them against its own
    table. Functions are refused: such a file is pure description."""
    path = Path(path)
    display = str(path)
    source = _read(path, display)
    rt = describe(path, source, display, time_limit=time_limit, memory_limit=memory_limit,
                  packages=kind == "package")
    out: list[Declared] = []
    for decl in rt.declarations:
        if decl.kind != kind:
            raise UserError(f"{decl.kind} {decl.name!r} is declared in a file of {kind}s",
                            hint=f"this file declares {kind}s only: {kind} \"NAME\" {{ … }}",
                            where=decl.where)
        locate = functools.partial(_locate, rt, decl)
        table = decl.settings if isinstance(decl.settings, dict) else \
            _plain(rt, decl.settings, "settings", decl, locate)
        plain = {}
        for key, value in table.items():
            value = _plain(rt, value, key, decl, locate)
            if isinstance(value, Hook):
                raise UserError(f"{key}: a {kind} recipe holds values, not functions",
                                hint="write the value itself", where=locate(key) or decl.where)
            plain[key] = value
        out.append(Declared(decl.name, plain, decl.where, locate))
    return out


@dataclass(frozen=True)
class Declared:
    """One declaration as plain data: `locate(key)` gives the FILE:LINE of a key, or None."""

    name: Any
    table: dict[str, Any]
    where: str
    locate: Callable[[str], str | None]


def _read(path: Path, display: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{display}: no such recipe", hint="check the path") from None
    except IsADirectoryError:
        raise UserError(f"{display} is a folder, not a recipe",
                        hint="name the .lua file inside it") from None
    except OSError as e:
        raise UserError(f"{display}: cannot read it: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError("the recipe is not valid UTF-8 text", hint="save it as UTF-8",
                        where=f"{display}:{line}") from None


def _image(rt: Described, decl: Declaration, base_dir: Path) -> Image:
    locate = functools.partial(_locate, rt, decl)
    settings_ = decl.settings if isinstance(decl.settings, dict) else \
        _plain(rt, decl.settings, "settings", decl, locate)
    table = {}
    for key, value in settings_.items():
        table[key] = _plain(rt, value, key, decl, locate)
    # Unknown keys first (likely typos), then in the settings table's order.
    ordered = dict(sorted(table.items(), key=lambda kv: (_ORDER.get(kv[0], -1), str(kv[0]))))
    return settings.make_image(decl.name, ordered, where=decl.where, base_dir=base_dir,
                               locate=locate)


def _plain(rt: Described, value: Any, key: str, decl: Declaration, locate: Any) -> Any:
    """A declaration's exported value -> the plain data settings expect; functions -> Hooks."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UserError(f"{key}: the string is not valid UTF-8",
                                hint="settings are text: write bytes as UTF-8 (or \\u{…} "
                                     "escapes of characters)",
                                where=locate(key.split(".")[0]) or decl.where) from None
        return value
    if isinstance(value, list):
        if value and value[0] is None:  # a marker (see Declaration)
            if value[1] == "fn":
                return _hook(rt, value[2], key, decl)
            if value[1] == "key":
                return _LuaKey(value[2])
            return {_plain(rt, k, key, decl, locate): _plain(rt, v, f"{key}.{k}", decl, locate)
                    for k, v in value[2]}
        return [_plain(rt, v, f"{key}.{n}", decl, locate) for n, v in enumerate(value, 1)]
    if isinstance(value, dict):
        return {k: _plain(rt, v, f"{key}.{k}", decl, locate) for k, v in value.items()}
    return value


class _LuaKey:
    """A table key that was a Lua table or function: never a valid setting name."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"a {self.kind}"


def _hook(rt: Described, number: int, key: str, decl: Declaration) -> Hook:
    where = rt.function_where[number - 1] or decl.where
    call = functools.partial(_run_hook, rt, number, f"{key} of image {decl.name!r}",
                             str(decl.name))
    return Hook(name=key, where=where, call=call)


def _run_hook(rt: Described, number: int, what: str, label: str, ctx: Any = None) -> Any:
    try:
        return rt.call(number, dict(ctx or {}), label)
    except UserError as e:
        e.message = f"{what}: {e.message}"
        raise


def _locate(rt: Described, decl: Declaration, key: str) -> str | None:
    """The line where `key` of this image is written: in the image's own table, or where the
    key is written once in the recipe or its modules (a table shared between images)."""
    text = rt.sources.get(decl.chunk)
    if text is not None:
        keys = lua_source.table_keys(text, decl.line)
        if key in keys:
            return f"{decl.chunk}:{keys[key]}"
    found = [(chunk, line) for chunk, src in rt.sources.items()
             for line in lua_source.key_assignments(src, key)]
    if len(found) == 1:
        return f"{found[0][0]}:{found[0][1]}"
    return None
