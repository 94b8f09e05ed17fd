"""The shared-library closure of a program, read from its ELF headers (never by running it).

A worklist over PT_INTERP and DT_NEEDED, searching the way glibc's ld.so does: DT_RPATH of the
loading chain (when the object has no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, then the
system directories. $ORIGIN, $LIB and $PLATFORM are expanded. Objects for another architecture
found on a search path are skipped, as ld.so skips them.

Lookups can go through several roots (a runtime package's unpacked tree first, then the host):
a guest path `/usr/lib/x/libfoo.so` is looked up as `ROOT/usr/lib/x/libfoo.so` in each root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from engitor.errors import UserError

EM_X86_64 = "EM_X86_64"
# Debian's multiarch ld.so trusted directories, in its search order.
SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
               "/lib64", "/usr/lib64")
LIB_EXPANSION = "lib/x86_64-linux-gnu"
PLATFORM = "x86_64"


@dataclass(frozen=True)
class ElfInfo:
    machine: str
    elfclass: int
    kind: str  # ET_EXEC, ET_DYN
    interp: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None
    go: bool  # a Go binary (has .go.buildinfo or .gopclntab)

    @property
    def static(self) -> bool:
        return self.interp is None and not self.needed


@dataclass
class Closure:
    """Guest path -> host path of every object the program needs, program included."""

    program: str
    objects: dict[str, Path] = field(default_factory=dict)
    needed_by: dict[str, str] = field(default_factory=dict)
    # Directories outside ld.so's defaults where libraries were found (via ld.so.conf): the guest
    # has no ld.so.cache, so the image points LD_LIBRARY_PATH at them.
    extra_dirs: list[str] = field(default_factory=list)
    info: ElfInfo | None = None
    # Host directories looked in, in order: a library appearing in one of them could change
    # the result, so an unchanged-rebuild check watches them (engitor.image.quick).
    searched: list[str] = field(default_factory=list)


def read_elf(path: Path, shown: str | None = None, *, detail: bool = True) -> ElfInfo:
    """Parse the headers we need; UserError for what is not a usable ELF file.

    `detail` also looks at section names (is it a Go binary?): wanted for the program, not for
    each library searched.
    """
    shown = shown or str(path)
    if path.is_dir():
        raise UserError(f"{shown} is a directory, not a program",
                        hint="give the path of an executable file inside it")
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{shown}: no such file", hint="check the path") from None
    except PermissionError:
        raise UserError(f"{shown}: permission denied", hint="check the file's mode") from None
    # pyelftools is imported here: an unchanged rebuild (engitor.image.quick) never needs it.
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSegment
    from elftools.elf.elffile import ELFFile
    from elftools.elf.segments import InterpSegment

    with f:
        if f.read(4) != b"\x7fELF":
            raise UserError(f"{shown} is not an ELF executable",
                            hint="engitor runs compiled Linux programs; for scripts use a "
                                 "runtime package (engitor load python3 -a script.py)")
        f.seek(0)
        try:
            elf = ELFFile(f)
            interp = None
            needed: list[str] = []
            rpath: list[str] = []
            runpath: list[str] = []
            soname = None
            # The dynamic table is read from its segment, as ld.so does: walking the section
            # headers of every library costs ten times more and a stripped object may lack them.
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name() if isinstance(seg, InterpSegment) else None
                elif isinstance(seg, DynamicSegment):
                    tags: Iterable[Any] = seg.iter_tags()  # attributes named by their tag
                    for tag in tags:
                        t = tag.entry.d_tag
                        if t == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif t == "DT_RPATH":
                            rpath += tag.rpath.split(":")
                        elif t == "DT_RUNPATH":
                            runpath += tag.runpath.split(":")
                        elif t == "DT_SONAME":
                            soname = tag.soname
            go = detail and (elf.get_section_by_name(".go.buildinfo") is not None
                             or elf.get_section_by_name(".gopclntab") is not None)
            return ElfInfo(elf["e_machine"], elf.elfclass, elf["e_type"], interp, tuple(needed),
                           tuple(p for p in rpath if p), tuple(p for p in runpath if p), soname,
                           bool(go))
        except ELFError as e:
            raise UserError(f"{shown} is a damaged ELF file ({e})", hint="rebuild it") from None
        except Exception as e:  # a hostile header makes pyelftools fail in any way
            raise UserError(f"{shown} is a damaged ELF file ({type(e).__name__}: {e})",
                            hint="rebuild it") from None


def check_machine(info: ElfInfo, shown: str) -> None:
    if info.machine != EM_X86_64 or info.elfclass != 64:
        arch = {"EM_AARCH64": "arm64", "EM_386": "i386", "EM_ARM": "arm",
                "EM_RISCV": "riscv"}.get(info.machine, info.machine)
        raise UserError(f"{shown} is built for {arch} ({info.elfclass}-bit), not x86-64",
                        hint="engitor runs x86-64 guests: build the program for x86-64")
    if info.kind not in ("ET_EXEC", "ET_DYN"):
        raise UserError(f"{shown} is an ELF file of type {info.kind}, not a program or library",
                        hint="link it into an executable")


# A search directory: its guest path, and where it is on the host when that is not simply the
# guest path under one of the roots ($ORIGIN entries: the object's own folder on the host).
SearchDir = tuple[str, str | None]
_TOKEN = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _expand(entry: str, guest_origin: str, host_origin: str) -> SearchDir:
    """An RPATH/RUNPATH entry as a search directory. $ORIGIN is where the object sits: in the
    guest for the path the loader will use, on the host for where the files are now."""
    def sub(origin: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return {"ORIGIN": origin, "LIB": LIB_EXPANSION,
                    "PLATFORM": PLATFORM}.get(name, m.group(0))
        path = os.path.normpath(_TOKEN.sub(one, entry))
        return "/" + path.lstrip("/") if path.startswith("//") else path  # POSIX keeps a //
    if "ORIGIN" not in entry:
        return sub(guest_origin), None
    return sub(guest_origin), sub(host_origin)


def ld_so_conf_dirs(root: Path = Path("/")) -> list[str]:
    """Directories listed in ROOT/etc/ld.so.conf and its includes, in order."""
    out: list[str] = []

    def read(path: Path, depth: int = 0) -> None:
        if depth > 8 or not path.is_file():
            return
        for line in path.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include"):
                pattern = line.split(None, 1)[1]
                base = root / pattern.lstrip("/")
                for inc in sorted(base.parent.glob(base.name)):
                    read(inc, depth + 1)
            elif line.startswith("/"):
                out.append(os.path.normpath(line))

    read(root / "etc/ld.so.conf")
    return out


class Resolver:
    def __init__(self, roots: Sequence[Path] = (Path("/"),),
                 library_path: Sequence[str] = ()):
        self.roots = [Path(r) for r in roots]
        self.library_path = [p for p in library_path if p]
        conf: list[str] = []
        for r in self.roots:
            conf += [d for d in ld_so_conf_dirs(r) if d not in conf]
        self.conf_dirs = [d for d in conf if d not in SYSTEM_DIRS]
        self._infos: dict[Path, ElfInfo] = {}
        self.searched: dict[str, None] = {}

    def host(self, guest: str) -> Path | None:
        """The first root holding `guest` (a file, after symlinks)."""
        for root in self.roots:
            candidate = root / guest.lstrip("/")
            if candidate.is_file():
                return candidate
        return None

    def info(self, host: Path, detail: bool = False) -> ElfInfo:
        real = host.resolve()
        if real not in self._infos:
            self._infos[real] = read_elf(real, str(host), detail=detail)
        return self._infos[real]

    @staticmethod
    def compatible(host: Path) -> bool:
        """An x86-64 ELF object, judged from its first 20 bytes as ld.so does."""
        try:
            with host.open("rb") as f:
                head = f.read(20)
        except OSError:
            return False
        # magic, ELFCLASS64, little-endian, e_machine EM_X86_64 (62)
        return (len(head) == 20 and head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1
                and int.from_bytes(head[18:20], "little") == 62)

    def find(self, name: str, dirs: Sequence[SearchDir]) -> tuple[str, Path] | None:
        for guest_dir, host_dir in dirs:
            guest = os.path.normpath(str(PurePosixPath(guest_dir) / name))
            if host_dir is not None:
                self.searched.setdefault(host_dir)
                candidate = Path(host_dir) / name
                host = candidate if candidate.is_file() else None
            else:
                for root in self.roots:
                    self.searched.setdefault(os.path.normpath(str(root / guest_dir.lstrip("/"))))
                host = self.host(guest)
            if host and self.compatible(host):
                return guest, host
        return None

    def closure(self, program_guest: str, program_host: Path,
                program: ElfInfo | None = None) -> Closure:
        """The program's closure; `program` is its ElfInfo (read with detail) when the caller
        has read it already: an ELF file is parsed once per build."""
        if program is not None:
            self._infos.setdefault(program_host.resolve(), program)
        info = self.info(program_host, detail=True)
        check_machine(info, str(program_host))
        result = Closure(program=program_guest, info=info)
        result.objects[program_guest] = program_host
        # Worklist of (guest path, host path, DT_RPATH dirs of the loaders above it, nearest first).
        todo: list[tuple[str, Path, tuple[SearchDir, ...]]] = [(program_guest, program_host, ())]
        if info.interp:
            host = self.host(info.interp)
            if host is None:
                raise UserError(f"the program's interpreter {info.interp} was not found",
                                hint=f"{program_host} needs it (PT_INTERP); install its libc")
            result.objects[info.interp] = host
            result.needed_by[info.interp] = program_guest
        seen = {program_guest}
        while todo:
            guest, host, chain = todo.pop(0)
            obj = self.info(host)
            guest_origin = str(PurePosixPath(guest).parent)
            host_origin = str(host.resolve().parent)
            rpath = tuple(_expand(p, guest_origin, host_origin) for p in obj.rpath)
            runpath = [_expand(p, guest_origin, host_origin) for p in obj.runpath]
            # Without DT_RUNPATH, this object's DT_RPATH and then its loaders' apply.
            chain_here = rpath + chain if not runpath else ()
            plain = [(d, None) for d in (*self.library_path, *SYSTEM_DIRS, *self.conf_dirs)]
            for name in obj.needed:
                if "/" in name:
                    dirs: list[SearchDir] = [(str(PurePosixPath(name).parent), None)]
                    base = PurePosixPath(name).name
                else:
                    dirs = [*chain_here, *plain[:len(self.library_path)], *runpath,
                            *plain[len(self.library_path):]]
                    base = name
                found = self.find(base, dirs)
                if found is None:
                    searched = ", ".join(dict.fromkeys(
                        g if h is None or h == g else f"{g} (on the host {h})" for g, h in dirs))
                    raise UserError(f"library {name} not found (needed by {guest})",
                                    hint=f"install the package that provides it; searched {searched}")
                lib_guest, lib_host = found
                lib_dir = str(PurePosixPath(lib_guest).parent)
                if lib_dir in self.conf_dirs and lib_dir not in result.extra_dirs:
                    result.extra_dirs.append(lib_dir)
                if lib_guest in seen:
                    continue
                seen.add(lib_guest)
                result.objects[lib_guest] = lib_host
                result.needed_by[lib_guest] = guest
                todo.append((lib_guest, lib_host, rpath + chain))
        result.searched = list(self.searched)
        return result


def closure(program_guest: str, program_host: Path, *, roots: Sequence[Path] = (Path("/"),),
            library_path: Sequence[str] = (), program: ElfInfo | None = None) -> Closure:
    return Resolver(roots, library_path).closure(program_guest, program_host, program)
