"""engitor: any Linux program as a minimal, immutable single-application micro-VM."""

from pathlib import Path

from engitor import resources

__version__ = "0.1.0"

# The Lua half of the API, the shipped headers and package recipes: found through the package
# (engitor/data/, links to the top-level folders in a checkout, copies in the wheel).
LUA_DIR = resources.lua_dir()
HEADERS_DIR = resources.headers_dir()
PACKAGES_DIR = resources.path("packages")
# The checkout, for tests and benches (an installed engitor never looks beside itself).
ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = ROOT / "recipes"
