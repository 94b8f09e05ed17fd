"""What run, build and load share: the image flags and turning a target into images.

Flags are settings too: each is coerced by the settings table's own type, so `-p 80x` fails
the way `ports = {"80x"}` does in a recipe, and a CLI-flag run yields the same model.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engitor.errors import UserError
from engitor.recipe import targets
from engitor.recipe.model import Recipe
from engitor.recipe.settings import SETTINGS_BY_NAME, SettingTypeError, parse_ports


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


def load(target: str, args: argparse.Namespace) -> tuple[Recipe, str | None]:
    """A target and the flags -> the recipe and the image selected by `target:IMAGE`."""
    return targets.load(target, overrides(args), config=args.config, name=args.name)


def say(message: str) -> None:
    """engitor's own one-line messages go to stderr, out of the program's way."""
    print(f"engitor: {message}", file=sys.stderr, flush=True)
