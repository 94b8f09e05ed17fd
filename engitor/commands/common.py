"""What run, build and load share: the image flags and turning a target into images.

Flags are settings too: each is coerced by the settings table's own type, so `-p 80x` fails
the way `ports = {"80x"}` does in a recipe, and a CLI-flag run yields the same model.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engitor.errors import UserError
from engitor.recipe import envfile, targets
from engitor.recipe.model import Recipe
from engitor.recipe.settings import (
    SETTINGS,
    SETTINGS_BY_NAME,
    SettingTypeError,
    parse_ports,
)


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
