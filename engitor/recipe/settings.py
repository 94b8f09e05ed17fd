"""THE settings table: name, type, default, one-line doc.

Validation (`make_image`), `engitor schema` (text and JSON Schema), the YAML front end and the
CLI flags are all derived from `SETTINGS`; `model.Image` has one field per entry (a test keeps
the two in step).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor.errors import UserError, did_you_mean
from engitor.recipe import model, volumes
from engitor.recipe.model import Accel, Hook, Image, MiB, Network, Port, Proto


class SettingTypeError(ValueError):
    """A value of the wrong shape; the message says what was expected."""


# ---------------------------------------------------------------------------------------------
# Types. Each knows how to coerce a front end's plain value (str/int/float/bool/list/dict, or a
# Hook) into the model's value, how to describe itself, and its JSON Schema.


@dataclass(frozen=True)
class SType:
    doc: str

    def coerce(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


def json_pattern(regex: re.Pattern[str]) -> str:
    """A Python regex as a JSON Schema pattern, valid for ECMA-262 and Python: no named groups."""
    return re.sub(r"\(\?P<\w+>", "(", regex.pattern)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, Hook):
        return "function"
    return type(value).__name__


def _integral(value: Any) -> int | None:
    # Lua numbers are doubles: 8080 arrives as 8080.0 from some paths.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _number_text(value: int | float) -> str:
    """A number where a string is meant, written as LuaJIT's tostring would ("%.14g"): 8080,
    not 8080.0, so a recipe's {"-p", 8080} and the YAML or CLI spelling give the same argv."""
    return str(value) if isinstance(value, int) else f"{value:.14g}"


@dataclass(frozen=True)
class Str(SType):
    optional: bool = False

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if not isinstance(value, str):
            raise SettingTypeError(f"expected a string, got a {_type_name(value)}")
        if "\0" in value:
            raise SettingTypeError("strings cannot contain NUL bytes")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


@dataclass(frozen=True)
class Int(SType):
    minimum: int = 0

    def coerce(self, value: Any) -> Any:
        number = _integral(value)
        if number is None:
            raise SettingTypeError(f"expected a whole number, got a {_type_name(value)}")
        if number < self.minimum:
            raise SettingTypeError(f"expected a number of at least {self.minimum}, got {number}")
        return number

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum}


# Case spelled out (no IGNORECASE) so the same pattern serves the JSON Schema.
SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgtKMGT]?)([iI]?[bB])?\s*$")
SIZE_UNITS = {"": MiB, "k": 1024, "m": MiB, "g": 1024 * MiB, "t": 1024 * 1024 * MiB}


def parse_size(value: Any) -> int:
    """'256M', '2G', '512m', '256MiB' or a bare number of MiB (QEMU's convention) -> bytes."""
    number = _integral(value)
    if number is not None:
        if number <= 0:
            raise SettingTypeError(f"expected a positive size, got {number}")
        return number * MiB
    if not isinstance(value, str):
        raise SettingTypeError(f"expected a size like '256M' or '2G', got a {_type_name(value)}")
    m = SIZE_RE.match(value)
    if not m or int(m.group(1)) <= 0:
        raise SettingTypeError(f"expected a size like '256M' or '2G', got {value!r}")
    return int(m.group(1)) * SIZE_UNITS[m.group(2).lower()]


@dataclass(frozen=True)
class Size(SType):
    minimum: int = 32 * MiB

    def coerce(self, value: Any) -> Any:
        size = parse_size(value)
        if size % MiB:
            raise SettingTypeError(f"expected a whole number of MiB, got {value!r}")
        if size < self.minimum:
            raise SettingTypeError(f"expected at least {self.minimum // MiB}M, got {value!r}")
        return size

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string", "pattern": json_pattern(SIZE_RE)},
                {"type": "integer", "minimum": 1},
            ]
        }


@dataclass(frozen=True)
class StrList(SType):
    item_check: Callable[[str], str | None] | None = None

    def coerce(self, value: Any) -> Any:
        if isinstance(value, str):
            raise SettingTypeError(f"expected a list of strings, got a string (write {{{value!r}}})")
        if not isinstance(value, list | tuple):
            raise SettingTypeError(f"expected a list of strings, got a {_type_name(value)}")
        out = []
        for i, item in enumerate(value, 1):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise SettingTypeError(f"item {i}: expected a string, got a {_type_name(item)}")
            # Numbers are accepted where argv-like strings are meant: args = {"-p", 8080}.
            out.append(item if isinstance(item, str) else _number_text(item))
            if "\0" in out[-1]:
                raise SettingTypeError(f"item {i}: strings cannot contain NUL bytes")
            if self.item_check and (problem := self.item_check(out[-1])):
                raise SettingTypeError(f"item {i}: {problem}")
        return tuple(out)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": ["string", "number"]}}


