"""engitor: any Linux program as a minimal, immutable single-application micro-VM."""

from pathlib import Path

__version__ = "0.1.0"

# The Lua half of the API and the shipped headers live beside the package, at the top of the
# checkout (the project layout fixes them there).
ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "lua"
HEADERS_DIR = ROOT / "headers"
RECIPES_DIR = ROOT / "recipes"
