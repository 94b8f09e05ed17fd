"""A unified kernel image: systemd's EFI stub with the kernel, initrd, command line and
os-release added as PE sections, so one EFI binary boots the image.

bookworm has no ukify (systemd 252): objcopy adds the sections at increasing virtual addresses
past the stub's own, as systemd-stub(7) describes; the result is then made reproducible (pe.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from engitor.export import pe, tools

PAGE = 4096
# Section order in the address space: the stub finds them by name; the initrd goes last so
# its size, the one that varies most, moves nothing else.
SECTIONS = (".osrel", ".cmdline", ".linux", ".initrd")


def os_release(name: str, image_id: str) -> str:
    return (f'NAME="engitor"\nID=engitor\nPRETTY_NAME="engitor image {name}"\n'
            f"IMAGE_ID={name}\nIMAGE_VERSION={image_id[:12]}\n")


def objcopy_argv(stub: Path, out: Path, files: dict[str, Path], start: int) -> list[str]:
    """objcopy arguments adding `files` (section name -> file) from address `start` on."""
    argv = ["objcopy"]
    vma = start
    for name in SECTIONS:
        path = files[name]
        argv += [f"--add-section={name}={path}", f"--change-section-vma={name}={vma:#x}"]
        vma = pe.align(vma + path.stat().st_size, PAGE)
    return [*argv, str(stub), str(out)]


def build(*, kernel: Path, initrd: Path, cmdline: str, osrel: str, out: Path,
          timestamp: int = 0) -> Path:
    """Write the UKI to `out` (not yet signed)."""
    stub = tools.need_file(tools.STUB)
    tools.need("objcopy")
    layout = pe.layout(stub.read_bytes())
    start = layout.image_base + pe.align(layout.end_of_image(), PAGE)
    with tempfile.TemporaryDirectory(prefix="engitor-uki-") as tmp:
        texts = {".osrel": osrel, ".cmdline": cmdline}
        files = {".linux": kernel, ".initrd": initrd}
        for name, text in texts.items():
            path = Path(tmp) / name.lstrip(".")
            path.write_text(text)
            files[name] = path
        raw = Path(tmp) / "uki.efi"
        tools.run(objcopy_argv(stub, raw, files, start))
        out.write_bytes(pe.normalize(raw.read_bytes(), timestamp))
    return out
