"""NanoVMs ops' config.json, accepted as is: compiled to the Lua recipe it means.

    recipe = load_with_program(Path("config.json"), "./server", name=None)  # ops run -c … server

ops decodes its config with Go's encoding/json into fixed structs: keys match field names
case-insensitively (configs in the wild write "ENV"), unknown keys are an error. The same holds
here. What engitor honours becomes settings (Program, Args, Files, Dirs, MapDirs, Env,
NameServers, RunConfig.Ports/UDPPorts/Memory/CPUs/Accel/ImageName); every other ops key that
asks for something gets a one-line warning naming it and what engitor does instead, and a
comment in the compiled Lua. Relative paths are relative to the config's folder (ops sets its
LocalFilesParentDirectory to it). As `ops run` does for packages, the program's first argument
is copied into the image when it names a file or folder in the current directory (unless
DisableArgsCopy).

`yaml_front.compile_config` sends a file here when `is_ops_config` says it is one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engitor.errors import UserError, did_you_mean
from engitor.recipe import lua_emit, settings
from engitor.recipe.lua_emit import Entry, ImageDecl, Lit, Merge, Origin, Program, Ref, Seq, Table
from engitor.recipe.names import default_name
from engitor.recipe.yaml_doc import ENV_TAG, NULL, Document, kind
from engitor.recipe.yaml_lower import Compiled, ValueCompiler, is_merge

NANOS = "engitor boots a Debian Linux kernel (setting kernel), not Nanos"
NO_VOLUMES = "engitor has no volumes: copy files in with Files, Dirs or MapDirs"
CLOUD = "engitor runs images locally under QEMU; cloud settings do not apply"
NETWORK = ("engitor uses QEMU's user networking (the guest is 10.0.2.15) and forwards ports "
           "(RunConfig.Ports, -p)")
OUTPUT = "engitor reports on stderr (engitor --debug shows tracebacks)"

# Honoured keys map to a setting; the others say what engitor does instead.
HONOURED = {"Program", "Args", "DisableArgsCopy", "Files", "Dirs", "MapDirs", "Env",
            "NameServers", "RunConfig"}
IGNORED = {
    "BaseVolumeSz": "engitor's root is an initramfs sized by its contents",
    "Boot": "engitor boots the kernel directly (QEMU -kernel), without a bootloader",
    "UefiBoot": "engitor boots the kernel directly (QEMU -kernel), without a bootloader",
    "Uefi": "engitor boots the kernel directly (QEMU -kernel), without a bootloader",
    "BuildDir": "engitor stages builds in a temporary folder of its own",
    "CloudConfig": CLOUD,
    "TargetConfig": CLOUD,
    "Debugflags": "a Nanos manifest setting; " + NANOS,
    "NoTrace": "a Nanos manifest setting; " + NANOS,
    "ManifestPassthrough": "a Nanos manifest setting; " + NANOS,
    "RebootOnExit": "the VM powers off when the program exits and engitor run exits with "
                    "its code",
    "Force": "images are content-addressed: an unchanged image is reused, a changed one rebuilt",
    "Home": "engitor keeps its state in $ENGITOR_HOME (default ~/.engitor)",
    "Kernel": NANOS,
    "KlibDir": "Nanos kernel libraries; engitor loads Linux kernel modules (setting modules)",
    "Klibs": "Nanos kernel libraries; engitor loads Linux kernel modules (setting modules)",
    "Mounts": NO_VOLUMES,
    "NanosVersion": NANOS,
    "NightlyBuild": NANOS,
    "TFSv4": "engitor's root is an initramfs, not a TFS filesystem",
    "ProgramPath": "the program is Program, or the one the command line names",
    "LocalFilesParentDirectory": "relative paths are relative to the config's folder (where "
                                 "ops itself points it)",
    "TargetRoot": "libraries come from the host's root, or from a runtime package (setting "
                  "package)",
    "Version": "package metadata; engitor's runtime packages are recipes/packages/*.lua",
    "Language": "package metadata; engitor's runtime packages are recipes/packages/*.lua",
    "Runtime": "package metadata; engitor's runtime packages are recipes/packages/*.lua",
    "Description": "package metadata; engitor's runtime packages are recipes/packages/*.lua",
    "VolumesDir": NO_VOLUMES,
    "PackageBaseURL": "engitor's runtime packages come from Debian's archive (apt)",
    "PackageManifestURL": "engitor's runtime packages come from Debian's archive (apt)",
}
RUN_HONOURED = {"Accel", "CPUs", "Memory", "Ports", "UDPPorts", "ImageName"}
RUN_IGNORED = {
    "AtExit": "engitor runs no host command when the VM stops",
    "Background": "start it in the background with engitor run -d",
    "BackgroundDetach": "start it in the background with engitor run -d",
    "Bridged": NETWORK, "BridgeIPAddress": NETWORK, "BridgeName": NETWORK, "TapName": NETWORK,
    "IPAddress": NETWORK, "IPv6Address": NETWORK, "Gateway": NETWORK, "NetMask": NETWORK,
    "Nics": NETWORK,
    "CanIPForward": CLOUD, "GPUs": CLOUD, "GPUType": CLOUD, "InstanceGroup": CLOUD,
    "VolumeSizeInGb": CLOUD, "ThreadsPerCore": CLOUD, "AttachVolumeOnInstanceCreate": CLOUD,
    "Debug": "there is no GDB stub: the program runs on Linux, debug it on the host",
    "GdbPort": "there is no GDB stub: the program runs on Linux, debug it on the host",
    "InstanceName": "instances are named after the image (engitor ps)",
    "Kernel": NANOS,
    "Mgmt": "engitor's VMs have no management network interface",
    "Vga": "engitor's VMs have a serial console only",
    "Mounts": NO_VOLUMES,
    "QMP": "every engitor VM has a QMP socket already (in its run folder)",
    "ShowDebug": OUTPUT, "ShowErrors": OUTPUT, "ShowWarnings": OUTPUT, "Verbose": OUTPUT,
    "JSON": OUTPUT,
}
CLOUD_FIELDS = ("BucketName BucketNamespace ConfidentialVM DedicatedHostID DomainName StaticIP "
                "EnableIPv6 Flavor ImageType ImageName InstanceProfile KMS Platform ProjectID "
                "RootVolume SecurityGroup SkipImportVerify Spot Subnet Tags UserData VPC "
                "Zone").split()
TOP_FIELDS = (*sorted(HONOURED), *IGNORED)
RUN_FIELDS = (*sorted(RUN_HONOURED), *RUN_IGNORED)
# Where each honoured key lands, in the settings table's order.
ORDER = {s.name: n for n, s in enumerate(settings.SETTINGS)}


def field_for(key: str, fields: Sequence[str]) -> str | None:
    """Go's encoding/json: the exact name, else a case-insensitive match."""
    if key in fields:
        return key
    folded = key.casefold()
    return next((f for f in fields if len(f) == len(key) and f.casefold() == folded), None)


