"""The build, as a flat list of named steps over one context: reading `build()` tells the story.

Declared `Image` in, `StoredImage` out. Steps resolve (kernel, program, its ELF closure, files,
modules, init) into `ctx.entries` — the guest root, guest path -> `cpio.Entry` — then hash that
root into an input key. If the store already has an image for the key, nothing is written;
otherwise the deterministic initramfs is assembled and stored. Before all that, `quick` checks
whether what the last build of the same declaration read is unchanged (by stat alone).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from engitor import __version__, faults, home, paths, reflog, store
from engitor.errors import UserError
from engitor.image import cpio, elf, kernel, kmod, quick, record, system
from engitor.image import init as guest_init
from engitor.image.context import Context
from engitor.image.cpio import Entry
from engitor.recipe import settings, volumes
from engitor.recipe.model import Image
from engitor.units import mib

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the runner attaches (virtio-mmio transport, network, entropy, the virtio-serial port the
# init reports listening sockets on) and what lets a shutdown request reach init (the ACPI
# power button, seen through evdev).
BASE_MODULES = ("virtio_mmio", "virtio_net", "virtio_rng", "virtio_console", "button", "evdev")
DISK_MODULES = ("virtio_blk",)  # ext4 itself is built into Debian's cloud kernel
# cryptomgr.notests: the kernel would otherwise re-run its crypto self-tests (test vectors for
# every algorithm it registers) on each boot; under TCG that is a fifth of the boot
# (measured: program start 1.18 s -> 0.94 s median, BENCHMARKS.md).
BASE_CMDLINE = ("console=ttyS0", "panic=-1", "quiet", "cryptomgr.notests")
# The directories daemons write to without creating them (the FHS's /var); /var/run is a link
# to /run. The initramfs root is itself a tmpfs, so all of it is in RAM unless a volume is
# mounted there.
FHS_DIRS = ("/var", "/var/lib", "/var/log", "/var/tmp", "/var/cache", "/var/spool")
GUEST_ADDR = "10.0.2.15/24"
GUEST_GATEWAY = "10.0.2.2"


def build(image: Image, *, log: Callable[[str], None] = lambda _: None) -> store.StoredImage:
    try:
        with faults.writing(f"building image {image.name}", home.home()), reflog.building():
            return _build(Context(image, log))
    except UserError as e:
        # Whatever went wrong is reported at the image's declaration, unless it knows better.
        if image.where:
            e.located(image.where)
        raise


def _build(ctx: Context) -> store.StoredImage:
    image = ctx.image
    quick_key = quick.declaration_key(image)
    if quick_key and (same := quick.lookup(quick_key)):
        ctx.log(f"unchanged: image {same.short}")
        store.tag(image.name, same)
        return same
    with home.scratch("stage") as staging:
        ctx.staging = staging / "root"
        ctx.staging.mkdir()
        run_before_build(ctx)
        expand_generators(ctx)
        if not system.resolve_debian(ctx):
            resolve_package(ctx)
        system.resolve_users(ctx)
        resolve_program(ctx)
        add_closure(ctx)
        add_files(ctx)
        system.add_file_libraries(ctx)
        system.add_shell(ctx)
        system.add_locale_and_zone(ctx)
        system.add_users(ctx)
        resolve_kernel(ctx)  # after the user's inputs are known good: it may download
        add_modules(ctx)
        add_init(ctx)
        add_etc(ctx)
        add_staged(ctx)
        compute_input_key(ctx)
        if not reuse(ctx):
            assemble_and_store(ctx)
    store.tag(image.name, ctx.stored)  # type: ignore[arg-type]
    if quick_key:
        for path in ctx.watched:
            ctx.inputs.setdefault(path, quick.fingerprint(path))
        quick.remember(quick_key, ctx.stored, ctx.inputs)  # type: ignore[arg-type]
    run_after_build(ctx)
    return ctx.stored  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------


def resolve_package(ctx: Context) -> None:
    """A runtime package provides a root to take the program and its libraries from."""
    if not ctx.image.package:
        return
    from engitor import packages  # a heavier import, only for package images

    tree = packages.prepare(ctx.image, log=ctx.log)
    # What decided this tree besides its files: which recipe file the name finds (and its
    # text), and which versions the last resolution pinned (`engitor pkg get` moves them).
    search = [str(d) for d in packages.recipes.candidate_dirs(ctx.image.base_dir)]
    recipe_file = packages.recipes.names(ctx.image.base_dir)[tree.recipe.name]
    ctx.watched += [*search, str(recipe_file),
                    str(packages.cache.resolved_path(tree.recipe.name))]
    # The package's root alone: the closure searches each library directory across all roots in
    # turn, so with the host as a second root a usr-merged host's /lib/x86_64-linux-gnu/libX
    # would shadow the package's /usr/lib/x86_64-linux-gnu/libX (another version, and a second
    # copy in the image). A runtime's Debian dependencies hold every library it links.
    ctx.roots = [tree.root]
    ctx.packages = record.packages(tree)
    ctx.image = tree.image  # the package's program, args and env merged under the image's
    for guest, host in sorted(tree.files.items()):
        ctx.add(cpio.entry_for(guest, host), "package")


def resolve_kernel(ctx: Context) -> None:
    ctx.kernel = kernel.get(ctx.image.kernel, base_dir=ctx.image.base_dir)
    # What decides which kernel a name means (the pins) or a .deb path holds.
    ctx.watched += [str(kernel.names_file()), str(ctx.kernel.root / "kernel.json")]
    if kernel.is_deb_path(ctx.image.kernel):
        ctx.watched.append(str(_host_path(ctx, ctx.image.kernel)))
    ctx.log(f"kernel {ctx.kernel.describe()}")


def _guest_path(spec: str) -> str:
    """Host path as written -> guest path: relative keeps its relative place under /."""
    p = PurePosixPath(spec)
    if p.is_absolute():
        return cpio.normalize(str(p))
    if ".." in p.parts:
        return cpio.normalize(p.name)
    return cpio.normalize(str(p))


def _checked_guest(path: str, what: str) -> str:
    """A guest path from the recipe, refused (not a traceback) when it climbs above /."""
    try:
        return cpio.normalize(path)
    except ValueError:
        raise UserError(f"{what}: the guest path {path!r} climbs above / with '..'",
                        hint="guest paths are absolute paths inside the image, like '/etc/app'"
                        ) from None


def _host_path(ctx: Context, spec: str) -> Path:
    p = Path(spec).expanduser()
    return p if p.is_absolute() else ctx.image.base_dir / p


def resolve_program(ctx: Context) -> None:
    image = ctx.image
    assert image.program is not None
    if image.package or image.debian:
        guest = cpio.normalize(image.program)
        host = next((r / guest.lstrip("/") for r in ctx.roots if (r / guest.lstrip("/")).exists()),
                    None)
        if host is None:
            raise UserError(f"program {image.program} is not in package {image.package}",
                            hint="check the package recipe's program", where=ctx.where())
    else:
        guest, host = _guest_path(image.program), _host_path(ctx, image.program)
        if not host.exists():
            raise UserError(f"program {image.program}: no such file",
                            hint=f"paths are relative to {image.base_dir}", where=ctx.where())
    ctx.program_info = elf.read_elf(host, image.program)  # read once: the closure starts here
    ctx.program_guest, ctx.program_host = guest, host
    ctx.argv = [guest, *image.args]


def add_closure(ctx: Context) -> None:
    assert ctx.program_host is not None
    library_path = [d for d in ctx.image.env.get("LD_LIBRARY_PATH", "").split(":") if d]
    closure = elf.closure(ctx.program_guest, ctx.program_host, roots=ctx.roots,
                          library_path=library_path, program=ctx.program_info)
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
        kind = "program" if guest == ctx.program_guest else "libraries"
        ctx.add(Entry.file(guest, source=real, mode=0o755), kind)
    ctx.env = {"PATH": DEFAULT_PATH, "HOME": "/", **ctx.image.env}
    if closure.extra_dirs:
        dirs = [*closure.extra_dirs, *library_path]
        ctx.env["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(dirs))
    info = closure.info
    assert info is not None
    kind = "static" if info.static else "dynamic"
    ctx.log(f"program {ctx.program_guest} ({kind}{', Go' if info.go else ''}), "
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
    image = ctx.image
    for spec in image.files:
        host = _host_path(ctx, spec)
        paths.named_path(host, image.base_dir, f"file {spec}")
        if not host.is_file():
            what = "is a directory (use dirs)" if host.is_dir() else "no such file"
            raise UserError(f"file {spec}: {what}", hint=f"paths are relative to {image.base_dir}",
                            where=ctx.where())
        _checked_guest(spec if spec.startswith("/") else "/", f"file {spec}")
        ctx.add(Entry.file(_guest_path(spec), source=host.resolve(),
                           mode=stat.S_IMODE(host.stat().st_mode)), "files")
    for spec in image.dirs:
        host = _host_path(ctx, spec)
        paths.named_path(host, image.base_dir, f"dir {spec}")
        if not host.is_dir():
            raise UserError(f"dir {spec}: {'not a directory' if host.exists() else 'no such directory'}",
                            hint=f"paths are relative to {image.base_dir}", where=ctx.where())
        _checked_guest(spec if spec.startswith("/") else "/", f"dir {spec}")
        _add_tree(ctx, host, _guest_path(spec), "files", host.resolve(), f"dir {spec}")
    for pattern, dest in image.map.items():
        _add_map(ctx, pattern, dest)


def _add_map(ctx: Context, pattern: str, dest: str) -> None:
    """A `map` pattern: every match goes under `dest` at its place below the pattern's base
    (the part before the first wildcard); `**` never descends through a link."""
    image = ctx.image
    spec = os.path.normpath(_host_path(ctx, pattern))
    base = Path(paths.pattern_base(spec))
    matches = paths.glob(spec)
    # the folders the glob listed: a new match there changes the image
    ctx.watched += sorted({os.path.dirname(m) for m in matches} | {str(base)})
    if not matches:
        raise UserError(f"map {pattern!r} matches no files",
                        hint=f"globs are relative to {image.base_dir}", where=ctx.where())
    what = f"map {pattern!r}"
    _checked_guest(dest, what)
    for host in matches:
        paths.named_path(host, image.base_dir, what)
        guest = cpio.normalize(str(PurePosixPath(dest) / host.relative_to(base)))
        _add_tree(ctx, host, guest, "files", base, what)


def add_modules(ctx: Context) -> None:
    assert ctx.kernel is not None
    if not ctx.kernel.traits().modules:
        # Everything such a kernel has is built in, and it could not load a module anyway.
        if ctx.image.modules:
            raise UserError(f"kernel {ctx.kernel.package} loads no modules, so modules "
                            f"{', '.join(ctx.image.modules)} cannot be added",
                            hint="build the driver into the kernel (=y in its config fragment) "
                                 "or use a Debian kernel", where=ctx.where())
        return
    builtin = kmod.builtin(ctx.kernel.modules_dir)
    disks = DISK_MODULES if any(m.serial for m in volumes.mounts(ctx.image.volumes)) else ()
    wanted = [m for m in (*BASE_MODULES, *disks, *ctx.image.modules)
              if kmod.canonical(m) not in builtin]
    ctx.modules = kmod.resolve(ctx.kernel.modules_dir, wanted)
    base = f"/lib/modules/{ctx.kernel.release}"
    for module in ctx.modules:
        if not paths.inside(module.path, ctx.kernel.modules_dir):  # a cache unpacked earlier
            paths.unpacked(ctx.kernel.modules_dir, f"kernel {ctx.kernel.release}")
        ctx.add(Entry.file(f"{base}/{module.rel}", source=module.path), "modules")


def add_init(ctx: Context) -> None:
    image = ctx.image
    ctx.add(Entry.file("/init", source=guest_init.binary(), mode=0o755), "init")
    base = f"/lib/modules/{ctx.kernel.release}" if ctx.kernel else ""
    ctx.init_config = guest_init.InitConfig(
        argv=tuple(ctx.argv),
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
    ctx.add(Entry.file("/.engitor/init", data=ctx.init_config.render(), mode=0o600), "init")
    ctx.cmdline = " ".join((*BASE_CMDLINE, *image.kernel_args))


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


def run_before_build(ctx: Context) -> None:
    """First of all, so a hook can make what later steps read (compile the program, say)."""
    hook = ctx.image.hooks.get("before_build")
    if hook is not None:
        hook.call({"name": ctx.image.name, "staging": str(ctx.staging)})


def expand_generators(ctx: Context) -> None:
    """`files = function(ctx) … end` (and dirs, map) give their lists now, at build time."""
    ctx.image = settings.expand_generators(ctx.image, {"name": ctx.image.name,
                                                       "staging": str(ctx.staging)})


def add_staged(ctx: Context) -> None:
    """What before_build wrote under the staging root joins the image, over everything else."""
    assert ctx.staging is not None
    for dirpath, dirnames, filenames in os.walk(ctx.staging):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            host = Path(dirpath) / name
            ctx.add(cpio.entry_for("/" + str(host.relative_to(ctx.staging)), host), "files")


def _digest(entry: Entry) -> str:
    if entry.source is not None and entry.data is None:
        with entry.source.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return hashlib.sha256(entry.contents()).hexdigest()


def compute_input_key(ctx: Context) -> None:
    """A hash of everything that determines the image; equal keys mean equal images."""
    assert ctx.kernel is not None
    h = hashlib.sha256()
    h.update(json.dumps([__version__, cpio.COMPRESSION, cpio.ZSTD_LEVEL, cpio.source_date_epoch(),
                         ctx.kernel.sha256, ctx.cmdline]).encode())
    for path in sorted(ctx.entries):
        e = ctx.entries[path]
        h.update(f"{path}\0{e.mode:o}\0{e.target or ''}\0{e.rdev}\0".encode())
        if e.source is not None:
            # Taken before the contents are read: a change during the read shows next time.
            ctx.inputs[str(e.source)] = quick.fingerprint(str(e.source))
        if stat.S_ISREG(e.mode):
            h.update(_digest(e).encode())
    ctx.input_key = h.hexdigest()


def reuse(ctx: Context) -> bool:
    found = store.by_key(ctx.input_key)
    if found:
        ctx.stored, ctx.new = found, False
        ctx.log(f"unchanged: image {found.short}")
    return found is not None


def _sizes(ctx: Context) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path, e in ctx.entries.items():
        if stat.S_ISREG(e.mode):
            n = len(e.data) if e.data is not None else e.source.stat().st_size  # type: ignore[union-attr]
            bucket = ctx.category.get(path, "files")
            sizes[bucket] = sizes.get(bucket, 0) + n
    return sizes


def assemble_and_store(ctx: Context) -> None:
    assert ctx.kernel is not None and ctx.init_config is not None
    raw = cpio.archive(ctx.entries)
    initrd = cpio.compress(raw)
    traits = ctx.kernel.traits()
    files = []
    for path in sorted(ctx.entries):
        e = ctx.entries[path]
        if stat.S_ISREG(e.mode):
            body = e.contents()
            files.append({"path": path, "size": len(body), "mode": f"{stat.S_IMODE(e.mode):o}",
                          "sha256": hashlib.sha256(body).hexdigest(),
                          "kind": ctx.category.get(path, "files")})
        elif stat.S_ISLNK(e.mode):
            files.append({"path": path, "symlink": e.target})
    manifest: dict[str, Any] = {
        "name": ctx.image.name,
        "engitor": __version__,
        "kernel": {"package": ctx.kernel.package, "version": ctx.kernel.version,
                   "sha256": ctx.kernel.sha256, "release": ctx.kernel.release,
                   "size": ctx.kernel.vmlinuz.stat().st_size,
                   "traits": traits.to_json()},
        "cmdline": ctx.cmdline,
        "program": ctx.program_guest,
        "argv": ctx.argv,
        "env": ctx.env,
        "workdir": ctx.image.workdir,
        "modules": [m.name for m in ctx.modules],
        "network": ctx.image.network.value,  # export turns auto into DHCP
        "initrd": {"compression": cpio.COMPRESSION, "uncompressed": len(raw)},
        "sizes": _sizes(ctx),
        "input_key": ctx.input_key,
        "files": files,
    }
    manifest.update(record.extras(entries=ctx.entries, files=files, image=ctx.image,
                                  packages_seen=ctx.packages))
    ctx.stored, ctx.new = store.put(kernel=ctx.kernel.vmlinuz, kernel_sha=ctx.kernel.sha256,
                                    initrd=initrd, cmdline=ctx.cmdline, manifest=manifest,
                                    vmlinux=ctx.kernel.vmlinux if traits.pvh else None)
    store.write_pointer("keys", ctx.input_key, ctx.stored.id)
    ctx.log(f"built image {ctx.stored.short} ({mib(len(initrd))} initrd)")


def run_after_build(ctx: Context) -> None:
    hook = ctx.image.hooks.get("after_build")
    if hook is not None and ctx.stored is not None:
        hook.call({"name": ctx.image.name, "id": ctx.stored.id})
