"""Kernel configurations: read a `.config` or a fragment, check that a fragment took effect, and
derive a kernel's traits from its config and files.

`scripts/kconfig/merge_config.sh` only warns when an option of a fragment does not stick (its
dependencies are unmet, or the source has no such option), and `make olddefconfig` silently drops
it: a kernel would then lack, say, the power button, and graceful stops would hang. So every
option is compared with the final `.config`, and an option no Kconfig file declares is named as
unknown rather than as "did not stick".
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from engitor.kernel_traits import KernelTraits

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")
_DECLARED = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Option:
    name: str   # without CONFIG_
    value: str  # "y", "m", "n" (not set), a number or a quoted string, as .config writes it
    line: int   # in the file it was read from


def parse(text: str) -> list[Option]:
    """The options a .config or a fragment sets, in order; comments and blanks skipped."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _SET.match(line):
            out.append(Option(m[1], m[2].strip(), number))
        elif m := _UNSET.match(line):
            out.append(Option(m[1], "n", number))
    return out


def values(text: str) -> dict[str, str]:
    return {o.name: o.value for o in parse(text)}


def declared_symbols(source: Path) -> set[str]:
    """Every option a kernel source declares (`config X` / `menuconfig X` in its Kconfig files)."""
    names: set[str] = set()
    for path in source.rglob("Kconfig*"):
        if path.is_file():
            names.update(_DECLARED.findall(path.read_text(errors="replace")))
    return names


@dataclass(frozen=True)
class Mismatch:
    option: Option
    got: str | None  # the final .config's value; None: absent (unknown, or its menu is off)
    known: bool      # the source declares the option

    def describe(self) -> str:
        wanted = "not set" if self.option.value == "n" else f"={self.option.value}"
        if not self.known:
            return f"CONFIG_{self.option.name} is not an option of this kernel source"
        got = "not set" if self.got in (None, "n") else f"={self.got}"
        return (f"CONFIG_{self.option.name} did not take effect (asked {wanted}, "
                f"the config has it {got}: its dependencies are not met)")


def check(fragment: list[Option], config: dict[str, str], known: set[str]) -> list[Mismatch]:
    """The fragment's options the final config does not have as asked."""
    out = []
    for opt in fragment:
        got = config.get(opt.name)
        if opt.value == "n" and got in (None, "n"):
            continue  # unset, or absent because what it lives under is off: either way not built
        if got == opt.value:
            continue
        out.append(Mismatch(opt, got, opt.name in known))
    return out


# -- traits ---------------------------------------------------------------------------------

XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point QEMU looks for in an ELF -kernel


def bzimage_init_size(path: Path) -> int:
    """The memory a bzImage needs to decompress and start (boot protocol >= 2.10 `init_size`),
    0 if the file is not a bzImage."""
    with path.open("rb") as f:
        head = f.read(0x264)
    if len(head) < 0x264 or head[0x202:0x206] != b"HdrS":
        return 0
    version = struct.unpack_from("<H", head, 0x206)[0]
    return struct.unpack_from("<I", head, 0x260)[0] if version >= 0x20A else 0


def has_pvh_note(vmlinux: Path) -> bool:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import NoteSection

    try:
        with vmlinux.open("rb") as f:
            for section in ELFFile(f).iter_sections():
                if not isinstance(section, NoteSection):
                    continue
                for note in section.iter_notes():
                    if note["n_name"] == "Xen" and note["n_type"] == XEN_ELFNOTE_PHYS32_ENTRY:
                        return True
    except (OSError, ELFError):
        return False
    return False


def traits(config: dict[str, str], bzimage: Path, vmlinux: Path | None = None) -> KernelTraits:
    """A kernel's traits from its config and its files (a vmlinux only counts with PVH)."""
    pvh = vmlinux is not None and vmlinux.is_file() and has_pvh_note(vmlinux)
    nr_cpus, hz = config.get("NR_CPUS", "0"), config.get("HZ", "0")
    return KernelTraits(
        modules=config.get("MODULES") == "y",
        smp=config.get("SMP") == "y",
        max_cpus=int(nr_cpus) if nr_cpus.isdigit() else 0,
        io_apic=config.get("X86_IO_APIC") == "y",
        pvh=pvh,
        size=bzimage.stat().st_size,
        init_size=bzimage_init_size(bzimage),
        vmlinux_size=vmlinux.stat().st_size if pvh and vmlinux is not None else 0,
        hz=int(hz) if hz.isdigit() else 0,
        lapic_timer_period=config.get("X86_LAPIC_TIMER_PERIOD") == "y",
    )
