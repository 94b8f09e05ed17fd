"""What run, build and load share: the image flags and turning a target into images.

Flags are settings too: each is coerced by the settings table's own type, so `-p 80x` fails
the way `ports = {"80x"}` does in a recipe, and a CLI-flag run yields the same model.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.image.kernel import is_deb_path
from engitor.recipe import frontends
from engitor.recipe.model import Image, Recipe
from engitor.recipe.settings import SETTINGS_BY_NAME, SettingTypeError, make_image, parse_ports
from engitor.store import StoredImage


def add_image_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("image settings (override the recipe's)")
    g.add_argument("-p", "--port", action="append", default=[], metavar="PORT",
                   help="forward a port: 8080, HOST:GUEST (8080:80), ops' HOST-GUEST, "
                        "ADDR:HOST:GUEST, with /udp for UDP; repeatable, comma lists allowed")
    g.add_argument("--udp", action="append", default=[], metavar="PORT",
                   help="forward a UDP port (same forms as -p)")
    g.add_argument("-a", "--arg", action="append", default=None, metavar="ARG",
                   help="program argument; repeatable (replaces the recipe's args)")
    g.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="environment variable; repeatable")
    g.add_argument("--file", action="append", default=[], metavar="PATH", dest="files",
                   help="copy a host file in at the same relative path; repeatable")
    g.add_argument("--dir", action="append", default=[], metavar="PATH", dest="dirs",
                   help="copy a host directory in, recursively; repeatable")
    g.add_argument("--deb", action="append", default=[], metavar="PKG", dest="debian",
                   help="install a Debian package whole, with its dependencies; repeatable")
    g.add_argument("--user", metavar="NAME[:GROUP]", help="run the program as this user")
    g.add_argument("-m", "--memory", metavar="SIZE", help="guest memory, e.g. 256M or 2G")
    g.add_argument("--smp", type=str, metavar="N", help="virtual CPUs")
    g.add_argument("--accel", metavar="auto|kvm|tcg", help="accelerator (default: auto)")
    g.add_argument("--kernel", metavar="PKG|DEB", help="kernel package name or .deb path")
    g.add_argument("-n", "--name", metavar="NAME", help="image name (default: program's name)")
    g.add_argument("-c", "--config", metavar="FILE",
                   help="an ops config.json (or engitor YAML) the flags add to")


def _coerce(name: str, value: Any, flag: str) -> Any:
    setting = SETTINGS_BY_NAME[name]
    try:
        return setting.type.coerce(value)
    except SettingTypeError as e:
        raise UserError(f"{flag} {value if not isinstance(value, list) else ' '.join(map(str, value))}: {e}",
                        hint=setting.doc) from None


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags set, already coerced: name -> model value."""
    out: dict[str, Any] = {}
    ports = []
    for spec in args.port:
        ports.append(spec)
    for spec in args.udp:
        ports += [s if s.endswith("/udp") else f"{s}/udp" for s in spec.split(",") if s]
    if ports:
        for spec in ports:
            try:
                parse_ports(spec)
            except SettingTypeError as e:
                raise UserError(f"-p {spec}: {e}", hint=SETTINGS_BY_NAME["ports"].doc) from None
        out["ports"] = _coerce("ports", ports, "-p")
    rest = getattr(args, "program_args", None) or []
    if args.arg is not None or rest:
        out["args"] = _coerce("args", [*(args.arg or []), *rest], "-a")
    if args.env:
        env = {}
        for item in args.env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UserError(f"-e {item}: expected KEY=VALUE",
                                hint="e.g. -e MODE=prod (an empty value is -e KEY=)")
            env[key] = value
        out["env"] = _coerce("env", env, "-e")
    for name in ("files", "dirs"):
        if getattr(args, name):
            out[name] = _coerce(name, list(getattr(args, name)), f"--{name[:-1]}")
    if getattr(args, "debian", None):
        out["debian"] = _coerce("debian", list(args.debian), "--deb")
    if getattr(args, "user", None) is not None:
        out["user"] = _coerce("user", args.user, "--user")
    if args.memory is not None:
        out["memory"] = _coerce("memory", args.memory, "-m")
    if args.smp is not None:
        try:
            cpus = int(args.smp)
        except ValueError:
            cpus = args.smp
        out["cpus"] = _coerce("cpus", cpus, "--smp")
    if args.accel is not None:
        out["accel"] = _coerce("accel", args.accel, "--accel")
    if args.kernel is not None:
        out["kernel"] = args.kernel
    return out


