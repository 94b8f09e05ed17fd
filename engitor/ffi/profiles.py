"""Header profiles: `c.include("zlib")` for the libraries the C bridge knows.

A profile (headers/profiles.toml, shipped with engitor) names the headers to read, the
preprocessor flags they need and the libraries that export their functions, so a script says
which library it wants instead of how to build against it. Each profile is proven on this
project's Debian by tests/test_header_profiles.py.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from engitor import resources
from engitor.errors import UserError

FILE = "profiles.toml"
FIELDS = {"headers", "define", "cflags", "lib", "package", "check"}


@dataclass(frozen=True)
class Profile:
    name: str
    headers: tuple[str, ...]
    lib: tuple[str, ...] = ()
    define: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    package: str = ""   # the Debian package with the headers, for the hint when they are missing
    check: str = ""     # a function the profile's test calls

    def plain(self) -> dict[str, list[str] | str]:
        """As plain data for Lua: c.include's own option names."""
        return {"headers": list(self.headers), "lib": list(self.lib), "define": list(self.define),
                "cflags": list(self.cflags), "package": self.package}


@functools.cache
def profiles() -> dict[str, Profile]:
    path = resources.headers_dir() / FILE
    data = tomllib.loads(path.read_text())
    out = {}
    for name, fields in data.items():
        unknown = set(fields) - FIELDS
        if unknown or "headers" not in fields:
            raise ValueError(f"{path}: profile {name}: unknown {sorted(unknown)} or no headers")
        out[name] = Profile(name, tuple(fields["headers"]), tuple(fields.get("lib", ())),
                            tuple(fields.get("define", ())), tuple(fields.get("cflags", ())),
                            fields.get("package", ""), fields.get("check", ""))
    return out


def get(name: str) -> Profile | None:
    """The profile called `name`, or None (then `name` is a header file's name)."""
    return profiles().get(name)


def missing_hint(profile: Profile) -> UserError:
    return UserError(f"the headers of {profile.name} ({', '.join(profile.headers)}) are not "
                     "installed", hint=f"apt-get install {profile.package}")
