"""The few PE/COFF header fields a reproducible UKI needs: section layout, timestamp, checksum.

objcopy (binutils 2.40) stamps the build time into the COFF header and leaves the optional
header's checksum stale; both are fixed up after every objcopy run so the same inputs give the
same bytes. Offsets are from the PE/COFF specification (PE32+ only: x86-64 EFI binaries).
"""

from __future__ import annotations

import array
import struct
import sys
from dataclasses import dataclass

PE32_PLUS = 0x20B
CHECKSUM_AT = 64  # offset of CheckSum within the optional header (PE32 and PE32+ alike)


@dataclass(frozen=True)
class Section:
    name: str
    vaddr: int
    vsize: int
    raw_size: int
    raw_offset: int


@dataclass(frozen=True)
class Layout:
    coff_at: int  # offset of the COFF file header (after "PE\0\0")
    optional_at: int
    section_alignment: int
    image_base: int
    sections: tuple[Section, ...]

    def end_of_image(self) -> int:
        """First virtual address past the last section, aligned: where new sections may go."""
        end = max(s.vaddr + max(s.vsize, s.raw_size) for s in self.sections)
        return align(end, self.section_alignment)


def align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def layout(data: bytes) -> Layout:
    if data[:2] != b"MZ":
        raise ValueError("not a PE file (no MZ header)")
    pe_at = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe_at:pe_at + 4] != b"PE\0\0":
        raise ValueError("not a PE file (no PE signature)")
    coff_at = pe_at + 4
    nsections, optional_size = struct.unpack_from("<H", data, coff_at + 2)[0], \
        struct.unpack_from("<H", data, coff_at + 16)[0]
    optional_at = coff_at + 20
    if struct.unpack_from("<H", data, optional_at)[0] != PE32_PLUS:
        raise ValueError("not a PE32+ (64-bit) image")
    image_base = struct.unpack_from("<Q", data, optional_at + 24)[0]
    section_alignment = struct.unpack_from("<I", data, optional_at + 32)[0]
    table = optional_at + optional_size
    sections = []
    for i in range(nsections):
        at = table + 40 * i
        name = data[at:at + 8].rstrip(b"\0").decode(errors="replace")
        vsize, vaddr, raw_size, raw_offset = struct.unpack_from("<IIII", data, at + 8)
        sections.append(Section(name, vaddr, vsize, raw_size, raw_offset))
    return Layout(coff_at, optional_at, section_alignment, image_base, tuple(sections))


def checksum(data: bytes, checksum_at: int) -> int:
    """The PE image checksum: 16-bit one's-complement-style sum of the file with the checksum
    field taken as zero, folded, plus the file length (as imagehlp's CheckSumMappedFile)."""
    buf = bytearray(data)
    buf[checksum_at:checksum_at + 4] = b"\0\0\0\0"
    if len(buf) % 2:
        buf.append(0)
    words = array.array("H", bytes(buf))  # 4x faster than struct for a 16 MiB UKI
    if sys.byteorder == "big":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (total + len(data)) & 0xFFFFFFFF


def normalize(data: bytes, timestamp: int = 0) -> bytes:
    """`data` with a fixed COFF timestamp and a correct optional-header checksum."""
    lay = layout(data)
    out = bytearray(data)
    struct.pack_into("<I", out, lay.coff_at + 4, timestamp)
    at = lay.optional_at + CHECKSUM_AT
    struct.pack_into("<I", out, at, checksum(bytes(out), at))
    return bytes(out)
