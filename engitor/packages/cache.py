"""The package cache: unpacked packages by version, merged runtime roots, resolutions.

Layout under ~/.engitor (every entry written with `home.atomic_dir`/`atomic_write`):
  debs/NAME_VERSION_ARCH.deb             what apt downloaded (its hashes checked by apt)
  packages/unpacked/NAME_VERSION_ARCH/   root/ (the package's files, `dpkg-deb -x`) + deb.json
  packages/unpacked/…+host/              the same, copied from this host's installed files
  packages/roots/KEY/                    root/ (a runtime's packages merged, keep/drop applied,
                                         hard links into unpacked/) + root.json
  packages/resolved/NAME.json            the last resolution of runtime NAME (which versions)

Maintainer scripts never run; `triggers` makes the few of their products that runtimes read
(the CA trust store) when a root is merged. Absolute symlinks are made relative when a package
is unpacked, so that every lookup inside a root stays inside it (the host's /etc/alternatives is
not the guest's).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor import faults, home, paths
from engitor.errors import UserError
from engitor.packages import triggers
from engitor.packages.apt import APT_HINT, Deb, deb_fields
from engitor.packages.rules import Rules
from engitor.proc import run

FORMAT = 1  # bump when what is stored in an unpacked tree changes
ROOT_FORMAT = 5  # bump when what a merged root holds changes (4: hash links, 5: bytecode)


def cache_dir() -> Path:
    return home.subdir("packages")


@dataclass(frozen=True)
class Unpacked:
    deb: Deb
    root: Path
    installed_size: int  # bytes, from the package's Installed-Size (KiB)
    sha256: str  # of the .deb ("" for host copies)
    source: str  # "archive" or "host"

    def meta(self) -> dict[str, Any]:
        return {"package": self.deb.package, "version": self.deb.version,
                "arch": self.deb.arch, "origin": self.deb.origin,
                "installed_size": self.installed_size, "sha256": self.sha256,
                "source": self.source, "format": FORMAT}


def _entry(deb: Deb, source: str) -> Path:
    return cache_dir() / "unpacked" / (deb.id + ("+host" if source == "host" else ""))


def load_unpacked(deb: Deb, source: str = "archive") -> Unpacked | None:
    entry = _entry(deb, source)
    try:
        meta = json.loads((entry / "deb.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if meta.get("format") != FORMAT:
        return None
    return Unpacked(Deb(meta["package"], meta["version"], meta["arch"], meta["origin"]),
                    entry / "root", meta["installed_size"], meta["sha256"], meta["source"])


def unpack(deb: Deb, path: Path) -> Unpacked:
    """Unpack a downloaded .deb into the cache (once per version)."""
    found = load_unpacked(deb)
    if found:
        return found
    fields = deb_fields(path)
    if (fields.get("Package"), fields.get("Version")) != (deb.package, deb.version):
        raise UserError(f"{path.name} holds {fields.get('Package')} {fields.get('Version')}, "
                        f"not {deb}", hint=f"remove {path} and fetch again")
    with path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    with home.atomic_dir(_entry(deb, "archive")) as tmp:
        proc = run(["dpkg-deb", "-x", str(path), str(tmp / "root")], hint=APT_HINT)
        if proc.returncode != 0:
            needed = int(fields.get("Installed-Size") or 0) * 1024
            lines = proc.stderr.strip().splitlines() or ["no message"]
            raise faults.tool_failure(proc.stderr, what=f"unpacking {path.name} into",
                                      where=tmp.parent, needed=needed) or \
                UserError(f"cannot unpack {path.name}: {lines[-1]}",
                          hint=f"remove {path} and fetch again")
        relative_symlinks(tmp / "root")
        paths.unpacked(tmp / "root", f"package {path.name}")
        unit = Unpacked(deb, _entry(deb, "archive") / "root",
                        int(fields.get("Installed-Size") or 0) * 1024, sha, "archive")
        (tmp / "deb.json").write_text(json.dumps(unit.meta(), indent=2))
    return load_unpacked(deb) or unit


def relative_symlinks(root: Path) -> None:
    """Point absolute symlinks, and relative ones that climb above the guest's /, at the same
    guest path, relatively, so they stay in `root` (as the guest reads them, '..' at / is /)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            target = os.readlink(path)
            guest_dir = "/" + str(Path(dirpath).relative_to(root))
            if target.startswith("/") or _climbs_above_root(guest_dir, target):
                guest_target = os.path.normpath(os.path.join(guest_dir, target))
                path.unlink()
                os.symlink(os.path.relpath(guest_target, guest_dir), path)


