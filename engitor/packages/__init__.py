"""Runtime packages from Debian: a recipe names Debian packages, apt resolves and downloads
them, engitor unpacks (never installs) them and hands the builder a root to take the program,
its libraries and the runtime's files from.

    tree = prepare(image, log=print)   # image.package = "python3"
    tree.root    # the merged, filtered package tree (ELF closures search it before the host)
    tree.image   # the image with the package's program, args and env merged under its own
    tree.files   # guest path -> host path of every package file that goes into the image

    fetch(recipe, log=print)           # `engitor pkg get`: resolve anew, download, unpack
    status(recipe)                     # `engitor pkg show`: versions, packages, sizes

Warm builds read the last resolution (cache.read_resolution) and touch no apt at all, so they
work offline; a recipe whose Debian packages changed is resolved again. When the archive cannot
be reached, packages installed on this host stand in (said in one line); with neither, the
error says how to prefetch.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from engitor.errors import UserError
from engitor.packages import apt, cache
from engitor.packages.recipes import PackageRecipe, find
from engitor.recipe.model import Image
from engitor.units import MiB, mib

Log = Callable[[str], None]


@dataclass(frozen=True)
class Tree:
    recipe: PackageRecipe
    root: Path
    image: Image
    files: dict[str, Path]
    units: tuple[cache.Unpacked, ...]
    info: cache.Root
    from_cache: bool


def prepare(image: Image, *, log: Log = lambda _: None,
            recipe: PackageRecipe | None = None) -> Tree:
    """What the builder's resolve_package step calls for an image with `package` set (or,
    with `recipe`, for an image's Debian packages: see `debian`)."""
    if recipe is None:
        assert image.package
        recipe = find(image.package, image.base_dir)
    units, from_cache = _units(recipe, log)
    info = cache.merge(units, recipe.rules)
    check_memory(recipe, image, info)
    program = _program(recipe, image, info.path)
    merged = _merge_image(recipe, image, program)
    files = cache.files(info.path)
    main = units_of_interest(recipe, units)
    log(f"package {recipe.name}: {', '.join(str(u.deb) for u in main)} "
        f"({len(units)} Debian packages, {mib(info.bytes)} kept"
        f"{', cached' if from_cache else ''})")
    return Tree(recipe, info.path, merged, files, tuple(units), info, from_cache)


def units_of_interest(recipe: PackageRecipe, units: list[cache.Unpacked]) -> list[cache.Unpacked]:
    """The first package the recipe names (the runtime's version; later ones are additions
    such as ca-certificates), not their dependencies."""
    named = [u for u in units if u.deb.package == recipe.debs[0]]
    return named or units[-1:]


def cached_units(recipe: PackageRecipe, log: Log = lambda _: None
                 ) -> tuple[list[cache.Unpacked], bool]:
    """A recipe's unpacked packages: the cached resolution's, else resolved and fetched now."""
    return _units(recipe, log)


def _units(recipe: PackageRecipe, log: Log) -> tuple[list[cache.Unpacked], bool]:
    resolution = cache.read_resolution(recipe.name)
    if resolution and resolution["apt_key"] == recipe.apt_key():
        units = cache.units_of(resolution)
        if units is not None:
            _say_host(recipe, units, log)
            return units, True
    units, _ = fetch(recipe, log=log)
    return units, False


def _say_host(recipe: PackageRecipe, units: list[cache.Unpacked], log: Log) -> None:
    host = [u for u in units if u.source == "host"]
    if host:
        log(f"package {recipe.name}: {len(host)} of {len(units)} Debian packages are this "
            f"host's installed files (the archive was unreachable); "
            f"'engitor pkg get {recipe.name}' fetches them from Debian")


def fetch(recipe: PackageRecipe, *, log: Log = lambda _: None,
          host_fallback: bool = True) -> tuple[list[cache.Unpacked], list[apt.Deb]]:
    """Resolve with apt now, download what is missing, unpack; record the resolution.
    Returns the unpacked packages and those left out as only an installed system's."""
    what = f"package {recipe.name}"
    try:
        debs, skipped = apt.resolve(recipe.debs, recipe.skip, what=what)
    except apt.NoIndexes as e:
        cached = " (the cached one is for other Debian packages)" \
            if cache.read_resolution(recipe.name) else ""
        raise UserError(f"{e.message}, and no resolution of {recipe.name} is cached{cached}",
                        hint=_prefetch_hint(recipe)) from None
    except UserError as e:
        where = recipe.at("debs")
        if where:
            e.located(where)
        raise
    units: list[cache.Unpacked] = []
    todo = [d for d in debs if cache.load_unpacked(d) is None]
    if todo:
        log(f"{what}: downloading {len(todo)} of {len(debs)} Debian packages")
    paths: dict[apt.Deb, Path] | None = None
    problem: apt.DownloadError | None = None
    try:
        paths = apt.download(todo)
    except apt.DownloadError as e:
        if not host_fallback:
            raise UserError(f"{what}: {e.message}", hint=_prefetch_hint(recipe)) from None
        problem = e
    fresh = unpack_all(paths) if paths else {}
    for d in debs:
        unit = fresh.get(d) or cache.load_unpacked(d)
        if unit is None:
            unit = cache.from_host(d)
        if unit is None:
            assert problem is not None
            raise UserError(f"{what}: {problem.message}, and {d.package} is not installed on "
                            "this host either", hint=_prefetch_hint(recipe))
        units.append(unit)
    cache.write_resolution(recipe.name, recipe.apt_key(), units, skipped)
    if problem is not None:
        log(f"{what}: the archive is unreachable ({problem.apt_message[:120]}); "
            f"took {sum(u.source == 'host' for u in units)} of {len(units)} Debian packages "
            "from this host's installed files")
    return units, skipped


