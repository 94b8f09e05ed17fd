"""The kernel source a recipe builds from: Debian's linux-source package, unpacked once and
kept pristine, and a copy of it for each set of patches a recipe applies (engitor/image/kbuild.py
builds from them, out of tree)."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError
from engitor.image import kconfig
from engitor.lua.api import sh

Log = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    tree: Path  # unpacked (pristine, or patched as a recipe asks); builds write only to O=

    def symbols(self) -> set[str]:
        """The options this source declares (read once, kept beside the tree)."""
        saved = self.tree.parent / f"{self.tree.name}.symbols.json"
        try:
            return set(json.loads(saved.read_text()))
        except (OSError, ValueError):
            names = kconfig.declared_symbols(self.tree)
            home.atomic_write(saved, json.dumps(sorted(names)))
            return names


def source_dir() -> Path:
    return home.subdir("cache") / "kernel-source"


def _installed(package: str) -> tuple[str, Path] | None:
    """(version, tarball) of an installed source package."""
    res = sh.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", package], check=False)
    status, _, version = res.text.partition(" ")
    if res.code != 0 or status != "installed":
        return None
    listed = sh.run(["dpkg-query", "-L", package], check=False).text.splitlines()
    tarballs = sorted(p for p in listed if p.startswith("/usr/src/") and ".tar" in p)
    return (version, Path(tarballs[0])) if tarballs and Path(tarballs[0]).is_file() else None


def _fetched(package: str, work: Path) -> tuple[str, Path]:
    """Download the source package with apt (no installation) and take its tarball out."""
    res = sh.run(["apt-get", "download", package], cwd=str(work), check=False)
    debs = sorted(work.glob("*.deb"))
    if res.code != 0 or not debs:
        why = (res.stderr.decode(errors="replace").strip().splitlines() or ["no .deb"])[-1]
        raise UserError(f"kernel source package {package} is not installed and apt cannot "
                        f"fetch it ({why.removeprefix('E: ')})",
                        hint=f"apt-get install {package}, or name another package in the "
                             "recipe's source")
    version = sh.run(["dpkg-deb", "-f", str(debs[0]), "Version"]).text
    sh.pipe([["dpkg-deb", "--fsys-tarfile", str(debs[0])],
             ["tar", "-x", "-C", str(work), "--wildcards", "./usr/src/*.tar.*"]])
    tarballs = sorted((work / "usr" / "src").glob("*.tar.*"))
    if not tarballs:
        raise UserError(f"{package} holds no source tarball under /usr/src",
                        hint="name a linux-source-* package in the recipe's source")
    return version, tarballs[0]


def prepare_source(package: str, log: Log) -> Source:
    """The unpacked source of `package`, from the installed package or fetched with apt."""
    with tempfile.TemporaryDirectory(prefix="engitor-ksrc-") as tmp:
        found = _installed(package)
        if found is None:
            log(f"{package} is not installed: fetching it with apt")
            found = _fetched(package, Path(tmp))
        version, tarball = found
        tree = source_dir() / f"{package}_{version}"
        if not (tree / "Makefile").is_file():
            log(f"unpacking {tarball.name} ({package} {version})")
            with home.atomic_dir(tree) as dest:
                sh.run(["tar", "-xf", str(tarball), "-C", str(dest), "--strip-components=1"])
    return Source(package, version, tree)


PATCHED_FILE = re.compile(r"^\+\+\+ [^/\s]+/(\S+)", re.MULTILINE)  # "+++ b/arch/x86/Kconfig"


def patched_files(patch_text: str) -> list[str]:
    """The files a unified diff (applied with -p1) writes, relative to the tree."""
    return PATCHED_FILE.findall(patch_text)  # "+++ /dev/null" (a deletion) does not match


def patched_source(source: Source, patches: tuple[Path, ...], log: Log) -> Source:
    """`source` with `patches` applied: a tree of its own, kept for that set of patches.

    The copy is hard links to the pristine tree (seconds, not the minutes of unpacking again);
    a file a patch writes is first made a file of its own, so the pristine tree stays pristine.
    Made in a temporary folder and renamed: a patch that does not apply leaves nothing.
    """
    if not patches:
        return source
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()
    tree = source.tree.with_name(f"{source.tree.name}+{digest[:12]}")
    if not (tree / "Makefile").is_file():
        log(f"applying {len(patches)} patch{'es' if len(patches) > 1 else ''} to "
            f"{source.package} {source.version}")
        with home.atomic_dir(tree) as dest:
            dest.rmdir()  # cp makes it
            sh.run(["cp", "-al", str(source.tree), str(dest)])
            for patch in patches:
                _apply(patch, dest, source)
    return Source(source.package, source.version, tree)


def _apply(patch: Path, tree: Path, source: Source) -> None:
    for name in patched_files(patch.read_text(errors="replace")):
        target = tree / name
        if target.is_file() and not target.is_symlink():
            # a hard link to the pristine file: made a file of its own before patch writes it
            data = target.read_bytes()
            target.unlink()
            target.write_bytes(data)
    res = sh.run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-",
                  "-d", str(tree), "-i", str(patch)], check=False)
    if res.code != 0:
        said = (res.stdout + res.stderr).decode(errors="replace").splitlines()
        why = next((line for line in said if "FAILED" in line or "No file to patch" in line),
                   said[-1] if said else f"patch exited with {res.code}")
        raise UserError(f"kernel patch {patch.name} does not apply to {source.package} "
                        f"{source.version}: {why.strip()}",
                        hint="make the patch against this source (diff -u from its top folder)",
                        where=f"{patch}:1")


def installed_source(package: str) -> Source | None:
    """The installed source package, without unpacking it (enough to find a cached build)."""
    found = _installed(package)
    return Source(package, found[0], source_dir() / f"{package}_{found[0]}") if found else None
