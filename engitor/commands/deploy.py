"""engitor deploy libvirt TARGET: define and start the image as a libvirt domain.

libvirt is driven through engitor's own C bridge (lua/libvirt.lua includes libvirt/libvirt.h):
no binding to build or pin, and libvirt's errors arrive as its own messages.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from engitor import LUA_DIR
from engitor.commands import common, target
from engitor.errors import UserError
from engitor.export import libvirt
from engitor.export.manifests import FIRMWARE_MIN_MEMORY, dns_label
from engitor.image import hosttools
from engitor.recipe.model import MiB

DEFAULT_URI = "qemu:///system"
START_MARKER = b"@@engitor:start"
STOP_WAIT = 30.0  # seconds a graceful stop may take before the domain is destroyed


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="run an image on another engine (libvirt)",
                       description="Define and start an image on an engine that runs VMs.")
    engines = p.add_subparsers(dest="engine", metavar="ENGINE", required=True)
    lv = engines.add_parser("libvirt", help="a libvirt domain (qemu:///system by default)",
                            description="Define and start TARGET as a libvirt domain, with its "
                                        "ports forwarded on the host.")
    lv.add_argument("target", metavar="TARGET", nargs="?",
                    help="an image name or id, a program, recipe.lua[:IMAGE] or config")
    lv.add_argument("--connect", metavar="URI", default=DEFAULT_URI,
                    help=f"libvirt connection URI (default {DEFAULT_URI})")
    lv.add_argument("--domain", metavar="NAME", help="domain name (default engitor-IMAGE)")
    lv.add_argument("--boot", choices=[b.value for b in libvirt.Boot], default="kernel",
                    help="kernel: microvm with direct kernel boot (default); disk: q35 + UEFI "
                         "with the image exported as qcow2")
    lv.add_argument("--pool", metavar="DIR", type=Path, default=libvirt.DEFAULT_POOL,
                    help=f"where the files QEMU boots are put (default {libvirt.DEFAULT_POOL})")
    lv.add_argument("--replace", action="store_true", help="replace a running domain")
    lv.add_argument("--rm", metavar="NAME", help="stop and undefine a deployed domain")
    lv.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                    help="wait this long for the program to start (0: do not wait)")
    common.add_image_flags(lv)
    p.set_defaults(func=main)


def driver(uri: str) -> Any:
    """lua/libvirt.lua in a script scope of a fresh Lua state."""
    from engitor.lua.runtime import Runtime

    rt = Runtime(time_limit=None, memory_limit=None)
    env = rt.script_env(fs_root=Path.cwd())
    module = rt.eval((LUA_DIR / "libvirt.lua").read_text(), env, "libvirt.lua")[0]
    return rt, module


def _call(rt: Any, fn: Any, uri: str, *args: Any) -> Any:
    ok, value = rt.call(fn, uri, *args)
    if ok:
        return value
    message = str(value)
    if "cannot connect" in message:
        raise UserError(f"libvirt at {uri} is not reachable: {message.split(': ', 1)[-1]}",
                        hint="start it (libvirtd -d; virtlogd -d) or give --connect URI")
    raise UserError(message, hint="see the domain's log in /var/log/libvirt/qemu/")


def main(args: argparse.Namespace) -> int:
    if args.rm:
        return remove(args.connect, args.rm, args.pool, timeout=STOP_WAIT)
    if not args.target:
        raise UserError("deploy libvirt needs a TARGET (or --rm NAME)",
                        hint="e.g. engitor deploy libvirt web -p 8080:8080")
    rt, lv = driver(args.connect)
    _call(rt, lv.ping, args.connect)  # before building: a refused deploy writes nothing
    image, stored = target.built(args)
    name = args.domain or f"engitor-{dns_label(image.name)}"
    boot = libvirt.Boot(args.boot)
    memory = image.memory
    if boot is libvirt.Boot.DISK and memory < FIRMWARE_MIN_MEMORY:
        common.say(f"{memory // MiB} MiB is too little for UEFI firmware: "
                   f"using {FIRMWARE_MIN_MEMORY // MiB} MiB")
        memory = FIRMWARE_MIN_MEMORY
    folder = args.pool / name
    domain = _stage(folder, stored, boot, name=name, memory=memory, image=image)
    xml = libvirt.domain_xml(domain)
    common.say(f"defining {name} on {args.connect} (libvirt may take a while)")
    result = _call(rt, lv.deploy, args.connect, name, xml, args.replace)
    if result == "running":
        raise UserError(f"domain {name} is already running on {args.connect}",
                        hint="--replace to replace it, or --domain NAME for another")
    ports = ", ".join(f"{p.bind}:{p.host}->{p.guest}/{p.proto.value}" for p in image.ports)
    common.say(f"{name} started" + (f"; forwarding {ports}" if ports else ""))
    if args.wait > 0:
        _wait_started(domain.console, args.wait, name)
    print(name)
    return 0


def remove(uri: str, name: str, pool: Path, *, timeout: float) -> int:
    """Stop the domain gracefully (power button; then hard after `timeout`) and undefine it."""
    rt, lv = driver(uri)
    if _call(rt, lv.shutdown, uri, name):
        deadline = time.monotonic() + timeout
        while _call(rt, lv.state, uri, name) == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
    existed = _call(rt, lv.remove, uri, name)
    shutil.rmtree(pool / name, ignore_errors=True)
    common.say(f"{name} stopped and removed" if existed else f"no domain {name} on {uri}")
    return 0


def _stage(folder: Path, stored: Any, boot: libvirt.Boot, *, name: str, memory: int,
           image: Any) -> libvirt.Domain:
    """Copy what QEMU boots where libvirt's QEMU user can read it; the domain description."""
    from engitor.vm import runner

    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    console = folder / "console.log"
    console.unlink(missing_ok=True)
    common_fields: dict[str, Any] = {"name": name, "memory": memory, "cpus": image.cpus,
                                      "ports": image.ports, "console": console, "boot": boot}
    if boot is libvirt.Boot.KERNEL:
        for part in ("kernel", "initrd"):
            _install(getattr(stored, part), folder / part)
        cmdline = " ".join([stored.cmdline, *runner.host_cmdline(hosttools)])
        return libvirt.Domain(kernel=folder / "kernel", initrd=folder / "initrd",
                              cmdline=cmdline, **common_fields)
    from engitor.export import Format, export

    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        disk = export(stored, Format.QCOW2, Path(tmp) / "disk.qcow2", log=common.say)
        _install(disk, folder / "disk.qcow2")
    return libvirt.Domain(disk=folder / "disk.qcow2", **common_fields)


def _install(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.chmod(0o644)
    tmp.replace(dest)


def _wait_started(console: Path, timeout: float, name: str) -> None:
    """Until the guest init says the program started (the console is a file libvirt writes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if START_MARKER in console.read_bytes():
                common.say(f"{name}: the program is running")
                return
        except OSError:
            pass
        time.sleep(0.25)
    common.say(f"{name}: no start within {timeout:.0f} s; its console is {console}")
