"""engitor rmi NAME|ID...: remove names, and the images no name points to any more."""

from __future__ import annotations

import argparse

from engitor import reflog, store
from engitor.catalog.diff import human
from engitor.catalog.prune import freed_bytes
from engitor.errors import UserError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rmi", help="remove image names and images",
                       description="A NAME loses its name; its image goes too when no other "
                                   "name points at it. An ID removes the image and its names. "
                                   "An image a running VM uses is never removed.")
    p.add_argument("refs", metavar="NAME|ID", nargs="+")
    p.set_defaults(func=main)


def running_images() -> set[str]:
    from engitor.vm.instance import Instance

    return {i.meta.image for i in Instance.all() if i.alive()}


def main(args: argparse.Namespace) -> int:
    with reflog.exclusive("remove images"):
        running = running_images()
        for ref in args.refs:
            image = store.resolve(ref)
            named = ref in store.tags()
            if named:
                store.untag(ref)
            others = [n for n, iid in store.tags().items() if iid == image.id]
            if named and others:
                print(f"untagged {ref} ({image.short} stays as {', '.join(others)})")
                continue
            if image.id in running:
                if not named:
                    raise UserError(f"image {image.short} is used by a running VM",
                                    hint="stop it first (engitor ps, engitor stop)")
                print(f"untagged {ref} ({image.short} stays: a running VM uses it)")
                continue
            size = freed_bytes([image.path])
            store.remove(image)
            print(f"removed {image.short}" + (f" ({ref})" if named else "") + f", {human(size)}")
    return 0