@dataclass(frozen=True)
class StrMap(SType):
    key_check: Callable[[str], str | None] | None = None
    value_check: Callable[[str], str | None] | None = None

    def coerce(self, value: Any) -> Any:
        if isinstance(value, list | tuple) and not value:
            return {}  # an empty Lua table is both a list and a map
        if not isinstance(value, dict):
            raise SettingTypeError(f"expected a table of strings, got a {_type_name(value)}")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SettingTypeError(f"keys must be strings, got {key!r}")
            if self.key_check and (problem := self.key_check(key)):
                raise SettingTypeError(f"key {key!r}: {problem}")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise SettingTypeError(f"{key}: expected a string, got a {_type_name(item)}")
            out[key] = item if isinstance(item, str) else _number_text(item)
            if "\0" in key or "\0" in out[key]:
                raise SettingTypeError(f"{key}: strings cannot contain NUL bytes")
            if self.value_check and (problem := self.value_check(out[key])):
                raise SettingTypeError(f"{key}: {problem}")
        return out

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"type": ["string", "number"]}}


@dataclass(frozen=True)
class VolumeMap(StrMap):
    """{["/guest/path"] = "name" | "./disk.img" | "tmpfs"}: the sources are checked too."""

    def coerce(self, value: Any) -> Any:
        out = {}
        for guest, source in super().coerce(value).items():
            if problem := volumes.source_problem(source):
                raise SettingTypeError(f"{guest}: {problem}")
            out[volumes.normalize(guest)] = source
        return out


def _env_name_problem(key: str) -> str | None:
    if not key or "=" in key:
        return "an environment variable name cannot be empty or contain '='"
    return None


def _address_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address (the guest's resolv.conf takes addresses)"
    return None


def _guest_dir_problem(value: str) -> str | None:
    if ".." in value.split("/"):
        return f"the guest path {value!r} climbs with '..'; write a path inside the image"
    return None


PORT_RE = re.compile(
    r"^(?:(?P<bind>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?P<host>\d+)(?:[:-](?P<guest>\d+))?(?:/(?P<proto>tcp|udp))?$"
)


def parse_port(spec: Any) -> Port:
    """A port spec: 8080 | '8080:80' (kraft) | '8080-80' (ops) | 'ADDR:8080:80' | '…/udp'."""
    number = _integral(spec)
    if number is not None:
        spec = str(number)
    if not isinstance(spec, str):
        raise SettingTypeError(f"expected a port like 8080 or '8080:80', got a {_type_name(spec)}")
    m = PORT_RE.match(spec.strip())
    if not m:
        raise SettingTypeError(
            f"expected a port like 8080, '8080:80', '8080-80' or '8080/udp', got {spec!r}"
        )
    host = int(m.group("host"))
    guest = int(m.group("guest") or host)
    for p in (host, guest):
        if not 1 <= p <= 65535:
            raise SettingTypeError(f"port {p} is out of range 1-65535 in {spec!r}")
    bind = m.group("bind") or "127.0.0.1"
    if m.group("bind"):  # the default needs no check (and ip_address() is slow in bulk)
        try:
            ipaddress.ip_address(bind.strip("[]"))
        except ValueError:
            raise SettingTypeError(f"{bind!r} is not an IP address in {spec!r}") from None
    return Port(host, guest, Proto(m.group("proto") or "tcp"), bind)


def parse_ports(spec: Any) -> list[Port]:
    """One -p value; ops allows comma lists ('80,443')."""
    if isinstance(spec, str) and "," in spec:
        return [parse_port(s) for s in spec.split(",") if s.strip()]
    return [parse_port(spec)]


@dataclass(frozen=True)
class Ports(SType):
    def coerce(self, value: Any) -> Any:
        if _integral(value) is not None or isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise SettingTypeError(f"expected a list of ports, got a {_type_name(value)}")
        out: list[Port] = []
        for i, item in enumerate(value, 1):
            try:
                out.extend(parse_ports(item))
            except SettingTypeError as e:
                raise SettingTypeError(f"item {i}: {e}") from None
        seen: dict[tuple[int, Proto], Port] = {}
        for p in out:
            if (p.host, p.proto) in seen:
                raise SettingTypeError(f"host port {p.host}/{p.proto.value} is forwarded twice")
            seen[(p.host, p.proto)] = p
        return tuple(out)

    def schema(self) -> dict[str, Any]:
        item = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                          {"type": "string", "pattern": json_pattern(PORT_RE)}]}
        return {"anyOf": [item, {"type": "array", "items": item}]}


