"""engitor run TARGET: build if needed, boot, stream the console, exit with the program's code."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engitor import store
from engitor.commands import common, stored_run
from engitor.errors import UserError
from engitor.image import hosttools, kernel, pipeline
from engitor.recipe import frontends, targets
from engitor.recipe.model import Image
from engitor.units import mib
from engitor.vm import limits, qemu, runner
from engitor.vm.instance import Status


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
                   help="start in the background; see 'engitor ps', 'logs', 'stop'")
    p.add_argument("-q", "--quiet", action="store_true", help="only the program's output")


def pick(images: list[Image], source: str) -> Image:
    if len(images) == 1:
        return images[0]
    names = ", ".join(i.name for i in images)
    raise UserError(f"{source} declares several images ({names})",
                    hint=f"pick one: engitor run {source}:{images[0].name}")


def main(args: argparse.Namespace) -> int:
    log = (lambda _: None) if args.quiet else common.say
    verify = Path(args.pub) if args.pub else True if args.verify else None
    found = stored_target(args.target)
    if found is not None:
        image = stored_run.image_for(found, args)
        return boot(image, detach=args.detach, log=log, stored=found, verify=verify)
    recipe, selected = common.load(args.target, args)
    image = pick(targets.select(recipe, [selected] if selected else []), recipe.source)
    return boot(image, detach=args.detach, log=log, verify=verify)


def stored_target(target: str) -> store.StoredImage | None:
    """A target that is no file but names an image in the store (a name, an id or a prefix)."""
    if Path(target).is_file() or "/" in target or frontends.split_target(target)[1] \
            or frontends.kind_of(target) != "program":
        return None
    try:
        return store.resolve(target)
    except UserError:
        return None


def boot(image: Image, *, detach: bool, log: Callable[[str], None],
         stored: store.StoredImage | None = None, verify: Path | bool | None = None) -> int:
    """Build `image` (unless `stored` is given), start it, and (unless detached) stream it to
    its end: the exit status. `verify`: check the image's signature first (True: home key)."""
    # Before building: a run QEMU would refuse (no QEMU, CPUs, memory, ports) writes nothing.
    known = kernel.pinned(image.kernel)
    limits.before_build(image, qemu.find_qemu(), known.vmlinuz if known else None)
    began = time.monotonic()
    stored = stored or pipeline.build(image)
    if verify is not None:
        from engitor.commands.verify import check

        log(f"signature: {check(stored, verify if isinstance(verify, Path) else None)}")
    log(f"image {image.name} {stored.short} ({mib(stored.size())}) "
        f"ready in {time.monotonic() - began:.2f} s")
    inst = runner.launch(stored, image, detached=detach, log=log, tools=hosttools)
    if detach:
        runner.wait_started(inst)
        print(inst.name)
        return 0

    def started(status: Status) -> None:
        ports = ", ".join(f"{p.bind}:{p.host}->{p.guest}/{p.proto.value}" for p in image.ports)
        log(f"{inst.name} started in {time.monotonic() - began:.1f} s"
            + (f"; forwarding {ports}" if ports else ""))

    stop_requested, restore = runner.interruptible()
    try:
        outcome = runner.follow(inst, out=sys.stdout, on_start=started,
                                stop_requested=stop_requested)
    except KeyboardInterrupt:
        inst.kill()
        common.say(f"{inst.name} killed")
        inst.remove()
        return 130
    finally:
        restore()
    if outcome.message:
        common.say(outcome.message)
    for line in outcome.last_lines:
        print(f"  | {line}", file=sys.stderr)
    inst.remove()
    return outcome.exit_status
