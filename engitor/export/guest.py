"""What an image needs beyond engitor's microvm: drivers for PCI machines and clouds, DHCP,
and a console where clouds show it. Added at export as a second initramfs archive after the
image's own (the kernel unpacks concatenated archives in order; later entries win), so the
image itself, its id and its microvm boots stay as they are.

The drivers are not loaded from a fixed list: the overlay carries, for every module, the device
patterns of its `alias=` entries (read from .modinfo here, on the host), and the guest init
loads a module when a device's /sys/bus/*/devices/*/modalias matches one (fnmatch), repeating
until no new device appears (virtio_pci reveals virtio devices; hv_vmbus reveals the VMBus NIC).
"""

from __future__ import annotations

from pathlib import Path

from engitor import cpio
from engitor.cpio import Entry
from engitor.errors import UserError
from engitor.image import kernel, kmod
from engitor.kernel_traits import KernelTraits

# virtio over PCI (q35, i440fx, KubeVirt, OpenStack, GCE), its disks, and the NICs of AWS (ena),
# GCE (gve) and Azure (hv_netvsc over VMBus) that Debian's cloud kernel builds as modules.
DEPLOY_MODULES = ("virtio_pci", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_net",
                  "virtio_blk", "virtio_scsi", "ena", "gve", "hv_netvsc")
DEPLOY_CONFIG = "/.engitor/deploy"
# Both consoles: tty0 is the screen clouds show; the last console= (the image's ttyS0) becomes
# /dev/console, the serial log clouds keep (AWS get-console-output, GCE serial port, Azure).
CONSOLE = "console=tty0"


def check_kernel(traits: KernelTraits, package: str) -> None:
    """An exported disk boots on PC machines and clouds: its kernel must load the PCI and cloud
    drivers as modules. A kernel built for engitor's microvm (virtio-mmio, no module loader)
    cannot."""
    if not traits.modules:
        raise UserError(f"image's kernel {package} is built for engitor's microvm (virtio-mmio, "
                        "no modules); an exported disk boots on PC machines and clouds, which "
                        "need virtio-pci and their drivers",
                        hint="build the image for export with Debian's kernel, the default "
                             "(leave out --kernel / kernel =)")


def modules_dir(manifest: dict) -> tuple[Path, str]:
    """The module tree of the kernel the image was built with, and its release: found in the
    kernel cache by the .deb's sha256 the manifest records (entries are named after it)."""
    meta = manifest.get("kernel", {})
    check_kernel(KernelTraits.from_json(meta.get("traits")), str(meta.get("package", "?")))
    sha, release = str(meta.get("sha256", "")), str(meta.get("release", ""))
    cache = kernel.kernels_dir()
    named = cache / f"{meta.get('package')}_{meta.get('version')}_{sha[:16]}"
    candidates = [named, *sorted(cache.glob(f"*_{sha[:16]}"))] if sha else []
    for root in candidates:
        tree = root / "lib" / "modules" / release
        if release and tree.is_dir():
            return tree, release
    package = meta.get("package", "?")
    raise UserError(f"the image's kernel ({package}, sha256 {sha[:12]}) is not in the cache",
                    hint="rebuild the image ('engitor build') so its kernel is fetched again")


def modalias_lines(modules: list[kmod.Module], base: str) -> list[str]:
    """`modalias PATTERN PATH...` for every alias of every module: the module's dependency
    closure in load order, so the init can load a match without a modules.dep."""
    by_name = {m.name: m for m in modules}

    def closure(name: str, out: list[str]) -> list[str]:
        for dep in by_name[name].depends:
            if dep in by_name:
                closure(dep, out)
        path = f"{base}/{by_name[name].rel}"
        if path not in out:
            out.append(path)
        return out

    lines = []
    for module in modules:
        for pattern in kmod.modinfo(module.path).get("alias", []):
            if " " not in pattern:
                lines.append(f"modalias {pattern} {' '.join(closure(module.name, []))}")
    return lines


def network_mode(manifest: dict) -> str:
    """`auto` (the default) means static on engitor's microvm, DHCP once exported."""
    mode = manifest.get("network", "auto")
    return "dhcp" if mode == "auto" else mode


def overlay(manifest: dict) -> bytes:
    """The compressed archive to append after the image's initrd."""
    tree, release = modules_dir(manifest)
    builtin = kmod.builtin(tree)
    wanted = [m for m in DEPLOY_MODULES if m not in builtin]
    modules = kmod.resolve(tree, wanted)
    base = f"/lib/modules/{release}"
    have = set(manifest.get("modules", []))
    entries = {f"{base}/{m.rel}": Entry.file(f"{base}/{m.rel}", source=m.path)
               for m in modules if m.name not in have}
    config = [f"network {network_mode(manifest)}", *modalias_lines(modules, base)]
    entries[DEPLOY_CONFIG] = Entry.file(DEPLOY_CONFIG, data=("\n".join(config) + "\n").encode(),
                                        mode=0o600)
    return cpio.compress(cpio.archive(entries))


def initrd(stored_initrd: Path, manifest: dict) -> bytes:
    """The image's initrd with the deploy overlay after it (4-byte aligned, as the kernel
    requires between archives)."""
    first = stored_initrd.read_bytes()
    return first + b"\0" * (-len(first) % 4) + overlay(manifest)


def cmdline(stored_cmdline: str) -> str:
    return f"{CONSOLE} {stored_cmdline}"