def _climbs_above_root(guest_dir: str, target: str) -> bool:
    depth = len([p for p in guest_dir.split("/") if p and p != "."])
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part and part != ".":
            depth += 1
    return False


# ---------------------------------------------------------------------------------------------
# This host's installed packages, when the archive cannot be reached


def host_version(package: str, arch: str) -> tuple[str, int] | None:
    """(version, installed size in bytes) of `package` installed on this host, or None."""
    name = package if arch == "all" else f"{package}:{arch}"
    proc = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Version}\t${Installed-Size}",
                name], hint=APT_HINT)
    parts = proc.stdout.split("\t")
    if proc.returncode != 0 or len(parts) != 3 or not parts[0].startswith("ii"):
        return None
    return parts[1], int(parts[2] or 0) * 1024


def from_host(deb: Deb) -> Unpacked | None:
    """Copy `deb`'s files as installed on this host (whatever version that is) into the
    cache. Conffiles come as the host has them."""
    found = host_version(deb.package, deb.arch)
    if found is None:
        return None
    version, size = found
    local = Deb(deb.package, version, deb.arch, "this host's installed files")
    cached = load_unpacked(local, "host")
    if cached:
        return cached
    name = deb.package if deb.arch == "all" else f"{deb.package}:{deb.arch}"
    listing = run(["dpkg-query", "-L", name], hint=APT_HINT).stdout.splitlines()
    paths = sorted(p for p in listing if p.startswith("/") and p != "/.")
    parents = {str(Path(p).parent) for p in paths}
    with home.atomic_dir(_entry(local, "host")) as tmp:
        root = tmp / "root"
        root.mkdir()
        for guest in paths:
            host = Path(guest)
            dest = root / guest.lstrip("/")
            try:
                st = host.lstat()
            except FileNotFoundError:
                continue  # listed but removed by the host's admin
            dest.parent.mkdir(parents=True, exist_ok=True)
            # A listed folder that is a symlink on the host (/lib -> usr/lib after usrmerge)
            # is a folder in the package.
            if stat.S_ISDIR(st.st_mode) or (stat.S_ISLNK(st.st_mode) and guest in parents):
                dest.mkdir(exist_ok=True)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(host), dest)
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(host, dest)
        relative_symlinks(root)
        unit = Unpacked(local, _entry(local, "host") / "root", size, "", "host")
        (tmp / "deb.json").write_text(json.dumps(unit.meta(), indent=2))
    return load_unpacked(local, "host") or unit


# ---------------------------------------------------------------------------------------------
# Merged roots


@dataclass(frozen=True)
class Root:
    path: Path
    files: int
    bytes: int  # regular files kept
    dropped_bytes: int
    dangling: int  # symlinks left out because what they point to is not in the root


