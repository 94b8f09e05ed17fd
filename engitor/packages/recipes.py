"""Runtime package recipes: `packages/NAME.lua`, each declaring `package "NAME" { … }`.

    package "python3" {
      description = "Python 3 from Debian",
      debs = {"python3"},                    -- Debian packages; apt adds their dependencies
      program = "/usr/bin/python3",          -- a guest path inside them (a glob: one match)
      args = {}, env = {},                   -- default argv[1:] and environment
      suffixes = {".py"},                    -- script names `engitor load` checks exist
      drop = {"/usr/lib/python3.11/idlelib/**"},  -- more than the default drops
      keep = {},                             -- exceptions to every drop
      skip = {},                             -- Debian packages left out (with what only they need)
      memory = "256M",                       -- the least guest memory the runtime needs
    }

Recipes are found by name in `packages/` beside the image's recipe (or the working directory
for `engitor load`), then in the folders of $ENGITOR_PACKAGES (colon-separated), then in
engitor's own recipes/packages/. The fields are validated with the settings table's types, so
errors read like a recipe's: FILE:LINE, what is wrong, a hint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engitor import PACKAGES_DIR
from engitor.errors import UserError, did_you_mean
from engitor.packages import rules
from engitor.recipe.settings import SettingTypeError, Size, Str, StrList, StrMap, SType

SHIPPED_DIR = PACKAGES_DIR
NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]*")
# Debian policy 5.6.1: lower case letters, digits, + - . ; at least two characters.
DEB_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


@dataclass(frozen=True)
class PackageRecipe:
    name: str
    debs: tuple[str, ...]
    program: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    memory: int | None = None
    description: str = ""
    where: str = field(default="", compare=False)  # FILE:LINE of the declaration
    lines: Mapping[str, str] = field(default_factory=dict, compare=False)  # key -> FILE:LINE

    def at(self, key: str) -> str | None:
        """Where a field is written (for errors found later, by apt or in the tree)."""
        return self.lines.get(key) or self.where or None

    @property
    def rules(self) -> rules.Rules:
        return rules.Rules.make(keep=self.keep, drop=self.drop)

    def apt_key(self) -> dict[str, Any]:
        """What apt's answer depends on: a cached resolution is valid while this is equal."""
        return {"debs": list(self.debs), "skip": sorted(self.skip)}


def _guest_path(value: str) -> str | None:
    return None if value.startswith("/") else "expected a guest path starting with '/'"


def _deb_names(values: tuple[str, ...]) -> str | None:
    for v in values:
        if not DEB_NAME_RE.fullmatch(v):
            return f"{v!r} is not a Debian package name (lower case letters, digits, + - .)"
    return None


def _globs(values: tuple[str, ...]) -> str | None:
    for v in values:
        if not (v.startswith(("/", "**"))):
            return f"{v!r}: patterns are guest paths starting with '/' (or '**/')"
        try:
            rules.compile_glob(v)
        except ValueError as e:
            return f"{v!r}: {e}"
    return None


def _suffixes(values: tuple[str, ...]) -> str | None:
    bad = [v for v in values if not v.startswith(".") or "/" in v]
    return f"{bad[0]!r}: a suffix looks like '.py'" if bad else None


@dataclass(frozen=True)
class Field:
    name: str
    type: SType
    default: Any
    doc: str
    required: bool = False
    check: Any = None  # value -> problem text or None


