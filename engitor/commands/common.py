"""What run, build and load share: the image flags and turning a target into images.

Flags are settings too: each is coerced by the settings table's own type, so `-p 80x` fails
the way `ports = {"80x"}` does in a recipe, and a CLI-flag run yields the same model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.recipe import envfile, frontends, targets
from engitor.recipe.model import Image, Recipe
from engitor.recipe.settings import (
    SETTINGS,
    SETTINGS_BY_NAME,
    SettingTypeError,
    make_image,
    parse_ports,
)
from engitor.store import StoredImage


def add_image_flags(p: argparse.ArgumentParser) -> None:
    """The image-setting flags, one for each setting that declares a `Flag` in the settings
    table (a new setting gets its flag there), plus the few that are not settings."""
    g = p.add_argument_group("image settings (override the recipe's)")
    for setting in SETTINGS:
        f = setting.flag
        if f is None:
            continue
        g.add_argument(*f.names, dest=setting.name, metavar=f.metavar,
                       help=f.help or setting.doc, action="append" if f.repeat else "store",
                       default=None)
    g.add_argument("--udp", action="append", default=[], metavar="PORT",
                   help="forward a UDP port (same forms as -p)")
    g.add_argument("--env-file", action="append", default=[], metavar="FILE", dest="env_files",
                   help="environment variables from a file of KEY=VALUE lines (Docker's "
                        "format); -e wins over it; repeatable")
    g.add_argument("-n", "--name", metavar="NAME", help="image name (default: program's name)")
    g.add_argument("-c", "--config", metavar="FILE",
                   help="an ops config.json (or engitor YAML) the flags add to")


def _coerce(name: str, value: Any, flag: str) -> Any:
    setting = SETTINGS_BY_NAME[name]
    try:
        return setting.type.coerce(value)
    except SettingTypeError as e:
        shown = " ".join(map(str, value)) if isinstance(value, list) else value
        raise UserError(f"{flag} {shown}: {e}", hint=setting.doc) from None


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags set, already coerced by the table: name -> model value."""
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        f = setting.flag
        raw = getattr(args, setting.name, None) if f else None
        if f is None or setting.name in ("ports", "args") or raw is None:
            continue
        value = f.parse(raw) if f.parse else raw
        out[setting.name] = _coerce(setting.name, value, f.names[0])
    ports = _ports(args)
    if ports:
        out["ports"] = ports
    rest = getattr(args, "program_args", None) or []
    if args.args is not None or rest:  # `--` hands the program the rest of the command line
        out["args"] = _coerce("args", [*(args.args or []), *rest], "-a")
    env_files = getattr(args, "env_files", None) or []
    if env_files:  # -e wins over a file's value
        env: dict[str, str] = {}
        for path in env_files:
            env.update(envfile.load(path))
        out["env"] = _coerce("env", {**env, **out.get("env", {})}, "--env-file")
    return out


def _ports(args: argparse.Namespace) -> Any:
    """-p and --udp together; each spec checked alone first, so the error names it."""
    specs = list(args.ports or [])
    for spec in args.udp:
        specs += [s if s.endswith("/udp") else f"{s}/udp" for s in spec.split(",") if s]
    for spec in specs:
        try:
            parse_ports(spec)
        except SettingTypeError as e:
            raise UserError(f"-p {spec}: {e}", hint=SETTINGS_BY_NAME["ports"].doc) from None
    return _coerce("ports", specs, "-p") if specs else None


def load(target: str, args: argparse.Namespace) -> tuple[Recipe, str | None]:
    """A target and the flags -> the recipe and the image selected by `target:IMAGE`."""
    return targets.load(target, overrides(args), config=args.config, name=args.name)


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
            return targets.apply(declared, overrides(args)), stored
    recipe, selected = load(target, args)
    images = targets.select(recipe, [selected] if selected else [])
    if len(images) != 1:
        raise UserError(f"{recipe.source} declares several images "
                        f"({', '.join(i.name for i in images)})",
                        hint=f"pick one: {target}:{images[0].name}")
    return images[0], pipeline.build(images[0], log=say)
