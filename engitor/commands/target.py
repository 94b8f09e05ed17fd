"""Booting an image from the store as it was built: run settings from its manifest, flags
over them. Only what the runner decides may change (ports, memory, CPUs, accelerator); a
flag that would change the image itself needs the recipe, and says so."""

from __future__ import annotations

import argparse
import dataclasses

from engitor import store
from engitor.commands import common
from engitor.errors import UserError
from engitor.recipe import targets
from engitor.recipe.model import Image
from engitor.recipe.settings import make_image

RUN_ONLY = ("ports", "memory", "cpus", "accel")


def image_for(stored: store.StoredImage, args: argparse.Namespace) -> Image:
    m = stored.manifest
    changes = common.overrides(args)
    fixed = sorted(set(changes) - set(RUN_ONLY))
    if fixed or getattr(args, "config", None):
        raise UserError(f"image {args.target} is booted as built; "
                        f"{', '.join(fixed) or 'a config'} would change it",
                        hint="run the recipe instead, or give only -p, -m, --smp, --accel")
    tags = store.tags()
    names = sorted(n for n, i in tags.items() if i == stored.id)
    name = args.name or (args.target if args.target in tags else None) or \
        next(iter(names), m.get("name") or "image")
    run = m.get("run", {})
    image = make_image(name, {"program": m.get("program") or "/init",
                              "ports": run.get("ports", [])}, where="store")
    image = dataclasses.replace(image, memory=int(run.get("memory", image.memory)),
                                cpus=int(run.get("cpus", image.cpus)))
    return targets.apply(image, changes)