def is_ops_config(doc: Document, path: Path) -> bool:
    """ops' keys (Program, RunConfig, ENV …) make a file an ops config; engitor's snake_case
    settings make it engitor's; keys both know (program, env …) leave it to the suffix."""
    root = doc.root
    if not isinstance(root, MappingNode):
        return False
    engitor_keys = {*settings.SETTINGS_BY_NAME, "images", "name"}
    ops, ours = [], []
    for key, _ in root.value:
        if not isinstance(key, ScalarNode) or not isinstance(key.value, str):
            continue
        text = key.value
        is_ops = field_for(text, TOP_FIELDS) is not None
        is_ours = text in engitor_keys or text.startswith("x-") or text == "<<"
        if is_ops and not is_ours:
            ops.append(key)
        elif is_ours and not is_ops:
            ours.append(key)
    if ops and ours:
        raise doc.error(ours[0], f"the file mixes ops config keys ({ops[0].value}) with engitor "
                                 f"settings ({ours[0].value})",
                        "an ops config.json uses ops' keys (RunConfig: {Ports: […]}); an engitor "
                        "config uses the settings 'engitor schema' lists")
    if ops or ours:
        return bool(ops)
    return path.suffix.lower() == ".json"


class _Ops:
    def __init__(self, doc: Document, path: Path):

        self.doc = doc
        self.path = path
        survey = doc.survey()
        self.values = ValueCompiler(doc, survey, doc.comments(survey))
        self.entries: dict[str, Entry] = {}
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.disable_args_copy = False
        self.image_name: str | None = None

    def fields(self, node: MappingNode, fields: Sequence[str],
               path: str) -> list[tuple[str, Node, Node]]:
        """(field, key node, value node) of an ops struct, unknown keys refused like ops."""
        out: list[tuple[str, Node, Node]] = []
        seen: dict[str, str] = {}
        for key, value in self.doc.pairs(node, path or "the config"):
            name = self.doc.text_key(key, "a key") if not is_merge(key) else "<<"
            found = field_for(name, fields)
            full = f"{path}.{name}" if path else name
            if found is None:
                hint = did_you_mean(name, fields) or _folded_hint(name, fields)
                raise self.doc.error(key, f"unknown ops config key {full!r} (ops refuses it too)",
                                     hint or f"ops' keys here: {', '.join(sorted(fields))}")
            if found in seen:
                raise self.doc.error(key, f"{name!r} and {seen[found]!r} are the same key "
                                          f"({found}): ops matches keys ignoring case",
                                     "keep one")
            seen[found] = name
            out.append((found, key, value))
        return out

    def warn(self, key: Node, path: str, reason: str) -> None:
        self.warnings.append(f"{self.doc.where(key)}: warning: {path} is not used: {reason}")
        self.notes.append(f"{path} (line {key.start_mark.line + 1}) is not used: {reason}")

    def setting(self, name: str, key: Node, value: lua_emit.Node, ops_path: str) -> None:
        origin = self.doc.origin(key, ops_path)
        entry = Entry(origin, name, value, trailing=ops_path)
        if name in self.entries:  # Ports and UDPPorts share ports
            old = self.entries[name]
            assert isinstance(old.value, Seq) and isinstance(value, Seq)
            old.value.items.extend(value.items)
            old.trailing = f"{old.trailing}, {ops_path}"
            return
        self.entries[name] = entry

    def top(self) -> None:
        root = self.doc.root
        if root is None:
            raise UserError("the file is empty", hint='an ops config is a JSON object: {"Dirs": '
                            '["static"]}', where=f"{self.doc.display}:1:1")
        if not isinstance(root, MappingNode):
            raise self.doc.error(root, f"an ops config is a JSON object, got a {kind(root)}")
        simple = {"Program": "program", "Args": "args", "Files": "files", "Dirs": "dirs",
                  "MapDirs": "map", "Env": "env", "NameServers": "nameservers"}
        for name, key, value in self.fields(root, TOP_FIELDS, ""):
            if _zero(value, name in HONOURED):
                continue  # Go's zero value (or null): nothing was asked for
            if name in simple:
                self.setting(simple[name], key, self.values.value(value, name), name)
            elif name == "DisableArgsCopy":
                self.disable_args_copy = self.typed(value, bool, name) is True
            elif name == "RunConfig":
                self.run_config(value)
            else:
                if name == "CloudConfig" and isinstance(value, MappingNode):
                    self.fields(value, CLOUD_FIELDS, name)
                self.warn(key, name, IGNORED[name])

    def run_config(self, node: Node) -> None:
        if not isinstance(node, MappingNode):
            raise self.doc.error(node, f"RunConfig: expected an object, got a {kind(node)}")
        for name, key, value in self.fields(node, RUN_FIELDS, "RunConfig"):
            path = f"RunConfig.{name}"
            if _zero(value, name in RUN_HONOURED):
                continue
            if name == "Memory":
                self.setting("memory", key, self.values.value(value, path), path)
            elif name == "CPUs":
                self.setting("cpus", key, self.values.value(value, path), path)
            elif name == "Ports":
                self.setting("ports", key, self.port_list(value, path, ""), path)
            elif name == "UDPPorts":
                self.setting("ports", key, self.port_list(value, path, "/udp"), path)
            elif name == "Accel":
                accel = "auto" if self.typed(value, bool, path) else "tcg"
                self.setting("accel", key, Lit(self.doc.origin(value, path), accel), path)
            elif name == "ImageName":
                text = str(self.typed(value, str, path))
                self.image_name = PurePosixPath(text).name.split(".")[0] or None
            else:
                self.warn(key, path, RUN_IGNORED[name])

    def port_list(self, node: Node, path: str, suffix: str) -> Seq:
        if not isinstance(node, SequenceNode):
            raise self.doc.error(node, f"{path}: expected a list of ports, got a {kind(node)}",
                                 f'"{path.rsplit(".", 1)[-1]}": ["8080", "8443-443"]')
        items: list[lua_emit.Node] = []
        for item in node.value:
            value = self.doc.scalar(item) if isinstance(item, ScalarNode) and \
                item.tag != ENV_TAG else None
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise self.doc.error(item, f"{path}: expected a port like \"8080\" or "
                                           f"\"8080-80\", got {_shown(item, value)}")
            text = value if isinstance(value, str) or not suffix else str(value)
            items.append(Lit(self.doc.origin(item, path), f"{text}{suffix}" if suffix else text))
        return Seq(self.doc.origin(node, path), items)

    def typed(self, node: Node, want: type, path: str) -> object:
        value = self.doc.scalar(node) if isinstance(node, ScalarNode) and \
            node.tag != ENV_TAG else None
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            word = "true or false" if want is bool else "a string"
            raise self.doc.error(node, f"{path}: expected {word}, got {_shown(node, value)}")
        return value

    def args_copy(self, args: list[str], config_dir: Path) -> None:
        """ops copies the program's first argument into the image when it names a file or
        folder in the current directory (a script for an interpreter, say)."""
        if self.disable_args_copy or not args:
            return
        first = args[0]
        rel = PurePosixPath(first)
        if not first or rel.is_absolute() or ".." in rel.parts or first.startswith("-"):
            return
        host = Path.cwd() / first
        if not host.exists():
            return
        origin = Origin(0, 0, "the program's first argument")
        note = f"Args[1] {first!r} names a {'folder' if host.is_dir() else 'file'} here: " \
               "copied in, as ops does"
        if Path.cwd().resolve() == config_dir.resolve():
            name = "dirs" if host.is_dir() else "files"
            value: lua_emit.Node = Lit(origin, first)
            if name in self.entries:
                seq = self.entries[name].value
                if isinstance(seq, Seq) and not any(isinstance(i, Lit) and i.value == first
                                                    for i in seq.items):
                    seq.items.append(value)
                return
            self.entries[name] = Entry(origin, name, Seq(origin, [value]), trailing=note)
        else:
            guest = str(PurePosixPath("/", *rel.parts[:-1]))
            table = self.entries.get("map")
            entry = Entry(origin, str(host.resolve()), Lit(origin, guest), trailing=note)
            if table is not None and isinstance(table.value, Table):
                table.value.entries.append(entry)
            else:
                self.entries["map"] = Entry(origin, "map", Table(origin, [entry]))