def apply(image: Image, changes: dict[str, Any]) -> Image:
    """Flags over a declared image: ports add up, env merges, the rest replaces."""
    merged = dict(changes)
    if "ports" in changes:
        merged["ports"] = _merge_ports(image.ports, changes["ports"])
    if "env" in changes:
        merged["env"] = {**image.env, **changes["env"]}
    for name in ("files", "dirs", "debian"):
        if name in changes:
            merged[name] = tuple(dict.fromkeys((*getattr(image, name), *changes[name])))
    if "kernel" in changes:
        # A relative .deb path on the command line is relative to where the user is.
        kernel = changes["kernel"]
        if is_deb_path(kernel) and not os.path.isabs(kernel):
            merged["kernel"] = str(Path.cwd() / kernel)
    return dataclasses.replace(image, **merged)


def _merge_ports(old: tuple, new: tuple) -> tuple:
    """A flag's port replaces a declared one for the same guest port (a remap: the recipe says
    8080, -p 18080:8080 moves it) or the same host port."""
    hosts = {(p.host, p.proto) for p in new}
    guests = {(p.guest, p.proto) for p in new}
    kept = (p for p in old if (p.host, p.proto) not in hosts and (p.guest, p.proto) not in guests)
    return (*kept, *new)


def load(target: str, args: argparse.Namespace) -> tuple[Recipe, str | None]:
    """A target and the flags -> the recipe and the image selected by `target:IMAGE`."""
    path, selected = frontends.split_target(target)
    kind = frontends.kind_of(path)
    flags = overrides(args)
    if kind == "program":
        if args.config:
            from engitor.recipe import ops_compat  # issue 4's front end

            # The command line's arguments replace the config's Args (ops' -a) before ops'
            # copy of a file the first argument names.
            recipe = ops_compat.load_with_program(Path(args.config), path, name=args.name,
                                                  args=flags.get("args"))
        else:
            name = default_name(path) if args.name is None else args.name
            image = make_image(name, {"program": path}, where="command line",
                               base_dir=Path.cwd())
            recipe = Recipe("command line", (image,))
    elif kind == "lua":
        from engitor.recipe import lua_front

        recipe = lua_front.load_recipe(_existing(path))
    else:
        from engitor.recipe import yaml_front

        recipe = yaml_front.load_config(_existing(path))
    images = tuple(apply(i, flags) for i in recipe.images)
    recipe = dataclasses.replace(recipe, images=images)
    if args.name is not None and kind != "program":
        return _renamed(recipe, args.name, selected)
    return recipe, selected


def _renamed(recipe: Recipe, name: str, selected: str | None) -> tuple[Recipe, str]:
    """-n NAME for a recipe: the one image it declares (or TARGET:IMAGE picks) takes NAME."""
    chosen = select(recipe, [selected] if selected else [])
    if len(chosen) != 1:
        raise UserError(f"-n {name}: {recipe.source} declares {len(chosen)} images and -n "
                        "names one", hint="pick the image too: TARGET:IMAGE -n NAME",
                        where="command line")
    make_image(name, {"program": "/x"}, where="command line: -n")  # the rules of declarations
    renamed = dataclasses.replace(chosen[0], name=name)
    images = tuple(renamed if i is chosen[0] else i for i in recipe.images)
    return dataclasses.replace(recipe, images=images), name


def _existing(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file", hint="check the path")
    return p


def default_name(program: str) -> str:
    base = Path(program).name or "app"
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in base).lstrip(".-_")
    return cleaned or "app"


def select(recipe: Recipe, names: list[str]) -> list[Image]:
    if not names:
        return list(recipe.images)
    out = []
    for name in names:
        image = recipe.get(name)
        if image is None:
            from engitor.errors import did_you_mean

            raise UserError(f"{recipe.source} declares no image {name!r}",
                            hint=did_you_mean(name, [i.name for i in recipe.images])
                            or "declared: " + ", ".join(i.name for i in recipe.images))
        out.append(image)
    return out


def say(message: str) -> None:
    """engitor's own one-line messages go to stderr, out of the program's way."""
    print(f"engitor: {message}", file=sys.stderr, flush=True)


def built_image(target: str, args: argparse.Namespace) -> tuple[Image, StoredImage]:
    """TARGET as the verbs that hand an image on take it: an image already in the store (by
    name or id, with the flags for its run settings), or anything `run` takes, built first."""
    from engitor import store
    from engitor.image import pipeline

    path, _ = frontends.split_target(target)
    if not Path(path).exists():
        try:
            stored = store.resolve(target)
        except UserError:
            stored = None
        if stored is not None:
            name = stored.manifest.get("name") or target
            declared = make_image(name, {"program": stored.manifest.get("program", "/")},
                                  where="command line", base_dir=Path.cwd())
            return apply(declared, overrides(args)), stored
    recipe, selected = load(target, args)
    images = select(recipe, [selected] if selected else [])
    if len(images) != 1:
        raise UserError(f"{recipe.source} declares several images "
                        f"({', '.join(i.name for i in images)})",
                        hint=f"pick one: {target}:{images[0].name}")
    return images[0], pipeline.build(images[0], log=say)