F = Field
FIELDS: tuple[Field, ...] = (
    F("description", Str("text"), "", "One line for 'engitor pkg list'."),
    F("debs", StrList("list of Debian package names"), (),
      "The Debian packages of the runtime; apt adds their dependencies.", required=True,
      check=_deb_names),
    F("program", Str("a guest path"), None,
      "The runtime's executable, a path inside its packages; a glob must match one file.",
      required=True, check=_guest_path),
    F("args", StrList("list of strings"), (), "Default arguments, before the image's own."),
    F("env", StrMap("table of strings"), {}, "Default environment; the image's entries win."),
    F("keep", StrList("list of globs"), (),
      "Files kept even when a drop rule matches them ('**' crosses folders).", check=_globs),
    F("drop", StrList("list of globs"), (),
      "Files left out, besides the default drops (docs, man pages, locales, headers, static "
      "libraries, init-system files).", check=_globs),
    F("skip", StrList("list of Debian package names"), (),
      "Debian packages left out, with whatever only they need (besides the ones only an "
      "installed system needs).", check=_deb_names),
    F("suffixes", StrList("list of file suffixes"), (),
      "Script names: 'engitor load' checks that an argument ending so exists.",
      check=_suffixes),
    F("memory", Size("a size"), None, "The least guest memory the runtime needs: '512M'."),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def make_recipe(name: Any, table: Mapping[str, Any], *, where: str = "",
                locate: Any = None) -> PackageRecipe:
    """Validate one declaration's plain table into a `PackageRecipe`."""
    def at(key: str | None) -> str | None:
        return (locate(key) if locate and key else None) or where or None

    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(f"invalid package name {name!r}",
                        hint="use lower case letters, digits, '+', '.', '-'", where=where or None)
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec = FIELDS_BY_NAME.get(key) if isinstance(key, str) else None
        if spec is None:
            hint = did_you_mean(str(key), FIELDS_BY_NAME) or \
                "a package recipe has " + ", ".join(FIELDS_BY_NAME)
            raise UserError(f"unknown field {key!r} in package {name!r}", hint=hint, where=at(key))
        try:
            coerced = spec.type.coerce(value)
        except SettingTypeError as e:
            raise UserError(f"{key}: {e}", hint=spec.doc, where=at(key)) from None
        problem = spec.check(coerced) if spec.check else None
        if problem:
            raise UserError(f"{key}: {problem}", hint=spec.doc, where=at(key))
        values[key] = coerced
    for spec in FIELDS:
        if spec.required and not values.get(spec.name):
            example = {"program": 'program = "/usr/bin/python3"',
                       "debs": 'debs = {"python3"}'}[spec.name]
            raise UserError(f"package {name!r} has no {spec.name}",
                            hint=f"{spec.doc} Write {example}", where=where or None)
    lines = {key: at(key) or where for key in values}
    return PackageRecipe(name=name, where=where, lines=lines, **values)


# ---------------------------------------------------------------------------------------------
# Finding recipes


def candidate_dirs(base_dir: Path | None = None) -> list[Path]:
    """Where package recipes are looked for, in order, whether or not the folders exist."""
    dirs = [base_dir / "packages"] if base_dir else []
    dirs += [Path(d) for d in os.environ.get("ENGITOR_PACKAGES", "").split(":") if d]
    dirs.append(SHIPPED_DIR)
    return dirs


def search_path(base_dir: Path | None = None) -> list[Path]:
    out: list[Path] = []
    for d in candidate_dirs(base_dir):
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def names(base_dir: Path | None = None) -> dict[str, Path]:
    """Every package name on the search path -> its recipe file (the first one wins)."""
    found: dict[str, Path] = {}
    for d in search_path(base_dir):
        for path in sorted(d.glob("*.lua")):
            found.setdefault(path.stem, path)
    return found


def load_file(path: Path) -> PackageRecipe:
    from engitor.recipe import lua_front

    decls = lua_front.load_declarations(path, "package")
    if not decls:
        raise UserError(f"{path} declares no package",
                        hint=f'declare one: package "{path.stem}" {{ debs = {{…}}, program = "…" }}',
                        where=str(path))
    if len(decls) > 1 or decls[0].name != path.stem:
        names_ = ", ".join(repr(d.name) for d in decls)
        raise UserError(f"{path.name} declares {names_}; a package recipe declares the one "
                        f"package it is named after", hint=f'package "{path.stem}" {{ … }}',
                        where=decls[-1].where if len(decls) > 1 else decls[0].where)
    d = decls[0]
    return make_recipe(d.name, d.table, where=d.where, locate=d.locate)


def find(name: str, base_dir: Path | None = None) -> PackageRecipe:
    """The recipe of package `name`; an unknown name lists the close ones."""
    known = names(base_dir)
    path = known.get(name)
    if path is None:
        close = did_you_mean(name, known)
        hint = close or ("known: " + ", ".join(sorted(known)) if known else
                         "no package recipes found")
        raise UserError(f"unknown runtime package {name!r}",
                        hint=f"{hint}; 'engitor pkg list' shows them all")
    return load_file(path)


def all_recipes(base_dir: Path | None = None) -> list[PackageRecipe]:
    return [load_file(path) for _, path in sorted(names(base_dir).items())]
