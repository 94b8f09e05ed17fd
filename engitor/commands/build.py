"""engitor build TARGET [IMAGE...]: build images into the store and print their ids."""

from __future__ import annotations

import argparse

from engitor.commands import common
from engitor.image import pipeline
from engitor.recipe import targets


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build images and print their ids",
                       description="Build images into the content-addressed store; an "
                                   "unchanged rebuild writes nothing.")
    p.add_argument("target", metavar="TARGET",
                   help="a program path, recipe.lua, or config.yaml/config.json")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="which declared images (default: all)")
    common.add_image_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    log = (lambda _: None) if args.quiet else common.say
    recipe, selected = common.load(args.target, args)
    names = list(args.images) + ([selected] if selected else [])
    for image in targets.select(recipe, names):
        stored = pipeline.build(image, log=log)
        print(stored.id if args.quiet else f"{image.name}\t{stored.id}")
    return 0
