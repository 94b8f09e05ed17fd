"""engitor run TARGET: build if needed, boot, stream the console, exit with the program's code."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engitor import store
from engitor.commands import common, target
from engitor.errors import UserError
from engitor.image import hosttools, kernel, pipeline
from engitor.recipe.model import Image
from engitor.units import mib
from engitor.vm import limits, qemu, ready, runner, supervisor, volumes
from engitor.vm.instance import Instance

# Seconds `run -d` waits, beyond the boot timeout, for the program to listen on its ports.
READY_WAIT = 120


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="build and boot a program, recipe or config",
                       description="Build the image if needed, boot it, stream its console and "
                                   "exit with the program's exit code. Program arguments "
                                   "go after --, or one by one with -a.",
                       usage="engitor run [options] TARGET [-- ARG ...]")
    p.add_argument("target", metavar="TARGET",
                   help="a program path, recipe.lua[:IMAGE], config.yaml/config.json[:IMAGE], "
                        "or a built image's name or id (booted as it is, no rebuild)")
    common.add_image_flags(p)
    add_run_flags(p)
    p.add_argument("--verify", action="store_true",
                   help="boot only an image signed by the key (see 'engitor sign') and unchanged")
    p.add_argument("--pub", metavar="P", help="the public key --verify checks with "
                   "(default: the home's keys/engitor.pub)")
    p.set_defaults(func=main)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """How a boot is followed; shared by the verbs that boot (run, load)."""
    p.add_argument("-d", "--detach", action="store_true",
                   help="start in the background and return once the program listens on its "
                        "forwarded ports; see 'engitor ps', 'logs', 'stop'")
    p.add_argument("--no-wait", action="store_true",
                   help="with -d: return as soon as the VM is started, not when it is ready")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="with -d: start the VM again when it ends: no (default), "
                        "on-failure[:N] (a non-zero exit, at most N times) or always; "
                        "'engitor stop' ends it for good")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="only the program's output (no engitor lines, no exit line)")


def main(args: argparse.Namespace) -> int:
    verify = Path(args.pub) if args.pub else True if args.verify else None
    how = {"detach": args.detach, "quiet": args.quiet, "wait": not args.no_wait,
           "restart": args.restart, "verify": verify}
    image, stored = target.resolve(args, build=False)  # building is boot's, after its checks
    return boot(image, stored=stored, **how)


def boot(image: Image, *, detach: bool, quiet: bool = False, wait: bool = True,
         restart: str = "no", stored: store.StoredImage | None = None,
         verify: Path | bool | None = None) -> int:
    """Build `image` (unless `stored` is given), start it, and (unless detached) stream it to
    its end: the exit status. `verify`: check the image's signature first (True: home key)."""
    log: Callable[[str], None] = (lambda _: None) if quiet else common.say
    policy = supervisor.parse_policy(restart)
    if policy.mode != "no" and not detach:
        raise UserError(f"--restart {restart} needs -d",
                        hint="a foreground run ends with its program; use engitor run -d "
                             f"--restart {restart} …")
    # Before building: a run QEMU would refuse (no QEMU, CPUs, memory, ports) or a volume in
    # use writes nothing.
    known = kernel.pinned(image.kernel)
    limits.before_build(image, qemu.find_qemu(), known.vmlinuz if known else None)
    volumes.precheck(image.volumes, image.base_dir)
    began = time.monotonic()
    stored = stored or pipeline.build(image)
    if verify is not None:
        from engitor.commands.verify import check

        log(f"signature: {check(stored, verify if isinstance(verify, Path) else None)}")
    log(f"image {image.name} {stored.short} ({mib(stored.size())}) "
        f"ready in {time.monotonic() - began:.2f} s")
    if policy.mode != "no":
        inst = Instance.load(supervisor.start(stored, image, policy, tools=hosttools))
        return detached(inst, image, began, log=log, wait=wait)
    inst = runner.launch(stored, image, detached=detach, log=log, tools=hosttools)
    if detach:
        return detached(inst, image, began, log=log, wait=wait)
    stop_requested, restore = runner.interruptible()
    try:
        outcome = runner.follow(inst, out=sys.stdout, events=_events(image, began, log),
                                stop_requested=stop_requested)
    except KeyboardInterrupt:
        inst.kill()
        common.say(f"{inst.name} killed")
        inst.remove()
        return 130
    finally:
        restore()
    _report(outcome, quiet)
    inst.remove()
    return outcome.exit_status


def _events(image: Image, began: float, log: Callable[[str], None]) -> runner.Events:
    def started(inst: Instance) -> None:
        ports = ", ".join(f"{p.bind}:{p.host}->{p.guest}/{p.proto.value}" for p in image.ports)
        log(f"{inst.name} started in {time.monotonic() - began:.1f} s"
            + (f"; forwarding {ports}" if ports else ""))

    def is_ready(inst: Instance) -> None:
        waited = ready.waited_ports(list(image.ports))
        if waited:
            at = ready.ready_uptime(inst.listening, list(image.ports))
            log(f"{inst.name} ready in {time.monotonic() - began:.1f} s: listening on "
                + ", ".join(map(str, waited)) + (f" (guest uptime {at:.2f} s)" if at else ""))

    def daemonized(inst: Instance) -> None:
        log(f"the program exited 0 and left {inst.status.daemon_left} process(es) running: "
            "it daemonized; the VM keeps running until they end (a foreground flag, e.g. "
            "nginx -g 'daemon off;' or redis --daemonize no, gives engitor its exit status)")

    def loopback(inst: Instance, port: int) -> None:
        log(f"the program listens on port {port} on loopback only: forwarded connections "
            f"arrive at the guest's 10.0.2.15 (make it listen on 0.0.0.0)")

    return runner.Events(started=started, ready=is_ready, daemonized=daemonized,
                         loopback=loopback)


def _report(outcome: runner.Outcome, quiet: bool) -> None:
    """The exit line; -q keeps only what is not the program's ordinary end."""
    if quiet and outcome.reason in ("exited", "signaled", "stopped") and not outcome.status.errors:
        return
    if outcome.message:
        common.say(outcome.message)
    for line in outcome.last_lines:
        print(f"  | {line}", file=sys.stderr)


def detached(inst: Instance, image: Image, began: float, *, log: Callable[[str], None],
             wait: bool) -> int:
    """Print the VM's name; with forwarded TCP ports, first wait until the guest says the
    program listens on them (a health check through the port right after is then real)."""
    if wait:  # QEMU up and the guest's init reached, else QEMU's own words
        runner.wait_started(inst)
    limit = image.boot_timeout + READY_WAIT
    events = _events(image, began, log)
    deadline = time.monotonic() + limit
    while wait and ready.waited_ports(list(image.ports)) and not inst.ready:
        inst.poll_console()
        events.check(inst)
        if not inst.alive() or inst.status.finished:
            inst.poll_console(final=True)
            code = inst.exit_code()
            common.say(f"{inst.name} ended before it was ready"
                       + (f" (exit code {code})" if code is not None else "")
                       + f"; see 'engitor logs {inst.name}'")
            return code if code else runner.EXIT_VM_FAILED
        if time.monotonic() > deadline:
            log(f"{inst.name} is not listening on its ports after {limit} s; still starting "
                f"(see 'engitor logs {inst.name}')")
            break
        time.sleep(0.05)
    events.check(inst)
    print(inst.name)
    return 0
