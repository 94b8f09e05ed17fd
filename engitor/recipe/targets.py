"""A target plus overrides -> the images to build or run.

A target is what `engitor run/build` and the Lua `engitor.run/build/recipe` take: a program
path, a Lua recipe, a YAML or ops config, each optionally `:IMAGE`. Overrides are settings
already coerced by the settings table (the CLI's flags, a script's options). Both the commands
and the Lua vm API resolve targets here, so a target means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from engitor.errors import UserError, did_you_mean
from engitor.recipe import frontends
from engitor.recipe.model import Image, Port, Recipe
from engitor.recipe.names import default_name
from engitor.recipe.settings import make_image


def is_deb_path(spec: str) -> bool:
    """A kernel setting naming a .deb file rather than a package."""
    return spec.endswith(".deb") or "/" in spec


def load(target: str, overrides: dict[str, Any] | None = None, *, config: str | None = None,
         name: str | None = None) -> tuple[Recipe, str | None]:
    """The recipe a target names, with `overrides` applied to every image, and the image
    selected by `target:IMAGE`. `config` is an ops config.json a program target adds to."""
    path, selected = frontends.split_target(target)
    kind = frontends.kind_of(path)
    flags = overrides or {}
    if kind == "program":
        if config:
            from engitor.recipe import yaml_front  # lazily: only config users pay for it

            # The command line's arguments replace the config's Args (ops' -a) before ops'
            # copy of a file the first argument names.
            recipe = yaml_front.load_with_program(Path(config), path, name=name,
                                                  args=flags.get("args"))
        else:
            image = make_image(default_name(path) if name is None else name, {"program": path},
                               where="command line", base_dir=Path.cwd())
            recipe = Recipe("command line", (image,))
    elif kind == "lua":
        from engitor.recipe import lua_front  # lazily: LuaJIT starts only for Lua recipes

        recipe = lua_front.load_recipe(existing(path))
    else:
        from engitor.recipe import yaml_front

        recipe = yaml_front.load_config(existing(path))
    images = tuple(apply(i, flags) for i in recipe.images)
    recipe = dataclasses.replace(recipe, images=images)
    if name is not None and kind != "program":
        return renamed(recipe, name, selected)
    return recipe, selected


def renamed(recipe: Recipe, name: str, selected: str | None) -> tuple[Recipe, str]:
    """-n NAME for a recipe: the one image it declares (or TARGET:IMAGE picks) takes NAME."""
    chosen = select(recipe, [selected] if selected else [])
    if len(chosen) != 1:
        raise UserError(f"-n {name}: {recipe.source} declares {len(chosen)} images and -n "
                        "names one", hint="pick the image too: TARGET:IMAGE -n NAME",
                        where="command line")
    make_image(name, {"program": "/x"}, where="command line: -n")  # the rules of declarations
    image = dataclasses.replace(chosen[0], name=name)
    images = tuple(image if i is chosen[0] else i for i in recipe.images)
    return dataclasses.replace(recipe, images=images), name


def existing(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file", hint="check the path")
    return p


def apply(image: Image, changes: dict[str, Any]) -> Image:
    """Overrides over a declared image: ports add up, env merges, the rest replaces."""
    merged = dict(changes)
    if "ports" in changes:
        merged["ports"] = merge_ports(image.ports, changes["ports"])
    if "env" in changes:
        merged["env"] = {**image.env, **changes["env"]}
    if "volumes" in changes:
        merged["volumes"] = {**image.volumes, **changes["volumes"]}
    for name in ("files", "dirs", "debian"):
        if name in changes:
            merged[name] = tuple(dict.fromkeys((*getattr(image, name), *changes[name])))
    if "kernel" in changes:
        # A relative .deb path on the command line is relative to where the user is.
        kernel = changes["kernel"]
        if is_deb_path(kernel) and not os.path.isabs(kernel):
            merged["kernel"] = str(Path.cwd() / kernel)
    return dataclasses.replace(image, **merged)


def merge_ports(old: tuple[Port, ...], new: tuple[Port, ...]) -> tuple[Port, ...]:
    """An override's port replaces a declared one for the same guest port (a remap: the recipe
    says 8080, -p 18080:8080 moves it) or the same host port."""
    hosts = {(p.host, p.proto) for p in new}
    guests = {(p.guest, p.proto) for p in new}
    kept = (p for p in old if (p.host, p.proto) not in hosts and (p.guest, p.proto) not in guests)
    return (*kept, *new)


def select(recipe: Recipe, names: list[str]) -> list[Image]:
    """The images called `names` (all of them when none is named)."""
    if not names:
        return list(recipe.images)
    out = []
    for name in names:
        image = recipe.get(name)
        if image is None:
            raise UserError(f"{recipe.source} declares no image {name!r}",
                            hint=did_you_mean(name, [i.name for i in recipe.images])
                            or "declared: " + ", ".join(i.name for i in recipe.images))
        out.append(image)
    return out


def images(target: str, overrides: dict[str, Any] | None = None, *,
           image: str | None = None) -> list[Image]:
    """The images of a target (`image`, or `target:IMAGE`, picks one)."""
    recipe, selected = load(target, overrides)
    wanted = image or selected
    return select(recipe, [wanted] if wanted else [])
