"""Debian kernel packages: fetched with apt (or given as a .deb), unpacked, never installed.

Cache layout: kernels/<package>_<version>_<sha256[:16]>/ holding the unpacked tree (boot/vmlinuz-*,
lib/modules/<kver>/...), kernel.json, and the .deb itself (package.deb) so the cache can be
copied to an offline machine and unpacked again. kernels/names.json pins what a name (the metapackage,
e.g. linux-image-cloud-amd64) resolved to at the last fetch, so runs need no apt call and work
offline; `engitor kernel fetch` refreshes it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engitor import RECIPES_DIR, faults, home, paths
from engitor.errors import UserError, did_you_mean
from engitor.kernel_traits import KernelTraits
from engitor.proc import run
from engitor.recipe import model
from engitor.recipe.targets import is_deb_path

DEFAULT_KERNEL = model.DEFAULT_KERNEL


@dataclass(frozen=True)
class Kernel:
    package: str
    version: str
    sha256: str  # of the .deb
    release: str  # uname -r, the lib/modules/ directory name
    root: Path  # unpacked tree
    built: dict[str, Any] | None = None  # how `engitor kernel build` made it (None: a .deb)

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def deb(self) -> Path:
        return self.root / "package.deb"

    @property
    def config(self) -> Path:
        return self.root / "boot" / f"config-{self.release}"

    @property
    def vmlinux(self) -> Path:
        """The uncompressed kernel `engitor kernel build` keeps (QEMU boots it through PVH)."""
        return self.root / "boot" / f"vmlinux-{self.release}"

    def describe(self) -> str:
        return f"{self.package} {self.version}"

    def traits(self) -> KernelTraits:
        """What this kernel can do, from its own config (Debian's .deb ships it in boot/)."""
        from engitor.image import kconfig

        config = kconfig.values(self.config.read_text()) if self.config.is_file() else {}
        if not config:
            return KernelTraits(size=self.vmlinuz.stat().st_size,
                                init_size=kconfig.bzimage_init_size(self.vmlinuz))
        return kconfig.traits(config, self.vmlinuz, self.vmlinux if self.built else None)


def kernels_dir() -> Path:
    return home.subdir("kernels")


def names_file() -> Path:
    return kernels_dir() / "names.json"


def _names() -> dict[str, str]:
    try:
        return json.loads(names_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def load_entry(entry: Path) -> Kernel | None:
    try:
        meta = json.loads((entry / "kernel.json").read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    known = {f.name for f in fields(Kernel)}
    meta = {k: v for k, v in meta.items() if k in known}
    meta["root"] = entry
    kernel = Kernel(**meta)
    return kernel if kernel.vmlinuz.is_file() else None


_load = load_entry


def pin(name: str, kernel: Kernel) -> None:
    """Make `name` mean `kernel` (what `--kernel NAME` and `kernel = NAME` select)."""
    names = _names()
    if names.get(name) != kernel.root.name:
        names[name] = kernel.root.name
        home.atomic_write(names_file(), json.dumps(names, indent=2, sort_keys=True))


def pinned_names() -> dict[str, str]:
    """Name -> cache entry, for the names that lead to a cached kernel."""
    return {n: e for n, e in sorted(_names().items()) if _load(kernels_dir() / e)}


def buildable() -> set[str]:
    """Kernels `engitor kernel build NAME` knows (recipes/kernels/NAME.lua)."""
    return {p.stem for p in (RECIPES_DIR / "kernels").glob("*.lua")}


def cached() -> list[Kernel]:
    out = []
    for entry in sorted(kernels_dir().iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            k = _load(entry)
            if k:
                out.append(k)
    return out


TOOLS_HINT = "engitor fetches kernels with Debian's apt and dpkg-deb"


def resolve_name(name: str) -> str:
    """A metapackage (linux-image-cloud-amd64) -> the image package it depends on today."""
    proc = run(["apt-cache", "depends", "--no-recommends", "--no-suggests", name],
               hint=TOOLS_HINT)
    if proc.returncode != 0:
        raise UserError(f"kernel package {name} is unknown to apt",
                        hint="run 'apt-get update', or give a kernel .deb path with --kernel")
    for line in proc.stdout.splitlines():
        dep = line.strip()
        if dep.startswith("Depends:"):
            target = dep.split(":", 1)[1].strip().strip("<>")
            if target.startswith("linux-image-") and target != name:
                return resolve_name(target)
    return name


def _deb_field(deb: Path, fieldname: str) -> str:
    proc = run(["dpkg-deb", "-f", str(deb), fieldname], hint=TOOLS_HINT)
    if proc.returncode != 0:
        raise UserError(f"{deb} is not a Debian package ({proc.stderr.strip()})",
                        hint="give a linux-image-*.deb file")
    return proc.stdout.strip()


def unpack(deb: Path) -> Kernel:
    """Unpack a kernel .deb into the cache (once per sha256) and return it."""
    if not deb.is_file():
        raise UserError(f"kernel package {deb}: no such file", hint="check the path")
    package = _deb_field(deb, "Package")
    version = _deb_field(deb, "Version")
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    entry = kernels_dir() / f"{package}_{version}_{sha[:16]}"
    existing = _load(entry)
    if existing:
        return existing
    with home.atomic_dir(entry) as tmp:
        proc = run(["dpkg-deb", "-x", str(deb), str(tmp)], hint=TOOLS_HINT)
        if proc.returncode != 0:
            needed = int(_deb_field(deb, "Installed-Size") or 0) * 1024
            raise faults.tool_failure(proc.stderr, what=f"unpacking kernel {package} into",
                                      where=kernels_dir(), needed=needed) or \
                UserError(f"cannot unpack {deb}: {_last_line(proc.stderr)}", hint="is it complete?")
        paths.unpacked(tmp, f"kernel package {deb.name}")
        vmlinuz = sorted((tmp / "boot").glob("vmlinuz-*")) if (tmp / "boot").is_dir() else []
        if not vmlinuz:
            raise UserError(f"{deb} holds no boot/vmlinuz-*", hint="give a linux-image-*.deb")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        # The whole module tree is kept (users may ask for any module); it costs disk once
        # per kernel, not per image, which holds only the modules it loads.
        shutil.copy2(deb, tmp / "package.deb")
        (tmp / "kernel.json").write_text(json.dumps(
            {"package": package, "version": version, "sha256": sha, "release": release},
            indent=2))
    kernel = _load(entry)
    assert kernel is not None
    return kernel


def fetch(name: str = DEFAULT_KERNEL) -> Kernel:
    """Resolve `name` with apt, download and unpack it; pins the name to the result."""
    real = resolve_name(name)
    with home.scratch("kernel") as tmp:
        proc = run(["apt-get", "download", real], cwd=tmp, hint=TOOLS_HINT)
        debs = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise UserError(f"cannot download kernel package {real}: "
                            f"{(proc.stderr.strip().splitlines() or ['no .deb'])[-1]}",
                            hint="check apt's network access, or give a .deb with --kernel PATH")
        kernel = unpack(debs[0])
    names = _names()
    names[name] = names[real] = kernel.root.name
    home.atomic_write(names_file(), json.dumps(names, indent=2, sort_keys=True))
    return kernel


def _last_line(text: str) -> str:
    """A tool's last word: its error, without the lines (one per file for tar) before it."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"


def get(spec: str = DEFAULT_KERNEL, *, base_dir: Path | None = None) -> Kernel:
    """The kernel for a setting value: a .deb path, or a package name (pinned, else fetched)."""
    if is_deb_path(spec):
        path = Path(spec)
        if not path.is_absolute() and base_dir:
            path = base_dir / path
        return unpack(path)
    pinned = _names().get(spec)
    if pinned:
        kernel = _load(kernels_dir() / pinned)
        if kernel:
            return kernel
    if spec in buildable():
        raise UserError(f"kernel {spec} is not built on this machine",
                        hint=f"build it once with 'engitor kernel build {spec}' "
                             "(a few minutes; it is cached)")
    if not spec.startswith("linux-"):
        # Not a Debian package name: asking apt would only say it does not know it.
        close = did_you_mean(spec, [*_names(), *buildable()])
        raise UserError(f"unknown kernel {spec!r}",
                        hint=(close + " " if close else "") +
                        "'engitor kernel list' shows the kernels here; a Debian kernel "
                        "package (linux-image-…) or a .deb path also works")
    try:
        return fetch(spec)
    except UserError as e:
        raise UserError(f"kernel {spec} is not cached and could not be fetched ({e.message})",
                        hint="when online run 'engitor kernel fetch', or offline give a kernel "
                             ".deb with --kernel PATH") from None


def pinned(spec: str) -> Kernel | None:
    """The unpacked kernel a package name is pinned to, without asking apt; None when a fetch
    (or a .deb) would decide it."""
    if is_deb_path(spec):
        return None
    pinned = _names().get(spec)
    return _load(kernels_dir() / pinned) if pinned else None
