"""engitor: any Linux program as a minimal, immutable single-application micro-VM."""

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

# The checkout, for tests and benches (an installed engitor never looks beside itself).
ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = ROOT / "recipes"

# The Lua half of the API, the shipped headers and package recipes: found through the package
# (engitor/data/, links to the top-level folders in a checkout, copies in the wheel), when
# first asked for: importlib.resources is not every command's cost (`engitor ps`, `--help`).
_DATA = {"LUA_DIR": "lua", "HEADERS_DIR": "headers", "PACKAGES_DIR": "packages"}


def __getattr__(name: str) -> Any:
    if name in _DATA:
        from engitor import resources

        return resources.path(_DATA[name])
    raise AttributeError(f"module 'engitor' has no attribute {name!r}")
