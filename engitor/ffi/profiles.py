"""Header profiles: what the C bridge knows about the libraries it ships support for.

A profile (headers/profiles/NAME.toml, one small file a library) says what a user would
otherwise have to know: which library exports the functions (lib), which headers must come
along (also: libvirt's error API is not in libvirt.h), and which preprocessor flags make the
headers readable to LuaJIT (define, cflags). It applies whenever a user includes one of its
headers (`headers`, or a glob of `match`), and its name stands for its headers:

    c.include("libvirt/libvirt.h")   -- = c.include({"libvirt/libvirt.h",
                                     --     "libvirt/virterror.h"}, {lib = "virt"})
    c.include("zlib")                -- = c.include("zlib.h", {lib = "z"})

Options a user gives add their flags to the profile's; a `lib` given replaces the profile's.
`package` names the Debian package with the headers; `check` is a call every profile's test
makes through the FFI (tests/test_header_profiles.py), so each file is proven on this Debian.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from engitor import HEADERS_DIR
from engitor.errors import UserError

FIELDS = {"headers", "match", "also", "lib", "define", "cflags", "package", "check"}


@dataclass(frozen=True)
class Profile:
    name: str
    headers: tuple[str, ...]          # what the profile's name stands for; each selects it
    match: tuple[str, ...] = ()       # more headers (globs) that select it
    also: tuple[str, ...] = ()        # headers that must come along when it is selected
    lib: tuple[str, ...] = ()
    define: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    package: str = ""
    check: str = ""

    def selects(self, header: str) -> bool:
        return header in self.headers or any(fnmatchcase(header, g) for g in self.match)


@dataclass(frozen=True)
class Resolved:
    """A request after its profiles: what to preprocess and which libraries to load."""
    headers: tuple[str, ...]
    define: tuple[str, ...]
    cflags: tuple[str, ...]
    lib: tuple[str, ...]
    profiles: tuple[Profile, ...]


def _strings(path: Path, fields: dict[str, object], key: str) -> tuple[str, ...]:
    value = fields.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path}: '{key}' must be a list of strings")
    return tuple(value)


def load(path: Path) -> Profile:
    """One profile file; a mistake in it is ours (the files ship with engitor)."""
    fields = tomllib.loads(path.read_text())
    unknown = set(fields) - FIELDS
    if unknown or not fields.get("headers"):
        raise ValueError(f"{path}: unknown fields {sorted(unknown)} or no headers")
    lists = {k: _strings(path, fields, k) for k in FIELDS - {"package", "check"}}
    return Profile(name=path.stem, package=str(fields.get("package", "")),
                   check=str(fields.get("check", "")), **lists)


@functools.cache
def profiles(folder: Path = HEADERS_DIR / "profiles") -> dict[str, Profile]:
    return {p.stem: load(p) for p in sorted(folder.glob("*.toml"))}


def get(name: str) -> Profile | None:
    """The profile called `name`, or None."""
    return profiles().get(name)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def resolve(headers: Iterable[str], define: Iterable[str] = (),
            cflags: Iterable[str] = ()) -> Resolved:
    """Apply the profiles a request's headers select. A bare name ("zlib": no '.' nor '/', so
    never a header file's) stands for its profile's headers."""
    named: list[str] = []
    for h in headers:
        p = get(h) if "." not in h and "/" not in h else None
        named += p.headers if p else [h]
    chosen = [p for p in profiles().values() if any(p.selects(h) for h in named)]
    return Resolved(
        headers=_unique(named + [a for p in chosen for a in p.also]),
        define=_unique([d for p in chosen for d in p.define] + list(define)),
        cflags=_unique([f for p in chosen for f in p.cflags] + list(cflags)),
        lib=_unique(x for p in chosen for x in p.lib),
        profiles=tuple(chosen))


def _names(p: Profile, resolved: Resolved, error: UserError) -> bool:
    """Whether the error names one of the headers this profile brought or selected."""
    return any(f"'{h}'" in error.message for h in p.headers + p.also) or any(
        f"'{h}'" in error.message and p.selects(h) for h in resolved.headers)


def missing(resolved: Resolved, error: UserError) -> UserError:
    """A header-not-found error with the Debian package that ships it, when a profile knows."""
    if "not found" not in error.message:
        return error
    packages = _unique(p.package for p in resolved.profiles if p.package and _names(p, resolved, error))
    if not packages:
        return error
    return UserError(error.message, where=error.where,
                     hint=f"apt-get install {' '.join(packages)}")