def unpack_all(paths: dict[apt.Deb, Path]) -> dict[apt.Deb, cache.Unpacked]:
    """Unpack downloaded packages into the cache, one dpkg-deb per core at a time."""
    debs = sorted(paths)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {d: pool.submit(cache.unpack, d, paths[d]) for d in debs}
        try:
            return {d: futures[d].result() for d in debs}
        except BaseException:
            # The first failure (a full disk, say) ends the rest: the others would fail alike.
            for future in futures.values():
                future.cancel()
            raise


def _prefetch_hint(recipe: PackageRecipe) -> str:
    return (f"when the archive can be reached, prefetch it with 'engitor pkg get "
            f"{recipe.name}'; builds then work offline from the cache")


def _program(recipe: PackageRecipe, image: Image, root: Path) -> str:
    """The program's guest path: the image's own, or the recipe's (a glob must match one)."""
    wanted = image.program or recipe.program
    if not any(c in wanted for c in "*?["):
        path = root / wanted.lstrip("/")
        if not (path.exists() or path.is_symlink()) and image.program is None:
            raise UserError(f"package {recipe.name}: its program {wanted} is not in its "
                            "Debian packages", hint="fix program in the package recipe",
                            where=recipe.at("program"))
        return wanted
    matches = sorted(glob.glob(glob.escape(str(root)) + "/" + wanted.lstrip("/")))
    real = {os.path.realpath(m) for m in matches}
    if len(real) == 1:  # one file under several names (a versioned folder and its alias)
        matches = [next((m for m in matches if m in real), min(matches, key=len))]
    if len(matches) != 1:
        found = "nothing" if not matches else f"{len(matches)} files"
        raise UserError(f"package {recipe.name}: program {wanted} matches {found}",
                        hint="a program glob must match exactly one file",
                        where=recipe.at("program"))
    return "/" + os.path.relpath(matches[0], root)


def _merge_image(recipe: PackageRecipe, image: Image, program: str) -> Image:
    """The package's program, args and env under the image's; files named in the image's args
    copied in (like ops' `pkg load`)."""
    own_program = image.program is not None
    args = image.args if own_program else (*recipe.args, *image.args)
    # Only a runtime's arguments name scripts to copy in; a daemon's name its own files.
    files, dirs = script_files(recipe, image) if image.package else ([], [])
    return image.with_settings(
        program=program, args=tuple(args), env={**recipe.env, **image.env},
        files=tuple(dict.fromkeys((*image.files, *files))),
        dirs=tuple(dict.fromkeys((*image.dirs, *dirs))))




def min_memory(recipe: PackageRecipe, info: cache.Root) -> int:
    """The least guest memory for a runtime: what its recipe asks, and enough that its files
    fit the guest's root file system, a tmpfs of half the memory (each file rounded to pages),
    with room left for the kernel and the program."""
    files = 2 * (info.bytes + info.files * 4096) + 64 * MiB
    need = -(-files // (32 * MiB)) * 32 * MiB
    return max(need, recipe.memory or 0)


def check_memory(recipe: PackageRecipe, image: Image, info: cache.Root) -> None:
    """A guest too small for the runtime fails late and obscurely (the initramfs does not fit,
    or the runtime cannot start): say so before building."""
    need = min_memory(recipe, info)
    if image.memory < need:
        raise UserError(f"package {recipe.name} needs at least {need // MiB}M of guest memory; "
                        f"image {image.name!r} has {image.memory // MiB}M",
                        hint=f"set memory = '{need // MiB}M' (or -m {need // MiB}M): the guest "
                             "keeps the image's files in memory")


def script_files(recipe: PackageRecipe, image: Image) -> tuple[list[str], list[str]]:
    """Arguments naming files (or folders below the recipe's) that exist, as the image's files
    and dirs; an argument with one of the runtime's script suffixes must exist."""
    files: list[str] = []
    dirs: list[str] = []
    for arg in image.args:
        if not arg or arg.startswith("-") or "\0" in arg:
            continue
        p = PurePosixPath(arg)
        host = Path(arg) if p.is_absolute() else image.base_dir / arg
        if host.is_file():
            files.append(arg)
        elif host.is_dir() and not p.is_absolute() and ".." not in p.parts and str(p) != ".":
            dirs.append(arg)
        elif arg.endswith(recipe.suffixes) and recipe.suffixes and not host.exists():
            raise UserError(f"script {arg}: no such file",
                            hint=f"paths are relative to {image.base_dir}")
    return files, dirs


def status(recipe: PackageRecipe) -> dict[str, Any]:
    """What `engitor pkg show` tells: the last resolution, sizes, what is cached."""
    resolution = cache.read_resolution(recipe.name)
    out: dict[str, Any] = {"recipe": recipe, "resolution": resolution, "units": None,
                           "root": None, "stale": False}
    if resolution is None:
        return out
    out["stale"] = resolution["apt_key"] != recipe.apt_key()
    units = cache.units_of(resolution)
    out["units"] = units
    if units is not None:
        out["root"] = cache.load_root(cache.root_key(units, recipe.rules))
    return out
