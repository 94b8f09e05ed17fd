"""TARGET as every verb that takes one resolves it: run, export, deploy and manifest.

A target is a program path, a recipe or config (`:IMAGE` picks one of its images), or the name
or id of an image already in the store. A stored image is booted or handed on as it was built:
its run settings come from its manifest, flags over them, and only what the runner decides may
change (ports, memory, CPUs, accelerator); a flag that would change the image itself needs the
recipe, and says so. One rule for all the verbs, so `engitor export web` and `engitor run web`
mean the same image.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engitor import store
from engitor.commands import common
from engitor.errors import UserError
from engitor.recipe import frontends, targets
from engitor.recipe.model import Image
from engitor.recipe.settings import make_image
from engitor.recipe.volumes import Kind, mounts

RUN_ONLY = ("ports", "memory", "cpus", "accel", "start")


def resolve(args: argparse.Namespace, *, build: bool = True) -> tuple[Image, store.StoredImage | None]:
    """`args.target` with the image flags: the image's settings, and its stored build — the
    stored image it names, or (with `build`) the recipe's image built now; else None."""
    found = stored(args.target)
    if found is not None:
        return image_for(found, args), found
    recipe, selected = common.load(args.target, args)
    image = pick(targets.select(recipe, [selected] if selected else []), recipe.source)
    return image, (build_image(image) if build else None)


def build_image(image: Image) -> store.StoredImage:
    """The image built now, its progress said on stderr."""
    from engitor.image import pipeline  # lazily: a stored image needs no build machinery

    return pipeline.build(image, log=common.say)


def built(args: argparse.Namespace) -> tuple[Image, store.StoredImage]:
    """`resolve`, built: for the verbs that hand an image on (export, deploy, manifest)."""
    image, found = resolve(args)
    assert found is not None  # resolve builds what the store does not hold
    return image, found


def stored(target: str) -> store.StoredImage | None:
    """A target that is no file but names an image in the store (a name, an id or a prefix)."""
    if Path(target).is_file() or "/" in target or frontends.split_target(target)[1] \
            or frontends.kind_of(target) != "program":
        return None
    try:
        return store.resolve(target)
    except UserError:
        return None


def pick(images: list[Image], source: str) -> Image:
    """The one image a target means: a recipe that declares several needs TARGET:IMAGE."""
    if len(images) == 1:
        return images[0]
    names = ", ".join(i.name for i in images)
    raise UserError(f"{source} declares several images ({names})",
                    hint=f"pick one: {source}:{images[0].name}")


def image_for(found: store.StoredImage, args: argparse.Namespace) -> Image:
    """The run settings of a stored image: its manifest's, then the flags that only the runner
    reads (and -v giving a mount point another source of the same kind); any other flag is
    refused."""
    m = found.manifest
    changes = common.overrides(args)
    fixed = sorted(set(changes) - set(RUN_ONLY) - {"volumes"})
    if fixed or getattr(args, "config", None):
        raise UserError(f"image {args.target} is booted as built; "
                        f"{', '.join(fixed) or 'a config'} would change it",
                        hint="use the recipe instead, or give only -p, -m, --smp, --accel, --start, -v")
    tags = store.tags()
    names = sorted(n for n, i in tags.items() if i == found.id)
    name = getattr(args, "name", None) or (args.target if args.target in tags else None) or \
        next(iter(names), m.get("name") or "image")
    run = m.get("run", {})
    image = make_image(name, {"program": m.get("program") or "/init",
                              "ports": run.get("ports", []),
                              "volumes": recorded_volumes(args.target, run)}, where="store")
    image = dataclasses.replace(image, memory=int(run.get("memory", image.memory)),
                                cpus=int(run.get("cpus", image.cpus)))
    swapped = targets.apply(image, changes)
    if _layout(swapped.volumes) != _layout(image.volumes):
        raise UserError(f"image {args.target} mounts {_shown(image.volumes)}; -v may give those "
                        "mount points other disks, not add or remove one",
                        hint="change the volumes in the recipe and build it again")
    return swapped


def recorded_volumes(target: str, run: dict[str, Any]) -> dict[str, str]:
    """guest path -> source as the build recorded them."""
    recorded = run.get("volumes") or {}
    if isinstance(recorded, list):  # manifests before sources were recorded
        raise UserError(f"image {target} was stored without its volumes' sources",
                        hint="run its recipe (or the program with its -v flags) to rebuild it")
    return dict(recorded)


def _layout(volumes: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    """What the image's init expects: each mount point, its disk serial, tmpfs or disk."""
    return [(m.guest, m.serial, m.kind is Kind.TMPFS) for m in mounts(volumes)]


def _shown(volumes: Mapping[str, str]) -> str:
    return ", ".join(volumes) or "no volumes"
