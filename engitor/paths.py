"""Paths from users and from archives, kept where they belong.

The symbolic link policy (SECURITY.md says why):

1. A path the recipe names (a `files` or `--file` entry, a `dirs` folder, each `map` match) that
   is written inside the recipe's folder must stay inside it once links are followed; a link
   that leads it out is refused, naming the path and where it leads. A path written outside the
   folder (absolute, or climbing with ..) is the author's own choice of host file and is taken
   as it is.
2. Inside a copied tree (a `dirs` folder; the folder a `map` pattern is rooted at, i.e. its part
   before the first wildcard) a link is copied as a link, its text unchanged, when it points
   inside the tree; one that points outside is refused with its path. Walking a tree never
   follows a link to a folder, and `**` in a `map` pattern never descends through one: a
   matched tree keeps its shape under the destination (no flattening).
3. A tree unpacked from an archive (a Debian package, a kernel .deb) may hold no link that
   leads out of the folder it was unpacked into: such an archive is refused.

And every name a user gives for something in engitor's home (an image, a kernel) is looked up
with `in_store`, which refuses anything that is not one plain name inside its folder.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

from engitor.errors import UserError

_WILDCARD = re.compile(r"[*?\[]")


def inside(path: Path | str, root: Path | str) -> bool:
    """Whether `path`, every link on the way followed, lies in `root` (links followed too)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip("/") + "/")


def _lexically_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def named_path(path: Path, base_dir: Path, what: str) -> None:
    """Rule 1: `path` (absolute, as the recipe's words lead) may not be carried out of
    `base_dir` by a link when it was written inside it."""
    lexical = os.path.normpath(path)
    if not _lexically_inside(lexical, os.path.normpath(base_dir)):
        return  # written outside the recipe's folder: the author named a host path
    if not os.path.lexists(lexical) or inside(lexical, base_dir):
        return
    raise UserError(f"{what}: {path} leads through a symbolic link to "
                    f"{os.path.realpath(lexical)}, outside {base_dir}",
                    hint="links are followed only within the recipe's folder; copy the file in, "
                         "or name its real path")


def tree_link(link: Path, tree: Path, what: str) -> None:
    """Rule 2: a link met inside a copied tree must point inside the tree."""
    if not inside(link, tree):
        raise UserError(f"{what}: {link} is a symbolic link to {os.readlink(link)}, outside "
                        f"{tree}", hint="links in a copied folder are copied as links and must "
                        "point inside it; copy the target in, or drop the link")


def pattern_base(pattern: str) -> str:
    """The folder a glob pattern is rooted at: its part before the first wildcard component
    (the parent of the last component when there is none)."""
    parts = pattern.split("/")
    for n, part in enumerate(parts):
        if _WILDCARD.search(part):
            return "/".join(parts[:n]) or "/"
    return "/".join(parts[:-1]) or "/"


def glob(pattern: str) -> list[Path]:
    """The paths an absolute `pattern` matches, sorted, like `glob.glob(recursive=True)` (a
    leading dot is matched only by a dot) except that no link to a folder is descended
    through, by `**` or otherwise."""
    base = pattern_base(pattern)
    rest = [p for p in pattern[len(base):].split("/") if p]
    if not rest:
        return [Path(pattern)] if os.path.lexists(pattern) else []
    return sorted(set(_match(Path(base), rest)))


def _match(folder: Path, parts: list[str]) -> Iterator[Path]:
    part, rest = parts[0], parts[1:]
    if part == "**":
        if rest:
            yield from _match(folder, rest)
            for sub in _subfolders(folder):
                yield from _match(sub, parts)
        else:
            yield folder
            yield from _everything(folder)
        return
    if not _WILDCARD.search(part):
        path = folder / part
        if os.path.lexists(path):
            yield from _match(path, rest) if rest else iter([path])
        return
    for entry in _entries(folder):
        if entry.name.startswith(".") and not part.startswith("."):
            continue
        if fnmatch.fnmatchcase(entry.name, part):
            path = Path(entry.path)
            if not rest:
                yield path
            elif entry.is_dir(follow_symlinks=False):
                yield from _match(path, rest)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []


def _everything(folder: Path) -> Iterator[Path]:
    for entry in _entries(folder):
        if entry.name.startswith("."):
            continue
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _everything(Path(entry.path))


def _subfolders(folder: Path) -> Iterator[Path]:
    for entry in _entries(folder):
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def escaping_links(root: Path) -> Iterator[Path]:
    """Links in the tree at `root` that lead out of it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() and not inside(path, root):
                yield path


def unpacked(root: Path, what: str) -> None:
    """Rule 3: refuse an unpacked archive holding a link that leads out of `root`."""
    for path in escaping_links(root):
        rel = "/" + str(path.relative_to(root))
        raise UserError(f"{what}: {rel} is a symbolic link to {os.readlink(path)}, which leads "
                        "out of the unpacked package", hint="the package is broken or hostile; "
                        "engitor never follows such a link to a host file")


def in_store(folder: Path, name: str, what: str,
             hint: str = "use a name or id as 'engitor images' lists it") -> Path:
    """The entry `name` of the store folder `folder`: one plain name (no '/', not '.' or '..'),
    inside the folder once resolved."""
    if (not name or "/" in name or "\0" in name or name in (".", "..")
            or not inside(folder / name, folder)):
        raise UserError(f"{what} {name!r} is not a name in engitor's store", hint=hint)
    return folder / name
