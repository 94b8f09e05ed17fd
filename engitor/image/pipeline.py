"""The build: a frozen plan, then a flat list of named layout steps — reading `_build()` tells
the story.

Declared `Image` in, `StoredImage` out. plan.resolve() settles every declaration first (hook,
generators, packages, users, program, files, kernel); the layout steps then fill the guest root
(`ctx.entries`, guest path -> `cpio.Entry`) from the plan alone, and the root is hashed into an
input key. If the store already has an image for the key, nothing is written; otherwise the
deterministic initramfs is assembled and stored. Before all that, `quick` checks whether what
the last build of the same declaration read is unchanged (by stat alone).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from engitor import __version__, cpio, faults, home, paths, reflog, store
from engitor.cpio import Entry
from engitor.errors import UserError
from engitor.image import elf, kmod, plan, quick, record, system
from engitor.image import init as guest_init
from engitor.image.context import Context
from engitor.recipe import volumes
from engitor.recipe.model import Image
from engitor.units import mib

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the runner attaches (virtio-mmio transport, network, entropy, the virtio-serial port the
# init reports listening sockets on) and what lets a shutdown request reach init (the ACPI
# power button, seen through evdev).
BASE_MODULES = ("virtio_mmio", "virtio_net", "virtio_rng", "virtio_console", "button", "evdev")
DISK_MODULES = ("virtio_blk",)  # ext4 itself is built into Debian's cloud kernel
# The directories daemons write to without creating them (the FHS's /var); /var/run is a link
# to /run. The initramfs root is itself a tmpfs, so all of it is in RAM unless a volume is
# mounted there.
FHS_DIRS = ("/var", "/var/lib", "/var/log", "/var/tmp", "/var/cache", "/var/spool")
GUEST_ADDR = "10.0.2.15/24"
GUEST_GATEWAY = "10.0.2.2"


def build(image: Image, *, log: Callable[[str], None] = lambda _: None) -> store.StoredImage:
    try:
        with faults.writing(f"building image {image.name}", home.home()), reflog.building():
            return _build(image, log)
    except UserError as e:
        # Whatever went wrong is reported at the image's declaration, unless it knows better.
        if image.where:
            e.located(image.where)
        raise


def _build(image: Image, log: Callable[[str], None]) -> store.StoredImage:
    quick_key = quick.declaration_key(image)
    if quick_key and (same := quick.lookup(quick_key)):
        log(f"unchanged: image {same.short}")
        store.tag(image.name, same)
        return same
    with home.scratch("stage") as staging:
        (staging / "root").mkdir()
        ctx = Context(plan.resolve(image, staging / "root", log), log)
        lay_out(ctx)
        key = input_key(ctx)
        stored = reuse(ctx, key) or assemble_and_store(ctx, key)
    store.tag(image.name, stored)
    if quick_key:
        for path in [*ctx.plan.watched, *ctx.watched]:
            ctx.inputs.setdefault(path, quick.fingerprint(path))
        quick.remember(quick_key, stored, ctx.inputs)
    hook = ctx.image.hooks.get("after_build")
    if hook is not None:
        hook.call({"name": ctx.image.name, "id": stored.id})
    return stored


def lay_out(ctx: Context) -> None:
    """The guest root, from the plan: later steps see (and may replace) what earlier ones put."""
    for entry, category in ctx.plan.source.entries:
        ctx.add(entry, category)
    add_closure(ctx)
    add_files(ctx)
    system.add_file_libraries(ctx)
    system.add_shell(ctx)
    system.add_locale_and_zone(ctx)
    system.add_users(ctx)
    add_modules(ctx)
    add_init(ctx)
    add_etc(ctx)
    add_staged(ctx)


# --------------------------------------------------------------------------------------------


def add_closure(ctx: Context) -> None:
    program = ctx.plan.program
    library_path = [d for d in ctx.image.env.get("LD_LIBRARY_PATH", "").split(":") if d]
    closure = elf.closure(program.guest, program.host, roots=list(ctx.roots),
                          library_path=library_path, program=program.info)
    ctx.watched += closure.searched
    ctx.watched += [str(r / "etc" / name) for r in ctx.roots for name in ("ld.so.conf", "ld.so.conf.d")]
    first_copy: dict[Path, str] = {}
    for guest, host in closure.objects.items():
        if ctx.category.get(guest) == "package":
            continue  # the runtime package has it already, symlinks and all: no second copy
        real = host.resolve()
        if real in first_copy:
            # The same file under two names (ld.so as PT_INTERP and as libc's DT_NEEDED).
            ctx.add(Entry.symlink(guest, first_copy[real]), "libraries")
            continue
        first_copy[real] = guest
        kind = "program" if guest == program.guest else "libraries"
        ctx.add(Entry.file(guest, source=real, mode=0o755), kind)
    ctx.env = {"PATH": DEFAULT_PATH, "HOME": "/", **ctx.image.env}
    if closure.extra_dirs:
        dirs = [*closure.extra_dirs, *library_path]
        ctx.env["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(dirs))
    info = closure.info
    assert info is not None
    kind = "static" if info.static else "dynamic"
    ctx.log(f"program {program.guest} ({kind}{', Go' if info.go else ''}), "
            f"{len(closure.objects) - 1} shared objects")


def _add_tree(ctx: Context, host: Path, guest: str, category: str, tree: Path,
              what: str) -> None:
    """`host` (a file, folder or link in the copied tree `tree`) at `guest`; links are copied as
    links and must point inside the tree (engitor/paths.py, rule 2)."""
    if host.is_symlink():
        paths.tree_link(host, tree, what)
    ctx.add(cpio.entry_for(guest, host), category)
    if host.is_dir() and not host.is_symlink():
        for dirpath, dirnames, filenames in os.walk(host):
            ctx.watched.append(dirpath)  # a file added or removed there changes the image
            dirnames.sort()
            rel = Path(dirpath).relative_to(host)
            for name in sorted(dirnames) + sorted(filenames):
                child_guest = cpio.normalize(str(PurePosixPath(guest) / rel / name))
                child = Path(dirpath) / name
                if child.is_symlink():
                    paths.tree_link(child, tree, what)
                ctx.add(cpio.entry_for(child_guest, child), category)


def add_files(ctx: Context) -> None:
    """The `files`, `dirs` and `map` the plan resolved: a file with its mode, a folder whole."""
    for copy in ctx.plan.copies:
        if copy.tree is None:
            mode = stat.S_IMODE(copy.host.stat().st_mode)
            ctx.add(Entry.file(copy.guest, source=copy.host, mode=mode), "files")
        else:
            _add_tree(ctx, copy.host, copy.guest, "files", copy.tree, copy.what)


def add_modules(ctx: Context) -> None:
    kern = ctx.plan.kernel
    if not kern.traits().modules:
        # Everything such a kernel has is built in, and it could not load a module anyway.
        if ctx.image.modules:
            raise UserError(f"kernel {kern.package} loads no modules, so modules "
                            f"{', '.join(ctx.image.modules)} cannot be added",
                            hint="build the driver into the kernel (=y in its config fragment) "
                                 "or use a Debian kernel", where=ctx.where())
        return
    builtin = kmod.builtin(kern.modules_dir)
    disks = DISK_MODULES if any(m.serial for m in volumes.mounts(ctx.image.volumes)) else ()
    wanted = [m for m in (*BASE_MODULES, *disks, *ctx.image.modules)
              if kmod.canonical(m) not in builtin]
    ctx.modules = kmod.resolve(kern.modules_dir, wanted)
    base = f"/lib/modules/{kern.release}"
    for module in ctx.modules:
        if not paths.inside(module.path, kern.modules_dir):  # a cache unpacked earlier
            paths.unpacked(kern.modules_dir, f"kernel {kern.release}")
        ctx.add(Entry.file(f"{base}/{module.rel}", source=module.path), "modules")


def add_init(ctx: Context) -> None:
    image = ctx.image
    ctx.add(Entry.file("/init", source=guest_init.binary(), mode=0o755), "init")
    base = f"/lib/modules/{ctx.plan.kernel.release}"
    config = guest_init.InitConfig(
        argv=ctx.plan.argv,
        env=tuple(sorted(ctx.env.items())),
        workdir=image.workdir,
        hostname=image.guest_hostname,
        modules=tuple(f"{base}/{m.rel}" for m in ctx.modules),
        addr=GUEST_ADDR,
        gateway=GUEST_GATEWAY,
        stop_timeout=image.stop_timeout,
        volumes=tuple((m.serial, m.guest) for m in volumes.mounts(image.volumes)),
        **ctx.init_extra,
        network=image.network.on_microvm(),
    )
    ctx.add(Entry.file("/.engitor/init", data=config.render(), mode=0o600), "init")


def add_etc(ctx: Context) -> None:
    """The little a Linux program expects from /etc and /; no shell, no logins."""
    image = ctx.image
    host = image.guest_hostname
    for d in ("/proc", "/sys", "/dev", "/tmp", "/run", "/etc"):
        ctx.add(Entry.directory(d, 0o1777 if d == "/tmp" else 0o755), "etc")
    for d in FHS_DIRS:  # the image's own (a package's modes and owners) win
        if d not in ctx.entries:
            ctx.add(Entry.directory(d, 0o1777 if d == "/var/tmp" else 0o755), "etc")
    if not any(p == "/var/run" or p.startswith("/var/run/") for p in ctx.entries):
        ctx.add(Entry.symlink("/var/run", "/run"), "etc")
    ctx.add(Entry.chardev("/dev/console", 5, 1), "etc")
    etc = {
        "/etc/hostname": f"{host}\n",
        "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n10.0.2.15\t{host}\n",
        "/etc/resolv.conf": "".join(f"nameserver {ns}\n" for ns in image.nameservers),
        # Name-service entries only (programs look up root and nobody); no passwords, no shells.
        "/etc/passwd": "root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n",
        "/etc/group": "root:x:0:\nnogroup:x:65534:\n",
        "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    }
    for path, text in etc.items():
        if path not in ctx.entries:  # the user's own files win
            ctx.add(Entry.file(path, data=text.encode()), "etc")


def add_staged(ctx: Context) -> None:
    """What before_build wrote under the staging root joins the image, over everything else."""
    staging = ctx.plan.staging
    for dirpath, dirnames, filenames in os.walk(staging):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            host = Path(dirpath) / name
            ctx.add(cpio.entry_for("/" + str(host.relative_to(staging)), host), "files")


def _digest(entry: Entry) -> str:
    if entry.source is not None and entry.data is None:
        with entry.source.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return hashlib.sha256(entry.contents()).hexdigest()


def input_key(ctx: Context) -> str:
    """A hash of everything that determines the image; equal keys mean equal images."""
    h = hashlib.sha256()
    h.update(json.dumps([__version__, cpio.COMPRESSION, cpio.ZSTD_LEVEL, cpio.source_date_epoch(),
                         ctx.plan.kernel.sha256, ctx.plan.cmdline]).encode())
    for path in sorted(ctx.entries):
        e = ctx.entries[path]
        h.update(f"{path}\0{e.mode:o}\0{e.target or ''}\0{e.rdev}\0".encode())
        if e.source is not None:
            # Taken before the contents are read: a change during the read shows next time.
            ctx.inputs[str(e.source)] = quick.fingerprint(str(e.source))
        if stat.S_ISREG(e.mode):
            h.update(_digest(e).encode())
    return h.hexdigest()


def reuse(ctx: Context, key: str) -> store.StoredImage | None:
    found = store.by_key(key)
    if found:
        ctx.log(f"unchanged: image {found.short}")
    return found


def _sizes(ctx: Context) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path, e in ctx.entries.items():
        if stat.S_ISREG(e.mode):
            n = len(e.data) if e.data is not None else e.source.stat().st_size  # type: ignore[union-attr]
            bucket = ctx.category.get(path, "files")
            sizes[bucket] = sizes.get(bucket, 0) + n
    return sizes


def _file_index(ctx: Context) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    for path in sorted(ctx.entries):
        e = ctx.entries[path]
        if stat.S_ISREG(e.mode):
            body = e.contents()
            files.append({"path": path, "size": len(body), "mode": f"{stat.S_IMODE(e.mode):o}",
                          "sha256": hashlib.sha256(body).hexdigest(),
                          "kind": ctx.category.get(path, "files")})
        elif stat.S_ISLNK(e.mode):
            files.append({"path": path, "symlink": e.target})
    return files


def assemble_and_store(ctx: Context, key: str) -> store.StoredImage:
    plan, kern = ctx.plan, ctx.plan.kernel
    raw = cpio.archive(ctx.entries)
    initrd = cpio.compress(raw)
    traits = kern.traits()
    files = _file_index(ctx)
    manifest: dict[str, Any] = {
        "name": ctx.image.name,
        "engitor": __version__,
        "kernel": {"package": kern.package, "version": kern.version,
                   "sha256": kern.sha256, "release": kern.release,
                   "size": kern.vmlinuz.stat().st_size,
                   "traits": traits.to_json()},
        "cmdline": plan.cmdline,
        "program": plan.program.guest,
        "argv": list(plan.argv),
        "env": ctx.env,
        "workdir": ctx.image.workdir,
        "modules": [m.name for m in ctx.modules],
        "network": ctx.image.network.value,  # export turns auto into DHCP
        "initrd": {"compression": cpio.COMPRESSION, "uncompressed": len(raw)},
        "sizes": _sizes(ctx),
        "input_key": key,
        "files": files,
    }
    manifest.update(record.extras(entries=ctx.entries, files=files, image=ctx.image,
                                  packages_seen=list(plan.source.packages)))
    stored, _ = store.put(kernel=kern.vmlinuz, kernel_sha=kern.sha256, initrd=initrd,
                          cmdline=plan.cmdline, manifest=manifest,
                          vmlinux=kern.vmlinux if traits.pvh else None)
    store.write_pointer("keys", key, stored.id)
    ctx.log(f"built image {stored.short} ({mib(len(initrd))} initrd)")
    return stored