def _zero(node: Node, honoured: bool) -> bool:
    """Go's zero values (and JSON null) ask for nothing; but an explicit false for a key
    engitor honours (RunConfig.Accel) says something."""
    if isinstance(node, ScalarNode):
        zeros = ("", "0") if honoured else ("", "0", "false")
        return node.tag == NULL or (node.value in zeros and node.tag != ENV_TAG)
    return not node.value


def _shown(node: Node, value: object) -> str:
    if isinstance(node, ScalarNode):
        return repr(value) if value is not None or node.tag == NULL else node.value
    return f"a {kind(node)}"


def _folded_hint(name: str, fields: Sequence[str]) -> str | None:
    folded = {f.casefold(): f for f in fields}
    close = did_you_mean(name.casefold(), folded)
    return close and f"did you mean {folded[close.split(chr(39))[1]]!r}?"


def program_path(program: str, config_dir: Path) -> str:
    """The command line's program (relative to the current directory) as the config's folder
    sees it."""
    p = Path(program)
    if p.is_absolute() or Path.cwd().resolve() == config_dir.resolve():
        return program
    return os.path.relpath(Path.cwd() / p, config_dir.resolve())


def compile_ops(doc: Document, path: Path, *, program: str | None = None,
                name: str | None = None, args: Sequence[str] | None = None) -> Compiled:
    ops = _Ops(doc, path)
    ops.top()
    cli = Origin(0, 0, "command line")
    if program is not None:
        ops.entries["program"] = Entry(cli, "program",
                                       Lit(cli, program_path(program, path.parent)),
                                       trailing="the program the command line names")
    if args is not None:
        ops.entries["args"] = Entry(cli, "args", Seq(cli, [Lit(cli, a) for a in args]),
                                    trailing="the command line's arguments")
    program_entry = ops.entries.get("program")
    if program_entry is None or doc.root is None:
        raise UserError("the ops config names no program",
                        where=doc.where(doc.root) if doc.root else doc.display,
                        hint=f"name it as ops does: engitor run -c {doc.display} PROGRAM")
    effective_args = _texts(ops.entries.get("args"))
    ops.args_copy(effective_args, path.parent)
    program_text = program_entry.value.value if isinstance(program_entry.value, Lit) else "app"
    image = name or ops.image_name or default_name(str(program_text))
    entries = sorted(ops.entries.values(), key=lambda e: ORDER.get(e.key, 99))
    body = Table(doc.origin(doc.root, ""), entries)
    header = [f"An ops config ({PurePosixPath(doc.display).name}) as an engitor recipe."]
    notes = ["ops keys engitor does not use:", *(f"  {n}" for n in ops.notes)] if ops.notes else []
    decl = ImageDecl(image, body, doc.origin(doc.root, ""))
    prog = Program(doc.display, [decl], header=header, notes=notes)
    return Compiled(path, doc.display, prog, lua_emit.render(prog), warnings=ops.warnings)


def _texts(entry: Entry | None) -> list[str]:
    if entry is None or not isinstance(entry.value, Seq):
        return []
    return [str(i.value) if isinstance(i, Lit) else "" for i in entry.value.items]


def set_program(prog: Program, program: str, path: Path, name: str | None) -> None:
    """`-c config.yaml PROGRAM` with an engitor config: the command line's program (and name)
    replace the config's, in its one image."""
    if len(prog.images) != 1:
        raise UserError(f"{prog.source} declares several images; -c takes a config of one",
                        hint=f"run one of them: engitor run {prog.source}:{prog.images[0].name}")
    decl = prog.images[0]
    cli = Origin(0, 0, "command line")
    entry = Entry(cli, "program", Lit(cli, program_path(program, path.parent)),
                  trailing="the program the command line names")
    body = decl.body
    own = body.own if isinstance(body, Merge) else body if isinstance(body, Table) else None
    if own is None:
        assert isinstance(body, Ref)
        own = Table(cli, [])
        decl.body = Merge(decl.origin, [body], own)
    own.entries = [e for e in own.entries if e.key != "program"] + [entry]
    if name:
        decl.name = name
