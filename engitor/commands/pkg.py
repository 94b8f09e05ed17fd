"""engitor pkg list|show|get: the runtime packages (recipes/packages/*.lua) and their cache."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engitor import packages
from engitor.commands import common
from engitor.packages import apt, cache, recipes
from engitor.units import mib


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pkg", help="runtime packages from Debian: list, show, get",
                       description="Runtime packages are Debian packages named by a recipe in "
                                   "packages/NAME.lua; 'engitor load NAME' runs one.")
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = ps.add_parser("list", help="the runtime packages known, and which are cached")
    ls.set_defaults(func=listing)
    show = ps.add_parser("show", help="versions, Debian packages and sizes of a runtime")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=showing)
    get = ps.add_parser("get", help="resolve, download and unpack now (for offline builds)")
    get.add_argument("names", metavar="NAME", nargs="*")
    get.add_argument("--all", action="store_true", help="every runtime package")
    get.set_defaults(func=getting)


def _mib(n: int) -> str:
    return mib(n)


def listing(args: argparse.Namespace) -> int:
    rows = []
    for recipe in recipes.all_recipes(Path.cwd()):
        st = packages.status(recipe)
        if st["units"]:
            main = packages.units_of_interest(recipe, st["units"])
            version = ", ".join(f"{u.deb.package} {u.deb.version}" for u in main)
            state = "cached" + (" (recipe changed)" if st["stale"] else "")
        else:
            version, state = "-", "not fetched"
        rows.append((recipe.name, version, state, recipe.description))
    width = max((len(r[0]) for r in rows), default=4)
    vwidth = max((len(r[1]) for r in rows), default=7)
    for name, version, state, doc in rows:
        print(f"{name:<{width}}  {version:<{vwidth}}  {state:<11}  {doc}")
    return 0


def describe(recipe: recipes.PackageRecipe) -> dict[str, Any]:
    """Everything `pkg show` says, as data (resolving with apt, without downloading, when the
    runtime was never fetched)."""
    st = packages.status(recipe)
    out: dict[str, Any] = {
        "name": recipe.name, "description": recipe.description, "recipe": recipe.where,
        "program": recipe.program, "args": list(recipe.args), "env": dict(recipe.env),
        "debs": list(recipe.debs), "keep": list(recipe.keep), "drop": list(recipe.drop),
        "skip": list(recipe.skip), "memory": recipe.memory, "cached": False,
    }
    resolution = st["resolution"]
    units = st["units"]
    if units is None or st["stale"]:
        debs, skipped = apt.resolve(recipe.debs, recipe.skip, what=f"package {recipe.name}")
        out["packages"] = [{"package": d.package, "version": d.version, "origin": d.origin,
                            "cached": cache.load_unpacked(d) is not None} for d in debs]
        out["skipped"] = [f"{d.package} {d.version}" for d in skipped]
        out["version"] = [f"{d.package} {d.version}" for d in debs if d.package in recipe.debs]
        return out
    out["cached"] = True
    out["resolved"] = resolution["resolved"]
    out["version"] = [str(u.deb) for u in packages.units_of_interest(recipe, units)]
    out["packages"] = [{"package": u.deb.package, "version": u.deb.version,
                        "origin": u.deb.origin, "source": u.source,
                        "installed_size": u.installed_size} for u in units]
    out["skipped"] = [f"{d['package']} {d['version']}" for d in resolution["skipped"]]
    installed = sum(u.installed_size for u in units)
    out["installed_size"] = installed
    root = st["root"]
    if root is not None:
        out["kept_size"] = root.bytes
        out["dropped_size"] = root.dropped_bytes
        out["files"] = root.files
    return out


def showing(args: argparse.Namespace) -> int:
    recipe = recipes.find(args.name, Path.cwd())
    info = describe(recipe)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        print()
        return 0
    print(f"{info['name']}: {info['description']}")
    rows = [("recipe", info["recipe"]), ("version", ", ".join(info["version"]) or "-"),
            ("program", info["program"]), ("args", " ".join(info["args"]) or "-"),
            ("env", " ".join(f"{k}={v}" for k, v in info["env"].items()) or "-"),
            ("debs", " ".join(info["debs"]))]
    if info.get("resolved"):
        rows.append(("resolved", info["resolved"]))
    if "installed_size" in info:
        size = f"Debian's Installed-Size {_mib(info['installed_size'])}"
        if "kept_size" in info:
            ratio = info["kept_size"] / info["installed_size"] if info["installed_size"] else 0
            size += (f"; in an image {_mib(info['kept_size'])} ({ratio:.0%}), "
                     f"{_mib(info['dropped_size'])} dropped")
        rows.append(("size", size))
    for key, value in rows:
        print(f"  {key:<9} {value}")
    print(f"  packages  {len(info['packages'])}" +
          (f" (left out, only an installed system needs them: {', '.join(info['skipped'])})"
           if info["skipped"] else ""))
    for p in info["packages"]:
        extra = f"{p['installed_size'] // 1024:>7} KiB" if "installed_size" in p else ""
        source = " (this host's installed files)" if p.get("source") == "host" else ""
        print(f"    {p['package']:<28} {p['version']:<28} {extra}  {p['origin']}{source}")
    if not info["cached"]:
        print(f"  not fetched: 'engitor pkg get {info['name']}' downloads "
              f"{sum(not p['cached'] for p in info['packages'])} Debian packages")
    return 0


def getting(args: argparse.Namespace) -> int:
    names = sorted(recipes.names(Path.cwd())) if args.all else args.names
    if not names:
        common.say("name runtime packages to fetch, or --all")
        return 2
    for name in names:
        recipe = recipes.find(name, Path.cwd())
        units, skipped = packages.fetch(recipe, log=common.say, host_fallback=False)
        root = cache.merge(units, recipe.rules)
        installed = sum(u.installed_size for u in units)
        main = ", ".join(str(u.deb) for u in packages.units_of_interest(recipe, units))
        print(f"{recipe.name}: {main}; {len(units)} Debian packages, installed "
              f"{_mib(installed)}, in an image {_mib(root.bytes)}")
    return 0