def root_key(units: list[Unpacked], rules: Rules) -> str:
    ident = [[u.deb.id, u.source, u.sha256] for u in units]
    text = json.dumps([FORMAT, ROOT_FORMAT, ident, rules.key()])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def load_root(key: str) -> Root | None:
    entry = cache_dir() / "roots" / key
    try:
        meta = json.loads((entry / "root.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return Root(entry / "root", meta["files"], meta["bytes"], meta["dropped_bytes"],
                meta["dangling"])


def merge(units: list[Unpacked], rules: Rules) -> Root:
    """The runtime's root: every unit's files, keep/drop applied, hard-linked (copied across
    file systems). Later units win a path both have (Debian forbids that without Replaces)."""
    key = root_key(units, rules)
    found = load_root(key)
    if found:
        return found
    entry = cache_dir() / "roots" / key
    with home.atomic_dir(entry) as tmp:
        root = tmp / "root"
        root.mkdir()
        dropped = sum(_merge_one(unit.root, root, rules) for unit in units)
        # Before dangling links go: some point at what a trigger makes (openssl's
        # /usr/lib/ssl/cert.pem at the CA bundle).
        made = triggers.run(root)
        dangling = _drop_dangling(root)
        files = kept = 0
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                files += 1
                kept += st.st_size if stat.S_ISREG(st.st_mode) else 0
        (tmp / "root.json").write_text(json.dumps({
            "files": files, "bytes": kept, "dropped_bytes": dropped, "dangling": dangling,
            "packages": [u.deb.id for u in units], "rules": rules.key(), "triggers": made,
            "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2))
    found = load_root(key)
    assert found is not None
    return found


def _merge_one(src: Path, dst: Path, rules: Rules) -> int:
    """Link `src`'s files into `dst` except the dropped ones; returns the bytes dropped."""
    dropped = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        guest_dir = "/" if rel == "." else "/" + rel
        walk_on = []
        for name in sorted(dirnames):
            guest = os.path.join(guest_dir, name)
            s = Path(dirpath) / name
            if s.is_symlink():
                filenames.append(name)  # a symlink to a folder is linked, not walked
                continue
            if rules.dropped(guest):
                if rules.may_keep_below(guest):
                    walk_on.append(name)
                else:
                    dropped += _size(s)
                continue
            walk_on.append(name)
            (dst / guest.lstrip("/")).mkdir(parents=True, exist_ok=True)
            shutil.copymode(s, dst / guest.lstrip("/"))
        dirnames[:] = walk_on
        for name in sorted(filenames):
            guest = os.path.join(guest_dir, name)
            s = Path(dirpath) / name
            st = s.lstat()
            if rules.dropped(guest):
                dropped += st.st_size if stat.S_ISREG(st.st_mode) else 0
                continue
            d = dst / guest.lstrip("/")
            d.parent.mkdir(parents=True, exist_ok=True)
            if d.is_symlink() or d.exists():
                if d.is_dir() and not d.is_symlink():
                    continue
                d.unlink()
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(st.st_mode):
                try:
                    os.link(s, d)
                except OSError:
                    shutil.copy2(s, d)
    return dropped


def _size(folder: Path) -> int:
    return sum((Path(d) / f).lstat().st_size for d, _, fs in os.walk(folder) for f in fs)


def _drop_dangling(root: Path) -> int:
    """Remove symlinks whose target is missing from the root (a dropped file, or what a
    maintainer script would have made): the image should not carry broken names."""
    real_root = root.resolve()
    count = 0
    changed = True
    while changed:  # a link to a link removed in the previous pass dangles now
        changed = False
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    continue
                target = Path(os.path.realpath(path))
                if not target.exists() or not target.is_relative_to(real_root):
                    path.unlink()
                    count += 1
                    changed = True
    return count


def files(root: Path) -> dict[str, Path]:
    """Guest path -> host path of every entry in a root (folders, files, symlinks)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        base = "" if rel == "." else "/" + rel
        for name in dirnames + filenames:
            out[f"{base}/{name}"] = Path(dirpath) / name
    return out


# ---------------------------------------------------------------------------------------------
# Resolutions: which versions a runtime was, so warm and offline builds need no apt


def resolved_path(name: str) -> Path:
    return cache_dir() / "resolved" / f"{name}.json"


def read_resolution(name: str) -> dict[str, Any] | None:
    try:
        return json.loads(resolved_path(name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_resolution(name: str, apt_key: dict[str, Any], units: list[Unpacked],
                     skipped: list[Deb]) -> dict[str, Any]:
    data = {
        "name": name, "apt_key": apt_key,
        "resolved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "packages": [{"package": u.deb.package, "version": u.deb.version, "arch": u.deb.arch,
                      "origin": u.deb.origin, "source": u.source} for u in units],
        "skipped": [{"package": d.package, "version": d.version, "arch": d.arch}
                    for d in skipped],
    }
    home.atomic_write(resolved_path(name), json.dumps(data, indent=2))
    return data


def units_of(resolution: dict[str, Any]) -> list[Unpacked] | None:
    """The cached unpacked packages of a resolution, or None if any is missing."""
    out = []
    for p in resolution["packages"]:
        unit = load_unpacked(Deb(p["package"], p["version"], p["arch"], p["origin"]),
                             p["source"])
        if unit is None:
            return None
        out.append(unit)
    return out
