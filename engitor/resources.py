"""engitor's data files, found through the package wherever it is installed.

The checkout keeps them at the top (lua/, headers/, as the project layout fixes); the wheel
ships them inside the package as engitor/data/lua and engitor/data/headers, and in the
checkout engitor/data/ holds symbolic links to the top-level folders. Either way
`importlib.resources` finds them, so an installed engitor never looks beside itself for a
checkout. Only filesystem installs are supported (the Lua runtime and the C compiler need real
paths), which is what pip makes.
"""

from __future__ import annotations

import functools
from pathlib import Path

PACKAGE = "engitor"


@functools.cache
def path(*parts: str) -> Path:
    """The real path of a data file or folder: path("lua", "vm.lua")."""
    from importlib import resources  # on first use: a fast verb never pays for it

    found = resources.files(PACKAGE).joinpath("data", *parts)
    if not isinstance(found, Path):  # a zip import: nothing engitor runs can use it
        raise RuntimeError(f"engitor's data ({'/'.join(parts)}) is not on a filesystem")
    return found


def lua_dir() -> Path:
    return path("lua")


def headers_dir() -> Path:
    return path("headers")