@dataclass(frozen=True)
class Choice(SType):
    enum: type[enum.Enum]

    def coerce(self, value: Any) -> Any:
        names = [e.value for e in self.enum]
        if isinstance(value, str) and value.lower() in names:
            return self.enum(value.lower())
        raise SettingTypeError(f"expected one of {', '.join(names)}, got {value!r}")

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": [e.value for e in self.enum]}


@dataclass(frozen=True)
class Function(SType):
    def coerce(self, value: Any) -> Any:
        if not isinstance(value, Hook):
            raise SettingTypeError(f"expected a function, got a {_type_name(value)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"not": {}}  # functions exist only in Lua recipes


# ---------------------------------------------------------------------------------------------


def _cpus_flag(text: str) -> Any:
    """--smp's (or --stop-timeout's) text: a whole number when it is one, else as given (the
    table then refuses it)."""
    try:
        return int(text)
    except ValueError:
        return text


def _env_flag(items: list[str]) -> dict[str, str]:
    """-e KEY=VALUE, repeated, as the table's mapping."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"-e {item}: expected KEY=VALUE",
                            hint="e.g. -e MODE=prod (an empty value is -e KEY=)")
        env[key] = value
    return env


def _volume_flags(specs: list[str]) -> dict[str, str]:
    """-v SOURCE:/PATH, each; a disk-image path on the command line is relative to where the
    user is."""
    out: dict[str, str] = {}
    for spec in specs:
        try:
            guest, source = volumes.parse_flag(spec)
        except ValueError as e:
            raise UserError(f"-v {spec}: {e}",
                            hint="e.g. -v pgdata:/var/lib/postgresql/data, -v ./disk.img:/data, "
                                 "-v tmpfs:/cache") from None
        if volumes.kind_of(source) is volumes.Kind.FILE:
            source = str(Path(source).expanduser().absolute())
        out[guest] = source
    return out


@dataclass(frozen=True)
class Flag:
    """A setting's command-line spelling (run, build and load get it; see commands/common.py).

    `repeat`: the flag may be given many times and collects a list; `parse` turns the raw text
    (a list when repeated) into what the setting's type coerces; `help` is the flag's short
    text when the setting's doc does not read well there."""

    names: tuple[str, ...]
    metavar: str
    help: str | None = None
    repeat: bool = False
    parse: Callable[[Any], Any] | None = None


def flag(*names: str, metavar: str, help: str | None = None, repeat: bool = False,
         parse: Callable[[Any], Any] | None = None) -> Flag:
    return Flag(names, metavar, help, repeat, parse)


@dataclass(frozen=True)
class Setting:
    name: str
    type: SType
    default: Any
    doc: str
    group: str = "image"
    # A Lua recipe may give a function instead of the value; it runs at build time (see
    # `expand_generators`) and its result is added to the declared value.
    generator: bool = False
    # The run/build/load flag that sets it, if any: the argument group is built from these.
    flag: Flag | None = None


S = Setting
SETTINGS: tuple[Setting, ...] = (
    S("program", Str("a path", optional=True), None,
      "The program to run: a host path to an ELF executable (relative to the recipe's folder), "
      "or a path inside the package."),
    S("package", Str("a name", optional=True), None,
      "A runtime package (recipes/packages/NAME.lua) that provides the program."),
    S("debian", StrList("list of Debian package names"), (),
      "Debian packages installed whole (with their dependencies, users, directories and "
      "configuration); the program may be a path inside them, or your own program beside "
      "them: {'postgresql-15'}; a trailing '-' leaves a package out.",
      flag=flag("--deb", metavar="PKG", repeat=True,
                help="install a Debian package whole, with its dependencies; repeatable")),
    S("args", StrList("list of strings"), (), "Arguments passed to the program (argv[1:]).",
      flag=flag("-a", "--arg", metavar="ARG", repeat=True,
                help="program argument; repeatable (replaces the recipe's args)")),
    S("env", StrMap("table of strings", _env_name_problem), {}, "Environment of the program.",
      flag=flag("-e", "--env", metavar="K=V", repeat=True, parse=_env_flag,
                help="environment variable; repeatable")),
    S("files", StrList("list of paths"), (),
      "Host files copied in at the same relative path (absolute paths keep theirs).",
      generator=True, flag=flag("--file", metavar="PATH", repeat=True,
                                help="copy a host file in at the same relative path; repeatable")),
    S("dirs", StrList("list of paths"), (), "Host directories copied in, recursively.",
      generator=True, flag=flag("--dir", metavar="PATH", repeat=True,
                                help="copy a host directory in, recursively; repeatable")),
    S("map", StrMap("table of glob = guest directory", value_check=_guest_dir_problem), {},
      "Host globs copied into guest directories: {['conf/*'] = '/etc/app'}.", generator=True),
    S("ports", Ports("list of ports"), (),
      "Forwarded ports: 8080, '8080:80' (host:guest), '8080-80' (ops), '53/udp', "
      "'0.0.0.0:8080:80' to bind beyond loopback.", group="run",
      flag=flag("-p", "--port", metavar="PORT", repeat=True,
                help="forward a port: 8080, HOST:GUEST (8080:80), ops' HOST-GUEST, "
                     "ADDR:HOST:GUEST, with /udp for UDP; repeatable, comma lists allowed")),
    S("memory", Size("a size"), model.DEFAULT_MEMORY, "Guest memory: '256M', '2G'.", group="run",
      flag=flag("-m", "--memory", metavar="SIZE", help="guest memory, e.g. 256M or 2G")),
    S("cpus", Int("a number", minimum=1), 1, "Virtual CPUs.", group="run",
      flag=flag("--smp", metavar="N", parse=_cpus_flag, help="virtual CPUs")),
    S("accel", Choice("auto, kvm or tcg", Accel), Accel.AUTO,
      "Accelerator: auto probes whether KVM really runs a guest, else TCG.", group="run",
      flag=flag("--accel", metavar="auto|kvm|tcg", help="accelerator (default: auto)")),
    S("kernel", Str("a package or .deb path"), model.DEFAULT_KERNEL,
      "Kernel: a Debian kernel package name, or a path to its .deb (offline).",
      flag=flag("--kernel", metavar="PKG|DEB", help="kernel package name or .deb path")),
    S("kernel_args", StrList("list of strings"), (), "Extra kernel command line arguments."),
    S("modules", StrList("list of module names"), (),
      "Extra kernel modules to load at boot (their dependencies come along)."),
    S("hostname", Str("a name", optional=True), None, "Guest hostname (default: image name)."),
    S("workdir", Str("a guest path"), "/", "Working directory of the program in the guest."),
    S("user", Str("NAME[:GROUP]", optional=True), None,
      "Run the program as this user (and group): 'postgres', 'www-data:www-data', '1000:1000'.",
      flag=flag("--user", metavar="NAME[:GROUP]", help="run the program as this user")),
    S("nameservers", StrList("list of addresses", item_check=_address_problem),
      model.DEFAULT_NAMESERVERS,
      "DNS servers written to the guest's /etc/resolv.conf."),
    S("network", Choice("auto, static or dhcp", Network), Network.AUTO,
      "Guest address: static 10.0.2.15, or from DHCP (then DNS too); auto is static under "
      "engitor and DHCP in exported disks.",
      flag=flag("--network", metavar="auto|static|dhcp",
                help="how the guest gets its address (default auto)")),
    S("boot_timeout", Int("seconds", minimum=1), model.DEFAULT_BOOT_TIMEOUT,
      "Seconds the VM may take to start the program before the watchdog reports it.",
      group="run"),
    S("stop_timeout", Int("seconds", minimum=0), model.DEFAULT_STOP_TIMEOUT,
      "Seconds the program gets after SIGTERM before the VM is powered off.", group="run",
      flag=flag("--stop-timeout", metavar="SECONDS", parse=_cpus_flag,
                help="seconds the program gets after SIGTERM before the VM is powered off")),
    S("start", Choice("boot or snapshot", model.Start), model.Start.BOOT,
      "How each VM starts: boot the kernel, or restore the VM saved where the init is about to "
      "start the program (the first run boots and saves it beside the image; its clock and "
      "random seed are renewed on restore).", group="run",
      flag=flag("--start", metavar="boot|snapshot",
                help="boot (default), or restore the VM saved at the program's start")),
    S("volumes", VolumeMap("table of guest path = volume", volumes.guest_path_problem), {},
      "Storage mounted before the program starts: {['/var/lib/data'] = 'NAME'} (a named ext4 "
      "volume kept across runs), './disk.img' (an ext4 image file) or 'tmpfs'.",
      flag=flag("-v", "--volume", metavar="SOURCE:/PATH", repeat=True, parse=_volume_flags,
                help="mount storage at a guest path before the program starts: a named volume "
                     "(pgdata:/var/lib/postgresql/data), an ext4 image file (./disk.img:/data) "
                     "or tmpfs:/cache; repeatable")),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Hook names a Lua recipe may set; they run later in the script scope.
HOOKS: dict[str, str] = {
    "before_build": "Runs before the image is assembled; may write into the staging tree.",
    "after_build": "Runs after the image is stored; receives the image id.",
}


def make_image(name: str, table: Mapping[str, Any], *, where: str = "",
               base_dir: Path | None = None,
               locate: Callable[[str], str | None] | None = None) -> Image:
    """Validate a front end's plain table into an `Image`.

    `locate(key)` gives a finer location for a key (a Lua line or YAML line:column); errors
    otherwise carry `where`.
    """
    def at(key: str | None) -> str:
        return (locate(key) if locate and key else None) or where

    if not isinstance(name, str) or not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserError(f"invalid image name {name!r}",
                        hint="use letters, digits, '_', '.', '-' (starting with a letter or digit)",
                        where=where or None)
    values: dict[str, Any] = {}
    hooks: dict[str, Hook] = {}
    for key, value in table.items():
        if key in HOOKS:
            if not isinstance(value, Hook):
                raise UserError(f"{key}: expected a function, got a {_type_name(value)}",
                                hint="hooks are Lua functions: before_build = function(ctx) … end",
                                where=at(key))
            hooks[key] = value
            continue
        setting = SETTINGS_BY_NAME.get(key) if isinstance(key, str) else None
        if setting is None:
            hint = did_you_mean(str(key), [*SETTINGS_BY_NAME, *HOOKS]) or \
                "run 'engitor schema' for the list of settings"
            raise UserError(f"unknown setting {key!r} in image {name!r}", hint=hint, where=at(key))
        if setting.generator and isinstance(value, Hook):
            hooks[key] = value  # its result joins the (default) value at build time
            continue
        try:
            values[key] = setting.type.coerce(value)
        except SettingTypeError as e:
            raise UserError(f"{key}: {e}", hint=setting.doc, where=at(key)) from None
    if values.get("program") is None and values.get("package") is None:
        raise UserError(f"image {name!r} has no program",
                        hint="set program = './server' (or package = 'python3')", where=where or None)
    return Image(name=name, base_dir=_resolved(base_dir or Path.cwd()), where=where,
                 hooks=hooks, **values)


def _resolved(path: Path) -> Path:
    # Made absolute first: a cached "." would keep the folder of the first caller's cwd.
    return _resolved_absolute(path if path.is_absolute() else Path.cwd() / path)


@functools.lru_cache(maxsize=64)
def _resolved_absolute(path: Path) -> Path:
    # A recipe declaring a thousand images resolves its folder once, not a thousand times.
    return path.resolve()


def expand_generators(image: Image, ctx: Mapping[str, Any]) -> Image:
    """Run the image's generator functions (`files = function(ctx) … end`, also dirs and map)
    and return the image with their results added to the declared values. The builder calls
    this first, with ctx = {"name": image.name, "staging": "/abs/staging/root"}."""
    changes: dict[str, Any] = {}
    for setting in SETTINGS:
        hook = image.hooks.get(setting.name) if setting.generator else None
        if hook is None:
            continue
        result = hook.call(dict(ctx))
        try:
            value = setting.type.coerce([] if result is None else result)
        except SettingTypeError as e:
            raise UserError(f"{setting.name}: the function returned a value of the wrong shape: "
                            f"{e}", hint=setting.doc, where=hook.where or image.where) from None
        current = getattr(image, setting.name)
        changes[setting.name] = ({**current, **value} if isinstance(current, Mapping)
                                 else tuple(current) + tuple(value))
    return image.with_settings(**changes) if changes else image


def _default_text(setting: Setting) -> str:
    value = setting.default
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(setting.type, Size):
        return f"{value // MiB}M"
    if isinstance(value, tuple | list):
        return "{" + ", ".join(repr(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{}"
    return repr(value) if isinstance(value, str) else str(value)


def schema_rows() -> list[tuple[str, str, str, str, str]]:
    """(name, group, type, default, doc) for every setting, then every hook: `engitor schema`."""
    rows = [(s.name, s.group, s.type.doc + (" or a function" if s.generator else ""),
             _default_text(s), s.doc) for s in SETTINGS]
    rows += [(name, "hook", "function", "-", doc) for name, doc in HOOKS.items()]
    return rows


def image_json_schema() -> dict[str, Any]:
    """JSON Schema of one image's settings (no name, no hooks): unknown keys are refused."""
    props: dict[str, Any] = {}
    for s in SETTINGS:
        prop = dict(s.type.schema())
        prop["description"] = s.doc
        if s.default is not None and not isinstance(s.type, Function):
            default = s.default.value if isinstance(s.default, enum.Enum) else s.default
            prop["default"] = list(default) if isinstance(default, tuple) else default
        props[s.name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False}
