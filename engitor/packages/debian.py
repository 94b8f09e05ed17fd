"""Debian packages whole (`debian = {"postgresql-15"}`, `--deb memcached`): apt resolves the
closure, the files are laid out as dpkg lays them, and what the maintainer scripts would make
that a daemon needs is made from the packages' data.

Why from data, not by running the scripts in a sandbox (as mmdebstrap and mkosi do): the
scripts expect an installed Debian system — dpkg, debconf, adduser, perl, coreutils, ucf and
their databases — so a sandbox needs the whole Essential set unpacked and configured first
(mmdebstrap's minbase: ~90 packages, hundreds of MiB in the image or a second tree to copy
out of), the scripts run in package order with clocks, random ids (adduser's next free uid) and
generated keys in their output, and each build repeats them. What a daemon needs of them is
small and regular (users, owned directories, alternatives, a few links and copies), so
`maintscripts` reads exactly that from the scripts' text and the packages' sysusers.d and
tmpfiles.d; the result is a pure function of the .deb files, hence reproducible. Measured
here for memcached (BENCHMARKS.md): `mmdebstrap --variant=essential --include=memcached`,
which runs the scripts, took 2 min 44 s for 79 packages and a 158 MiB tree (memcache got uid
100, the next free one); engitor's cold build from the same .debs 36 s for 18 packages and
77 MiB, memcache's uid derived from its name.

    tree = prepare(image, log=print)
    tree.root, tree.files, tree.image      # as for runtime packages
    tree.actions                           # users, dirs, owners, … the packages ask for
    extra_entries(tree)                    # alternatives, links, copies the scripts would make
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engitor import packages
from engitor.cpio import Entry
from engitor.errors import UserError
from engitor.packages import apt, cache, maintscripts, users
from engitor.packages.maintscripts import Actions
from engitor.packages.recipes import DEB_NAME_RE, PackageRecipe
from engitor.recipe.model import Image

Log = Callable[[str], None]
SCRIPTS = ("preinst", "postinst")
# C.UTF-8 is the one locale kept (libc-bin ships it); zoneinfo is data, not a translation.
KEEP = ("/usr/lib/locale/C.utf8/**",)
BASE_PASSWD = PackageRecipe(name="debian-base-passwd", debs=("base-passwd",),
                            program="/usr/sbin/update-passwd")
DASH = PackageRecipe(name="debian-dash", debs=("dash",), program="/usr/bin/dash")


@dataclass(frozen=True)
class DebTree:
    tree: packages.Tree
    actions: Actions


def recipe_for(image: Image) -> PackageRecipe:
    """An unnamed runtime recipe for the image's Debian packages (joined to its runtime's).
    As on apt-get's command line, a name ending in '-' leaves that package out, with what only
    it needs ({"postgresql-15", "libllvm14-"}: no JIT compiler, 126 MiB less)."""
    for name in image.debian:
        if not DEB_NAME_RE.fullmatch(name.removesuffix("-")):
            raise UserError(f"debian: {name!r} is not a Debian package name",
                            hint="lower case letters, digits, '+', '-', '.'; a trailing '-' "
                                 "leaves a package out", where=image.where or None)
    wanted = tuple(n for n in image.debian if not n.endswith("-"))
    skip = tuple(n[:-1] for n in image.debian if n.endswith("-"))
    if not wanted:
        raise UserError("debian: every package named is left out (a trailing '-')",
                        hint="name at least one package to install", where=image.where or None)
    base: PackageRecipe | None = None
    if image.package:
        base = packages.recipes.find(image.package, image.base_dir)
    debs = tuple(dict.fromkeys((*(base.debs if base else ()), *wanted)))
    name = "debian-" + "+".join(sorted(image.debian))
    if base is not None:
        return dataclasses.replace(base, name=f"{base.name}+{name}", debs=debs,
                                   keep=(*base.keep, *KEEP), skip=(*base.skip, *skip))
    return PackageRecipe(name=name[:200], debs=debs, program=image.program or "",
                         keep=KEEP, skip=skip, where=image.where)


def prepare(image: Image, *, log: Log = lambda _: None) -> DebTree:
    recipe = recipe_for(image)
    tree = packages.prepare(image, log=log, recipe=recipe)
    actions = Actions()
    for unit in tree.units:
        actions.extend(unit_actions(unit))
    return DebTree(tree, actions)


def control_scripts(unit: cache.Unpacked) -> dict[str, str]:
    """The preinst and postinst of an unpacked package: from its .deb's control archive, or
    dpkg's database for this host's installed copy."""
    out: dict[str, str] = {}
    if unit.source == "host":
        info = Path("/var/lib/dpkg/info")
        for script in SCRIPTS:
            for name in (unit.deb.package, f"{unit.deb.package}:{unit.deb.arch}"):
                path = info / f"{name}.{script}"
                if path.is_file():
                    out[script] = path.read_text(errors="replace")
        return out
    deb = apt.cached_deb(unit.deb)
    if deb is None:
        return out
    proc = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                          check=False)
    if proc.returncode != 0:
        return out
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name).name
            f = tar.extractfile(member) if name in SCRIPTS else None
            if f is not None:
                out[name] = f.read().decode(errors="replace")
    return out


def unit_actions(unit: cache.Unpacked) -> Actions:
    actions = Actions()
    for text in control_scripts(unit).values():
        actions.extend(maintscripts.parse_script(text))
    for folder, parse in (("usr/lib/sysusers.d", maintscripts.parse_sysusers),
                          ("usr/lib/tmpfiles.d", maintscripts.parse_tmpfiles),
                          ("etc/tmpfiles.d", maintscripts.parse_tmpfiles)):
        d = unit.root / folder
        if d.is_dir():
            for conf in sorted(d.glob("*.conf")):
                actions.extend(parse(conf.read_text(errors="replace")))
    return actions


def _exists(root: Path, guest: str) -> bool:
    path = root / guest.lstrip("/")
    return path.exists() or path.is_symlink()


def extra_entries(root: Path, actions: Actions) -> list[Entry]:
    """What the scripts would add to the tree: the best alternative of each name (highest
    priority among those whose file is there), literal links and copies whose source is
    in the packages, and home folders adduser would make."""
    out: list[Entry] = []
    best: dict[str, tuple[int, str, str]] = {}
    for link, name, path, prio in actions.alternatives:
        if _exists(root, path) and (name not in best or prio > best[name][0]):
            best[name] = (prio, link, path)
    for _, link, path in sorted(best.values(), key=lambda b: b[1]):
        if not _exists(root, link):
            out.append(Entry.symlink(link, path))
    for link, target in actions.links:
        if _exists(root, target) and not _exists(root, link):
            out.append(Entry.symlink(link, os.path.relpath(target, os.path.dirname(link))))
    for source, dest in actions.copies:
        src = root / source.lstrip("/")
        if src.is_file() and not _exists(root, dest):
            out.append(Entry.file(dest, source=src.resolve(), mode=0o644))
    return out


HOST_BASE_PASSWD = Path("/usr/share/base-passwd")
# What an image has when base-passwd is neither cached, nor reachable, nor on this host.
MINIMAL_PASSWD = ("root:*:0:0:root:/root:/usr/sbin/nologin\n"
                  "nobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
MINIMAL_GROUP = "root:*:0:\nnogroup:*:65534:\n"


def base_accounts(log: Log = lambda _: None, *, from_archive: bool = False) -> users.Accounts:
    """Debian's fixed users and groups, from base-passwd's own master files: the archive's
    (images with Debian packages), else this host's installed copy (the same fixed ids in
    every release), else root and nobody."""
    share: Path | None = None
    if from_archive:
        share = _unit_root(BASE_PASSWD, log) / "usr/share/base-passwd"
    elif (HOST_BASE_PASSWD / "passwd.master").is_file():
        share = HOST_BASE_PASSWD
    if share is None:
        return users.parse_master(MINIMAL_PASSWD, MINIMAL_GROUP)
    return users.parse_master((share / "passwd.master").read_text(),
                              (share / "group.master").read_text())


def dash_root(log: Log = lambda _: None) -> Path:
    """Debian's dash, unpacked: the /bin/sh of images whose program runs shell commands."""
    return _unit_root(DASH, log)


def _unit_root(recipe: PackageRecipe, log: Log) -> Path:
    """The unpacked files of the one package a helper recipe is about (not its dependencies)."""
    units, _ = packages.cached_units(recipe, log)
    return next(u.root for u in units if u.deb.package == recipe.debs[0])
