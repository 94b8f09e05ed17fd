"""Small static C programs engitor compiles for itself (the guest init, host probes).

Compiled at first use and cached under cache/cc/ by (source, compiler identity, flags), so a
compiler upgrade or a source change rebuilds. musl (Debian's musl-tools) gives small static
binaries; glibc's static libc is the fallback (~20× larger). musl-gcc does not search
/usr/include, and Debian ships no musl build of the kernel's UAPI headers, so the linux/ and
asm/ trees of linux-libc-dev (libc-independent by design) are linked into a private include
directory.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError
from engitor.proc import run

CFLAGS = ("-static", "-Os", "-s", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections")
INSTALL_HINT = "apt-get install musl-tools linux-libc-dev (or gcc and libc6-dev)"
UAPI = {"linux": "/usr/include/linux", "asm": "/usr/include/x86_64-linux-gnu/asm",
        "asm-generic": "/usr/include/asm-generic"}


@dataclass(frozen=True)
class Compiler:
    argv: tuple[str, ...]
    package: str  # the Debian package that provides it, for doctor's advice
    musl: bool

    @functools.cached_property
    def identity(self) -> str:
        proc = run([*self.argv, "--version"])
        return proc.stdout.splitlines()[0] if proc.stdout else self.argv[0]


def compilers() -> list[Compiler]:
    found = []
    if shutil.which("musl-gcc") and all(Path(p).is_dir() for p in UAPI.values()):
        found.append(Compiler(("musl-gcc",), "musl-tools", True))
    for cc in ("cc", "gcc"):
        if shutil.which(cc) and Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
            found.append(Compiler((cc,), "gcc libc6-dev", False))
            break
    return found


def compile_static(source: Path, include_dirs: Sequence[Path] = ()) -> Path:
    """The static binary built from `source`, compiling it on first use. The headers in
    `include_dirs` (searched with -iquote) are part of the cache key."""
    available = compilers()
    if not available:
        raise UserError(f"no C compiler to build {source.name}",
                        hint=f"engitor compiles its small static helpers once: {INSTALL_HINT}")
    # What the source #includes is part of its key: the files beside it (the init's users.c,
    # volumes.c, ...) and the headers of `include_dirs` (the init's protocol header).
    text = source.read_bytes() + b"".join(
        p.name.encode() + b"\0" + p.read_bytes() for p in sorted(source.parent.glob("*.[ch]"))
        if p != source) + b"".join(
        h.read_bytes() for d in include_dirs for h in sorted(Path(d).glob("*.h")))
    errors = []
    for cc in available:
        key = hashlib.sha256(text + cc.identity.encode() + " ".join(CFLAGS).encode())
        entry = home.subdir("cache") / "cc" / f"{source.stem}-{key.hexdigest()[:24]}"
        if (entry / source.stem).is_file():
            return entry / source.stem
        with home.scratch("cc") as tmp:
            out = tmp / source.stem
            flags = list(CFLAGS) + [f"-iquote{d}" for d in include_dirs]
            if cc.musl:
                include = tmp / "include"
                include.mkdir()
                for name, target in UAPI.items():
                    (include / name).symlink_to(target)
                flags += ["-isystem", str(include)]
            proc = run([*cc.argv, *flags, "-o", str(out), str(source)])
            if proc.returncode != 0:
                errors.append(f"{cc.argv[0]}: {' '.join(proc.stderr.strip().splitlines()[-1:])}")
                continue
            with home.atomic_dir(entry) as tmpdir:
                shutil.copy2(out, tmpdir / source.stem)
        return entry / source.stem
    raise UserError(f"{source.name} failed to compile: " + "; ".join(errors), hint=INSTALL_HINT)
