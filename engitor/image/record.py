"""What a manifest records besides the file index, for `inspect`, `diff` and `sbom` to read
without unpacking an image: which files are executables, the Debian packages a runtime image
came from (version, source package, licence), the users /etc/passwd names, the run settings.

Licences come from each package's /usr/share/doc/PKG/copyright, in the unpacked package cache
(images drop /usr/share/doc); only machine-readable (DEP-5) files give one, else NOASSERTION.
What a .deb says of itself (its Source) and its licence are kept in cache/debinfo, computed
once per package version.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import stat
import struct
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engitor import home, store
from engitor.image import licenses
from engitor.recipe import volumes

if TYPE_CHECKING:
    from engitor.packages import Tree

DEBINFO_FORMAT = 1
HEAD = 4096  # enough of an ELF file for its header and (nearly always) its program headers


SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")


def exec_kind(head: bytes, mode: int, path: str = "") -> str | None:
    """'program' (an ELF executable, PIE included), 'script' (#!, runs only with its
    interpreter), 'library' (an ELF shared object: libc.so.6 can be run, yet it is a library,
    as its name says), or None."""
    if not mode & 0o111:
        return None
    if head.startswith(b"#!"):
        return "script"
    if head[:4] != b"\x7fELF" or len(head) < 64 or head[4] != 2:
        return None
    e_type = struct.unpack_from("<H", head, 16)[0]
    if e_type == 2:
        return "program"
    if e_type != 3:
        return None
    phoff = struct.unpack_from("<Q", head, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + 4 > len(head):
            break
        if struct.unpack_from("<I", head, at)[0] == 3:  # PT_INTERP: it can be run
            return "library" if SHARED_OBJECT.search(path) else "program"
    return "library"


def users(passwd: bytes) -> list[dict[str, Any]]:
    out = []
    for line in passwd.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            out.append({"name": parts[0], "uid": int(parts[2]), "gid": int(parts[3]),
                        "home": parts[5], "shell": parts[6]})
    return out


# ---------------------------------------------------------------------------------------------
# Debian packages


def _ar_members(data: bytes) -> dict[str, bytes]:
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, off = {}, 8
    while off + 60 <= len(data):
        name = data[off:off + 16].decode().strip().rstrip("/")
        size = int(data[off + 48:off + 58].decode().strip())
        out[name] = data[off + 60:off + 60 + size]
        off += 60 + size + (size % 2)
    return out


def deb_control(path: Path) -> dict[str, str]:
    """The control fields of a .deb, read in-process (dpkg-deb per package costs more)."""
    members = _ar_members(path.read_bytes())
    name = next(n for n in members if n.startswith("control.tar"))
    raw = members[name]
    if name.endswith(".xz"):
        raw = lzma.decompress(raw)
    elif name.endswith(".gz"):
        raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    elif name.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = next(m for m in tar.getmembers() if m.name.lstrip("./") == "control")
        text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _copyright(units: list[Any], package: str, root: Path) -> str | None:
    """The text of a package's copyright file; its doc folder may be a link to another
    package's (one source, several binaries), found in the other units."""
    path = root / "usr/share/doc" / package / "copyright"
    if path.is_file():
        return path.read_text(errors="replace")
    link = root / "usr/share/doc" / package
    if link.is_symlink():
        target = PurePosixPath("/usr/share/doc") / PurePosixPath(str(link.readlink()))
        guest = Path(str(target)).resolve().relative_to("/") if target.is_absolute() else None
        for unit in units:
            other = unit.root / str(guest) / "copyright" if guest else None
            if other and other.is_file():
                return other.read_text(errors="replace")
    return None


def _source_of(unit: Any) -> str:
    from engitor.packages import apt

    deb = apt.cached_deb(unit.deb)
    if deb is None:
        return ""
    try:
        source = deb_control(deb).get("Source", "") or unit.deb.package
    except (OSError, ValueError, StopIteration, tarfile.TarError, lzma.LZMAError):
        return ""
    return source.split(" ")[0]  # "Source: name (version)" when it differs


def package_info(unit: Any, units: list[Any]) -> dict[str, Any]:
    """One unpacked package as the manifest records it; cached by package version."""
    cache = home.subdir("cache") / "debinfo" / f"{unit.deb.id}+{unit.source}.json"
    try:
        info = json.loads(cache.read_text())
        if info.get("format") == DEBINFO_FORMAT and info.get("source_package"):
            return info["package"]
    except (OSError, ValueError):
        pass
    text = _copyright(units, unit.deb.package, unit.root)
    licence = licenses.from_copyright(text) if text else None
    source = _source_of(unit)
    out = {"name": unit.deb.package, "version": unit.deb.version, "arch": unit.deb.arch,
           "source": source or None, "origin": unit.deb.origin,
           "license": licence.expression if licence else "NOASSERTION",
           "license_texts": licence.texts if licence else {}}
    if source:  # a .deb gone from the cache may come back: only a complete answer is kept
        home.atomic_write(cache, json.dumps({"format": DEBINFO_FORMAT, "source_package": True,
                                             "package": out}))
    return out


def packages(tree: Tree) -> list[dict[str, Any]]:
    units = list(tree.units)
    return sorted((package_info(u, units) for u in units), key=lambda p: p["name"])


# ---------------------------------------------------------------------------------------------


def annotate(files: list[dict[str, Any]], heads: dict[str, bytes]) -> None:
    """Mark the index's executables (`exec`: program or library) from the files' first bytes."""
    for f in files:
        if "sha256" not in f:
            continue
        kind = exec_kind(heads.get(f["path"], b""), int(f["mode"], 8), f["path"])
        if kind:
            f["exec"] = kind


def _source(source: str, base_dir: Path) -> str:
    """A volume's source as a stored image needs it: a disk file's path made absolute (the
    recipe's folder is not where `engitor run NAME` is typed)."""
    if volumes.kind_of(source) is not volumes.Kind.FILE:
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def extras(*, entries: dict[str, Any], files: list[dict[str, Any]], image: Any,
           packages_seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's additions; `entries` are the image's cpio entries by guest path."""
    heads = {}
    for path, e in entries.items():
        if stat.S_ISREG(e.mode) and e.mode & 0o111:
            if e.data is not None:
                heads[path] = e.data[:HEAD]
            else:
                with e.source.open("rb") as fh:
                    heads[path] = fh.read(HEAD)
    annotate(files, heads)
    passwd = entries.get("/etc/passwd")
    run = {"ports": [str(p) for p in image.ports], "memory": image.memory, "cpus": image.cpus}
    if image.volumes:  # guest path -> source, so the stored image boots with its disks
        run["volumes"] = {guest: _source(src, image.base_dir)
                          for guest, src in image.volumes.items()}
    return {"format": store.MANIFEST_FORMAT, "packages": packages_seen,
            "users": users(passwd.contents()) if passwd is not None else [], "run": run}
