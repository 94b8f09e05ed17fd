"""engitor run TARGET: build if needed, boot, stream the console, exit with the program's code."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from engitor.commands import common
from engitor.errors import UserError
from engitor.image import pipeline
from engitor.recipe.model import Image
from engitor.vm import qemu, runner, volumes
from engitor.vm.instance import Status, check_ports_free


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="build and boot a program, recipe or config",
                       description="Build the image if needed, boot it, stream its console and "
                                   "exit with the program's exit code. Program arguments "
                                   "go after --, or one by one with -a.",
                       usage="engitor run [options] TARGET [-- ARG ...]")
    p.add_argument("target", metavar="TARGET",
                   help="a program path, recipe.lua[:IMAGE], or config.yaml/config.json[:IMAGE]")
    common.add_image_flags(p)
    add_run_flags(p)
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
    recipe, selected = common.load(args.target, args)
    image = pick(common.select(recipe, [selected] if selected else []), recipe.source)
    return boot(image, detach=args.detach, log=log)


def boot(image: Image, *, detach: bool, log: Callable[[str], None]) -> int:
    """Build `image`, start it, and (unless detached) stream it to its end: the exit status."""
    # Before building: a run refused for want of QEMU or a port writes nothing.
    qemu.find_qemu()
    check_ports_free(image.ports)
    volumes.precheck(image.volumes, image.base_dir)
    began = time.monotonic()
    stored = pipeline.build(image)
    log(f"image {image.name} {stored.short} ({stored.size() / 2**20:.1f} MiB) "
        f"ready in {time.monotonic() - began:.2f} s")
    inst = runner.launch(stored, image, detached=detach, log=log)
    if detach:
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
