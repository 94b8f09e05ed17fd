"""The build plan: every declaration of an image resolved, once, before any file is laid out.

    resolve(image, staging, log) -> Plan

In order: the before_build hook (it may make the program), the generators (`files = function`),
the image's source of files (its Debian packages, its runtime package, or the host), its users
and who runs the program, the program itself, the files, dirs and map it copies, and last the
kernel (it may download: only once the user's own inputs are known good). What comes out is
frozen: the layout steps in pipeline.py read it and never change it, so each step can be read
(and tested) against a plan alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engitor import cpio, paths
from engitor.cpio import Entry
from engitor.errors import UserError
from engitor.image import elf, kernel
from engitor.recipe import settings
from engitor.recipe.model import Image

if TYPE_CHECKING:
    from engitor.packages.maintscripts import Actions
    from engitor.packages.users import Accounts, RunAs

# cryptomgr.notests: the kernel would otherwise re-run its crypto self-tests (test vectors for
# every algorithm it registers) on each boot; under TCG that is a fifth of the boot
# (measured: program start 1.18 s -> 0.94 s median, BENCHMARKS.md).
BASE_CMDLINE = ("console=ttyS0", "panic=-1", "quiet", "cryptomgr.notests")


@dataclass(frozen=True)
class Program:
    guest: str  # where it lives in the image
    host: Path  # the file it is copied from
    info: elf.ElfInfo  # read once: the closure starts here


@dataclass(frozen=True)
class Copy:
    """A host file, or a folder (a tree walked at layout time), the image takes at `guest`."""
    host: Path
    guest: str
    tree: Path | None  # None: one file, with its mode; else the copied tree's root (links stay in it)
    what: str  # how the recipe named it, for errors


@dataclass(frozen=True)
class Source:
    """Where the image's files come from besides the host: its packages' tree, if any."""
    image: Image  # the package's program, args and env merged under the image's
    roots: tuple[Path, ...]  # where the program and its libraries are looked for
    entries: tuple[tuple[Entry, str], ...] = ()  # the packages' files, with their size category
    packages: tuple[dict[str, Any], ...] = ()  # for the manifest
    actions: Actions | None = None  # what Debian's packages ask for (users, dirs)
    watched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    image: Image  # generators expanded, a package's settings merged in
    staging: Path  # what before_build wrote there joins the image
    source: Source
    accounts: Accounts  # the image's users and groups
    run_as: RunAs | None  # who runs the program (the user setting, resolved)
    program: Program
    copies: tuple[Copy, ...]
    kernel: kernel.Kernel
    watched: tuple[str, ...]  # what resolving read besides the files the image takes

    @property
    def roots(self) -> tuple[Path, ...]:
        return self.source.roots

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.program.guest, *self.image.args)

    @property
    def cmdline(self) -> str:
        return " ".join((*BASE_CMDLINE, *self.image.kernel_args))

    def where(self) -> str | None:
        return self.image.where or None


def resolve(image: Image, staging: Path, log: Callable[[str], None]) -> Plan:
    """The plan for `image`; `staging` is the empty folder the before_build hook may fill."""
    hook = image.hooks.get("before_build")
    if hook is not None:  # first of all, so a hook can make what the rest reads
        hook.call({"name": image.name, "staging": str(staging)})
    image = settings.expand_generators(image, {"name": image.name, "staging": str(staging)})
    source = debian_source(image, log) or package_source(image, log) or \
        Source(image, (Path("/"),))
    image = source.image
    accounts, run_as = users(image, source.actions, log)
    program = locate_program(image, source.roots)
    copies, copies_read = files(image)
    kern, kernel_read = pick_kernel(image, log)
    return Plan(image=image, staging=staging, source=source, accounts=accounts, run_as=run_as,
                program=program, copies=copies, kernel=kern,
                watched=(*source.watched, *copies_read, *kernel_read))


# ---- the image's source of files ---------------------------------------------------------------


def debian_source(image: Image, log: Callable[[str], None]) -> Source | None:
    """The image's Debian packages (and its runtime's, if it names one) as its root."""
    if not image.debian:
        return None
    from engitor.packages import cache, debian  # heavier imports, only for such images

    deb = debian.prepare(image, log=log)
    tree = deb.tree
    program = tree.image.program or ""
    roots: tuple[Path, ...] = (tree.root,)
    if not _in_tree(tree.root, program):
        if not host_path(tree.image, program).is_file():
            raise UserError(f"program {program} is not in the Debian packages "
                            f"{', '.join(image.debian)}, nor a file on this host",
                            hint="name a file the packages install ('dpkg -L PKG' where it is "
                                 "installed, or 'apt-file list PKG'), or your own program's path",
                            where=image.where or None)
        # Your own program beside the packages: its libraries from them first, then the host's.
        roots = (tree.root, Path("/"))
    entries = [(cpio.entry_for(guest, host), "package") for guest, host in sorted(tree.files.items())]
    entries += [(entry, "package") for entry in debian.extra_entries(tree.root, deb.actions)]
    return Source(tree.image, roots, tuple(entries), actions=deb.actions,
                  watched=(str(cache.resolved_path(tree.recipe.name)),))


def _in_tree(root: Path, program: str) -> bool:
    return program.startswith("/") and (root / program.lstrip("/")).exists()


def package_source(image: Image, log: Callable[[str], None]) -> Source | None:
    """A runtime package provides a root to take the program and its libraries from."""
    if not image.package:
        return None
    from engitor import packages  # a heavier import, only for package images
    from engitor.image import record

    tree = packages.prepare(image, log=log)
    # What decided this tree besides its files: which recipe file the name finds (and its
    # text), and which versions the last resolution pinned (`engitor pkg get` moves them).
    search = [str(d) for d in packages.recipes.candidate_dirs(image.base_dir)]
    recipe_file = packages.recipes.names(image.base_dir)[tree.recipe.name]
    # The package's root alone: the closure searches each library directory across all roots in
    # turn, so with the host as a second root a usr-merged host's /lib/x86_64-linux-gnu/libX
    # would shadow the package's /usr/lib/x86_64-linux-gnu/libX (another version, and a second
    # copy in the image). A runtime's Debian dependencies hold every library it links.
    entries = tuple((cpio.entry_for(guest, host), "package")
                    for guest, host in sorted(tree.files.items()))
    return Source(tree.image, (tree.root,), entries, packages=tuple(record.packages(tree)),
                  watched=(*search, str(recipe_file),
                           str(packages.cache.resolved_path(tree.recipe.name))))


def users(image: Image, actions: Actions | None,
          log: Callable[[str], None]) -> tuple[Accounts, RunAs | None]:
    """Every image's user database, and who runs the program: checked before the program's
    closure, so that a misspelt user is the first and only thing said."""
    from engitor.packages import debian, maintscripts
    from engitor.packages import users as users_mod

    accounts = debian.base_accounts(log, from_archive=bool(image.debian))
    accounts = users_mod.add(accounts, actions or maintscripts.Actions())
    run_as = users_mod.run_as(accounts, image.user, where=image.where or None) \
        if image.user else None
    return accounts, run_as


# ---- the program and what the image copies -----------------------------------------------------


def guest_path(spec: str) -> str:
    """Host path as written -> guest path: relative keeps its relative place under /."""
    p = PurePosixPath(spec)
    if p.is_absolute():
        return cpio.normalize(str(p))
    if ".." in p.parts:
        return cpio.normalize(p.name)
    return cpio.normalize(str(p))


def checked_guest(path: str, what: str) -> str:
    """A guest path from the recipe, refused (not a traceback) when it climbs above /."""
    try:
        return cpio.normalize(path)
    except ValueError:
        raise UserError(f"{what}: the guest path {path!r} climbs above / with '..'",
                        hint="guest paths are absolute paths inside the image, like '/etc/app'"
                        ) from None


def host_path(image: Image, spec: str) -> Path:
    p = Path(spec).expanduser()
    return p if p.is_absolute() else image.base_dir / p


def locate_program(image: Image, roots: tuple[Path, ...]) -> Program:
    """A package's program (a path inside its tree), or a program on the host — beside Debian
    packages too, when they do not hold that path."""
    assert image.program is not None
    packaged = image.package or (image.debian and _in_tree(roots[0], image.program))
    if packaged:
        guest = cpio.normalize(image.program)
        host = roots[0] / guest.lstrip("/")
        if not host.exists():
            raise UserError(f"program {image.program} is not in package {image.package}",
                            hint="check the package recipe's program", where=image.where or None)
    else:
        guest, host = guest_path(image.program), host_path(image, image.program)
        if not host.exists():
            raise UserError(f"program {image.program}: no such file",
                            hint=f"paths are relative to {image.base_dir}",
                            where=image.where or None)
    return Program(guest, host, elf.read_elf(host, image.program))


def files(image: Image) -> tuple[tuple[Copy, ...], list[str]]:
    """The `files`, `dirs` and `map` copies, each checked; and the folders the globs listed."""
    copies: list[Copy] = []
    where = image.where or None
    for spec in image.files:
        host = host_path(image, spec)
        paths.named_path(host, image.base_dir, f"file {spec}")
        if not host.is_file():
            what = "is a directory (use dirs)" if host.is_dir() else "no such file"
            raise UserError(f"file {spec}: {what}", hint=f"paths are relative to {image.base_dir}",
                            where=where)
        checked_guest(spec if spec.startswith("/") else "/", f"file {spec}")
        copies.append(Copy(host.resolve(), guest_path(spec), None, f"file {spec}"))
    for spec in image.dirs:
        host = host_path(image, spec)
        paths.named_path(host, image.base_dir, f"dir {spec}")
        if not host.is_dir():
            problem = "not a directory" if host.exists() else "no such directory"
            raise UserError(f"dir {spec}: {problem}", hint=f"paths are relative to {image.base_dir}",
                            where=where)
        checked_guest(spec if spec.startswith("/") else "/", f"dir {spec}")
        copies.append(Copy(host, guest_path(spec), host.resolve(), f"dir {spec}"))
    listed: list[str] = []
    for pattern, dest in image.map.items():
        copies += mapped(image, pattern, dest, listed)
    return tuple(copies), listed


def mapped(image: Image, pattern: str, dest: str, listed: list[str]) -> list[Copy]:
    """A `map` pattern: every match goes under `dest` at its place below the pattern's base
    (the part before the first wildcard); `**` never descends through a link."""
    spec = os.path.normpath(host_path(image, pattern))
    base = Path(paths.pattern_base(spec))
    matches = paths.glob(spec)
    # the folders the glob listed: a new match there changes the image
    listed += sorted({os.path.dirname(m) for m in matches} | {str(base)})
    if not matches:
        raise UserError(f"map {pattern!r} matches no files",
                        hint=f"globs are relative to {image.base_dir}", where=image.where or None)
    what = f"map {pattern!r}"
    checked_guest(dest, what)
    out = []
    for host in matches:
        paths.named_path(host, image.base_dir, what)
        guest = cpio.normalize(str(PurePosixPath(dest) / host.relative_to(base)))
        out.append(Copy(host, guest, base, what))
    return out


def pick_kernel(image: Image, log: Callable[[str], None]) -> tuple[kernel.Kernel, list[str]]:
    """The kernel, and what decides which kernel a name means (the pins) or a .deb path holds."""
    kern = kernel.get(image.kernel, base_dir=image.base_dir)
    read = [str(kernel.names_file()), str(kern.root / "kernel.json")]
    if kernel.is_deb_path(image.kernel):
        read.append(str(host_path(image, image.kernel)))
    log(f"kernel {kern.describe()}")
    return kern, read
