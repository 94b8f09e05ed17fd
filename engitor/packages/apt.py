"""Debian packages through apt: resolve a runtime's closure, download it. Never install.

apt does the resolving (Depends and Pre-Depends, alternatives, virtual packages, versions) from
its signed indexes, as if onto an empty system: its status file is ours. Packages that only an
installed system needs (dpkg, debconf, init-system helpers, …; see `INSTALLED_SYSTEM_ONLY`)
are written into that status file as already installed, so apt neither fetches them nor what
only they depend on. A preferences file pins Debian's own archive above any third-party
repository the host has configured. `apt-get download` fetches exactly the resolved versions,
each checked by apt against the hashes of its signed indexes.

Every apt call goes through `argv()`, a pure function of our directories. Extra options for
every call can be given in $ENGITOR_APT_OPTIONS (shell words, e.g. "-o Acquire::http::Proxy=…");
apt's own $APT_CONFIG is honoured as well.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shlex
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError
from engitor.proc import Completed, run

ARCH = "amd64"  # the guest's architecture: QEMU microvm runs x86-64
# Needed to configure or manage packages on an installed Debian system, never by a runtime.
INSTALLED_SYSTEM_ONLY = (
    "adduser", "debconf", "debianutils", "dpkg", "init-system-helpers", "install-info",
    "login", "lsb-base", "passwd", "sensible-utils", "systemd", "systemd-sysv",
    "sysvinit-utils", "ucf", "usrmerge", "usr-is-merged",
)
PREFERENCES = """\
# Written by engitor: runtimes come from Debian's archive, whatever else the host has.
Package: *
Pin: release o=Debian
Pin-Priority: 900
"""
INST_RE = re.compile(r"^Inst (?P<pkg>\S+) (?:\[[^\]]*\] )?\((?P<ver>\S+) (?P<origin>.*?) "
                     r"\[(?P<arch>[^\]]+)\]\)")
UNKNOWN_RE = re.compile(r"^E: Unable to locate package (\S+)", re.M)
NO_CANDIDATE_RE = re.compile(r"^E: Package '([^']+)' has no installation candidate", re.M)


@dataclass(frozen=True, order=True)
class Deb:
    """One resolved Debian package version."""

    package: str
    version: str
    arch: str
    origin: str = ""  # apt's "Label:Version/Suite" list, e.g. "Debian-Security:12/oldstable-security"

    @property
    def id(self) -> str:
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.arch}"

    def __str__(self) -> str:
        return f"{self.package} {self.version}"


def apt_dir() -> Path:
    return home.subdir("apt")


def _extra_options() -> list[str]:
    return shlex.split(os.environ.get("ENGITOR_APT_OPTIONS", ""))


def argv(tool: str, status: Path, *args: str) -> list[str]:
    """An apt command over our own state: `status` as the installed set, our pins, our caches.
    Only the empty status gets a package cache file (37 MB each, and apt rebuilds one whenever
    its status differs); the others are built in memory from the shared source cache."""
    state = apt_dir()
    # Another apt configuration (other sources, say) works from caches in memory rather than
    # replacing the usual files.
    usual = not os.environ.get("APT_CONFIG") and not os.environ.get("ENGITOR_APT_OPTIONS")
    opts = {
        "Dir::State::status": str(status),
        "Dir::Cache::pkgcache": str(state / "pkgcache.bin")
        if usual and status.stat().st_size == 0 else "",
        "Dir::Cache::srcpkgcache": str(state / "srcpkgcache.bin") if usual else "",
        "Dir::Etc::preferences": str(state / "preferences"),
        "Dir::Etc::preferencesparts": str(state / "preferences.d"),
        "Debug::NoLocking": "1",
        "APT::Install-Recommends": "false",
        "APT::Install-Suggests": "false",
        "Acquire::Retries": "0",
    }
    out = [tool]
    for name, value in opts.items():
        out += ["-o", f"{name}={value}"]
    return out + _extra_options() + list(args)


def _prepare_state() -> None:
    state = apt_dir()
    (state / "preferences.d").mkdir(exist_ok=True)
    prefs = state / "preferences"
    if not prefs.is_file() or prefs.read_text() != PREFERENCES:
        home.atomic_write(prefs, PREFERENCES)


APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
APT_HINT = "engitor takes runtimes from Debian with apt and dpkg-deb"


def _status_text(installed: Iterable[tuple[str, str, str, str]]) -> str:
    """A dpkg status file saying these (package, version, arch, provides) are installed."""
    out = []
    for package, version, arch, provides in sorted(installed):
        stanza = [f"Package: {package}", "Status: install ok installed", f"Version: {version}",
                  f"Architecture: {arch}"]
        if provides:
            stanza.append(f"Provides: {provides}")
        out.append("\n".join(stanza) + "\n")
    return "\n".join(out)


def _write_status(text: str) -> Path:
    path = apt_dir() / f"status-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not path.is_file():
        home.atomic_write(path, text)
    return path


def parse_simulation(text: str) -> list[Deb]:
    """`apt-get -s install` output -> the packages it would install, in its order."""
    return [Deb(m["pkg"], m["ver"], m["arch"], m["origin"])
            for m in map(INST_RE.match, text.splitlines()) if m]


class NoIndexes(UserError):
    """apt has no package lists at all: offline and never updated, or no sources."""


def has_indexes() -> bool:
    proc = run(argv("apt-cache", _write_status(""), "pkgnames", "libc6"), env=APT_ENV, hint=APT_HINT)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _apt_error(proc: Completed[str], asked: list[str], what: str) -> UserError:
    text = proc.stderr + proc.stdout
    unknown = UNKNOWN_RE.findall(text) + NO_CANDIDATE_RE.findall(text)
    if unknown and not has_indexes():
        return NoIndexes(f"{what}: apt has no package indexes to resolve {' '.join(asked)} "
                         "from (no sources, or 'apt-get update' never ran)")
    if unknown:
        close = {}
        for name in unknown:
            close[name] = similar_names(name)
        hints = [f"{n}: did you mean {' or '.join(map(repr, c))}?" for n, c in close.items() if c]
        return UserError(f"{what}: apt knows no Debian package {', '.join(unknown)}",
                         hint="; ".join(hints) or "check the name with 'apt-cache search', "
                         "or run 'apt-get update'")
    last = [line for line in text.splitlines() if line.startswith("E:")] or \
        text.strip().splitlines()[-1:] or ["(no output)"]
    return UserError(f"{what}: apt could not resolve {' '.join(asked)}: {last[-1][:300]}",
                     hint="see 'apt-cache policy NAME'; after 'apt-get update' try again")


def similar_names(name: str) -> list[str]:
    """Debian package names close to `name` (apt's own list, by shared first letter)."""
    proc = run(argv("apt-cache", _write_status(""), "pkgnames", name[:1]), env=APT_ENV, hint=APT_HINT)
    names = proc.stdout.split() if proc.returncode == 0 else []
    return difflib.get_close_matches(name, names, n=3, cutoff=0.75)


def resolve(debs: Iterable[str], skip: Iterable[str] = (), *,
            what: str = "runtime") -> tuple[list[Deb], list[Deb]]:
    """The packages apt would install for `debs` on an empty system, minus what only an
    installed system needs (and `skip`). Returns (packages, skipped). UserError when apt
    knows a name not, or has no indexes (offline and never updated)."""
    _prepare_state()
    asked = list(debs)
    leave_out = set(INSTALLED_SYSTEM_ONLY) | set(skip)
    empty = _write_status("")
    first = run(argv("apt-get", empty, "-s", "install", *asked), env=APT_ENV, hint=APT_HINT)
    if first.returncode != 0:
        raise _apt_error(first, asked, what)
    full = parse_simulation(first.stdout)
    if not full:
        raise UserError(f"{what}: apt resolved {' '.join(asked)} to no packages",
                        hint="check apt's configuration ('apt-cache policy')")
    skipped = [d for d in full if d.package in leave_out and d.package not in asked]
    if not skipped:
        return full, []
    # Again, with the skipped ones already "installed": apt then leaves out what only they need.
    provides = _provides(empty, skipped)
    status = _write_status(_status_text(
        (d.package, d.version, d.arch, provides.get(d.package, "")) for d in skipped))
    second = run(argv("apt-get", status, "-s", "install", *asked), env=APT_ENV, hint=APT_HINT)
    if second.returncode != 0:
        raise _apt_error(second, asked, what)
    kept = parse_simulation(second.stdout)
    left = {d.package for d in kept}
    return kept, sorted(d for d in full if d.package not in left)


def _provides(status: Path, debs: list[Deb]) -> dict[str, str]:
    proc = run(argv("apt-cache", status, "show", "--no-all-versions",
                    *(f"{d.package}={d.version}" for d in debs)), env=APT_ENV, hint=APT_HINT)
    out: dict[str, str] = {}
    package = None
    for line in proc.stdout.splitlines():
        if line.startswith("Package: "):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Provides: ") and package:
            out[package] = line.split(":", 1)[1].strip()
    return out


def debs_dir() -> Path:
    return home.subdir("debs")


def cached_deb(deb: Deb) -> Path | None:
    path = debs_dir() / f"{deb.id}.deb"
    return path if path.is_file() else None


def download(debs: list[Deb]) -> dict[Deb, Path]:
    """Fetch the .debs not cached yet into the cache (~/.engitor/debs); returns all paths.
    UserError (with apt's last message) when the archive cannot be reached."""
    _prepare_state()
    out = {d: p for d in debs if (p := cached_deb(d))}
    missing = [d for d in debs if d not in out]
    if not missing:
        return out
    target = debs_dir()
    # one downloader per cache at a time
    with home.locked(target / ".lock"), tempfile.TemporaryDirectory(dir=target, prefix=".dl-") as tmp:
        still = [d for d in missing if not cached_deb(d)]  # another process may have fetched
        if still:
            opts = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
            proc = run(argv("apt-get", _write_status(""), *opts, "download",
                            *(f"{d.package}={d.version}" for d in still)), cwd=Path(tmp),
                       env=APT_ENV, hint=APT_HINT)
            if proc.returncode != 0:
                errors = [line for line in (proc.stderr + proc.stdout).splitlines()
                          if line.startswith("E:")] or proc.stderr.strip().splitlines()[-1:]
                raise DownloadError(errors[0] if errors else "apt-get download failed",
                                    len(still))
            for fetched in Path(tmp).glob("*.deb"):
                os.replace(fetched, target / fetched.name)
        for d in missing:
            path = cached_deb(d)
            if path is None:
                raise DownloadError(f"apt did not deliver {d}", len(missing))
            out[d] = path
    return out


class DownloadError(UserError):
    def __init__(self, apt_message: str, count: int):
        super().__init__(f"cannot download {count} Debian package{'s' * (count != 1)} "
                         f"({apt_message[:300]})")
        self.apt_message = apt_message


def deb_fields(path: Path) -> dict[str, str]:
    """Control fields of a .deb file."""
    names = ("Package", "Version", "Architecture", "Installed-Size")
    proc = run(["dpkg-deb", "--showformat=" + "\\n".join(f"${{{n}}}" for n in names),
               "--show", str(path)], hint=APT_HINT)
    if proc.returncode != 0:
        raise UserError(f"{path} is not a Debian package ({proc.stderr.strip()})",
                        hint="remove it from the cache and fetch again")
    return dict(zip(names, proc.stdout.split("\n"), strict=False))
