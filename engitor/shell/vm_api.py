"""`engitor`: builds, images and running VMs as Lua values (the Lua half is lua/vm.lua).

    local vm = engitor.run("recipes/web.lua", {ports = {"18080:8080"}})
    vm:wait_port(8080, 60)         -- the host port once the guest says it listens on 8080
    vm:pause() vm:resume() vm:state() vm:console() vm:stop() vm:wait() vm:qmp("query-status")
    engitor.ps() engitor.attach("web-2") engitor.build("recipes/fleet.lua") engitor.images()
    local img = engitor.image("web")   img:history()  img:diff(other)  img:inspect()

A VM object is a plain Lua table ({name, image, accel, ports, pid, detached}) whose methods
(lua/vm.lua) call the allow-listed functions below by VM name: no Python object reaches Lua.
The machinery is the CLI's (engitor/vm/runner.py and instance.py), control goes over QMP. VMs
started here belong to this process (QEMU's parent-death signal ends them with it, and
`shutdown()` stops them when the shell exits) unless started with `{detach = true}`, which
makes them `engitor run -d` instances that outlive the shell.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import select
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from engitor import LUA_DIR, __version__
from engitor.errors import did_you_mean
from engitor.lua.api import ApiError, Multiple, is_table, table_of, to_python
from engitor.vm import ready
from engitor.vm.instance import Console, Instance, program_lines

# Options of engitor.run/engitor.build besides image settings.
RUN_OPTIONS = ("name", "image", "detach", "verbose")
RUN_SETTINGS = ("ports", "args", "env", "files", "dirs", "memory", "cpus", "accel", "kernel",
                "kernel_args", "modules", "hostname", "workdir", "boot_timeout", "stop_timeout",
                "start", "volumes")
NOTHING = Multiple(())  # no results at all: the shell prints nothing for a pause()
PROBE_WINDOW = 2.0  # seconds a probe connection waits for the guest to accept or refuse


@dataclass
class Finished:
    """What is known of a VM after it ended: its exit status and its console."""

    code: int | None
    reason: str
    lines: list[str] = field(default_factory=list)


def _plain(value: Any, what: str) -> Any:
    try:
        return to_python(value)
    except ApiError as e:
        raise ApiError(f"{what}: {e}") from None


def _options(opts: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if opts is None:
        return {}
    if not is_table(opts):
        raise ApiError(f"{what}: options are a table, like {{ports = {{8080}}}}")
    out = _plain(opts, what)
    if isinstance(out, list):
        if out:
            raise ApiError(f"{what}: options are named, like {{ports = {{8080}}}}")
        return {}
    for key in out:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            raise ApiError(f"{what}: unknown option {key!r}" + (f" ({hint})" if hint else ""))
    return out


def load_images(target: Any, opts: dict[str, Any], what: str) -> list[Any]:
    """A target (recipe.lua[:IMAGE], config.yaml, a program path) and options -> the images,
    the options' settings replacing the declared ones (ports too: a script says which)."""
    from engitor.recipe import targets
    from engitor.recipe.settings import SETTINGS_BY_NAME, SettingTypeError

    if not isinstance(target, str) or not target:
        raise ApiError(f"{what}: expected a recipe, config or program path, got {target!r}")
    images = targets.images(target, image=opts.get("image"))
    changes: dict[str, Any] = {}
    for key in RUN_SETTINGS:
        if key not in opts:
            continue
        value = opts[key]
        setting = SETTINGS_BY_NAME[key]
        try:
            coerced = setting.type.coerce(value)
        except SettingTypeError as e:
            raise ApiError(f"{what}: {key}: {e} (hint: {setting.doc})") from None
        changes[key] = coerced
    out = []
    for image in images:
        merged = dict(changes)
        if "env" in changes:
            merged["env"] = {**image.env, **changes["env"]}
        out.append(dataclasses.replace(image, **merged))
    return out


def _port_info(spec: str) -> dict[str, Any]:
    from engitor.recipe.settings import parse_port

    p = parse_port(spec)
    return {"host": p.host, "guest": p.guest, "proto": p.proto.value, "bind": p.bind}


def info(inst: Instance) -> dict[str, Any]:
    """The plain fields of a VM object."""
    m = inst.meta
    return {"name": m.name, "image": m.image_name, "image_id": m.image[:12], "accel": m.accel,
            "pid": m.pid, "detached": m.owner is None, "ports": [_port_info(p) for p in m.ports]}


def read_console(inst: Instance) -> list[str]:
    console = Console(inst.console.path)
    console.flush()
    return console.lines


def established(inst: Instance, guest: int) -> bool | None:
    """Whether user networking holds an established connection to the guest's port (QEMU's
    `info usernet`); None when QEMU cannot say."""
    try:
        text = inst.qmp("human-monitor-command", **{"command-line": "info usernet"})
    except Exception:
        return None
    for line in str(text).splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == "TCP[ESTABLISHED]" and cols[5] == str(guest):
            return True
    return False


def probe(inst: Instance, bind: str, host: int, guest: int) -> bool:
    """One attempt to reach the guest's port through the host port. QEMU's user networking
    accepts the host connection at once and only then connects to the guest: a refusal shows
    as the connection closing, an acceptance only in QEMU's table of connections."""
    try:
        sock = socket.create_connection((bind.strip("[]"), host), timeout=PROBE_WINDOW)
    except OSError:
        return False
    with sock:
        end = time.monotonic() + PROBE_WINDOW
        while time.monotonic() < end:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                try:
                    return sock.recv(1, socket.MSG_PEEK) != b""
                except OSError:
                    return False
            answer = established(inst, guest)
            if answer:
                return True
            if answer is None:  # QEMU cannot tell: an unrefused connection has to do
                continue
        return established(inst, guest) is None


def listens(inst: Instance, match: dict[str, Any]) -> bool:
    """Whether the guest reports the program listening on the port (where the forward reaches
    it). VMs without the report channel (started by an older engitor) are probed instead."""
    if inst.listening.reported or inst.reports.path.exists():
        return match["guest"] in ready.reachable_ports(inst.listening.addrs)
    return probe(inst, match["bind"], match["host"], match["guest"])


class Machines:
    """The VMs one Lua state has started or attached, by name."""

    def __init__(self, log: Any = None):
        self.vms: dict[str, Instance] = {}
        self.owned: set[str] = set()
        self.finished: dict[str, Finished] = {}
        self.log = log or (lambda text: print(f"engitor: {text}", file=sys.stderr, flush=True))

    # -- starting and finding ------------------------------------------------------------------

    def run(self, target: Any, opts: Any = None) -> dict[str, Any]:
        from engitor.image import hosttools, pipeline
        from engitor.vm import runner

        o = _options(opts, RUN_OPTIONS + RUN_SETTINGS, "engitor.run")
        images = load_images(target, o, "engitor.run")
        if len(images) > 1:
            names = ", ".join(i.name for i in images)
            raise ApiError(f"engitor.run: {target} declares several images ({names}); pick one "
                           f"with {{image = {images[0].name!r}}} or '{target}:{images[0].name}'")
        image = images[0]
        verbose = bool(o.get("verbose"))
        say = self.log if verbose else (lambda _: None)
        stored = pipeline.build(image, log=say)
        detach = bool(o.get("detach"))
        inst = runner.launch(stored, image, detached=detach, name=o.get("name"), log=say,
                             owner=os.getpid(), tools=hosttools)
        self.vms[inst.name] = inst
        if not detach:
            self.owned.add(inst.name)
        ports = ", ".join(f"{p['bind']}:{p['host']}->{p['guest']}" for p in info(inst)["ports"])
        self.log(f"{inst.name}: booting ({inst.meta.accel})" + (f", {ports}" if ports else ""))
        return info(inst)

    def attach(self, name: Any) -> dict[str, Any]:
        if not isinstance(name, str):
            raise ApiError(f"engitor.attach: expected a VM name, got {name!r}")
        if name not in self.vms:
            self.vms[name] = Instance.load(name)
        return info(self.vms[name])

    def instance(self, name: str) -> Instance:
        inst = self.vms.get(name)
        if inst is None:
            inst = self.vms[name] = Instance.load(name)
        return inst

    def _live(self, name: str, what: str) -> Instance:
        if name in self.finished:
            raise ApiError(f"{name} has ended; {what} needs a running VM")
        inst = self.instance(name)
        if not inst.alive():
            self._finish(name)
            raise ApiError(f"{name} has ended; {what} needs a running VM")
        return inst

    # -- control ---------------------------------------------------------------------------------

    def wait_port(self, name: str, port: Any, timeout: Any = 60) -> int:
        inst = self.instance(name)
        match = self._port(inst, port)
        limit = float(timeout if timeout is not None else 60)
        deadline = time.monotonic() + limit
        while True:
            inst.poll_console()
            if not inst.alive():
                done = self._finish(name)
                raise ApiError(f"{name} ended before port {port} answered ({done.reason})")
            if inst.status.started and listens(inst, match):
                return int(match["host"])
            if time.monotonic() >= deadline:
                loopback = inst.listening.loopback_only(match["guest"])
                raise ApiError(f"{name}: port {match['guest']} (host {match['bind']}:"
                               f"{match['host']}) did not answer within {limit:g} s; the VM is "
                               f"{inst.state()} (see vm:console())"
                               + ("; the program listens on loopback only: forwarded "
                                  "connections arrive at 10.0.2.15" if loopback else ""))
            time.sleep(0.2)

    def _port(self, inst: Instance, port: Any) -> dict[str, Any]:
        ports = [_port_info(p) for p in inst.meta.ports]
        if not isinstance(port, int | float) or isinstance(port, bool):
            raise ApiError(f"expected a port number, got {port!r}")
        for key in ("guest", "host"):
            for p in ports:
                if p[key] == port and p["proto"] == "tcp":
                    return p
        shown = ", ".join(f"{p['host']}->{p['guest']}/{p['proto']}" for p in ports) or "none"
        raise ApiError(f"{inst.name} forwards no TCP port {port:g} (forwarded: {shown})")

    def port(self, name: str, port: Any) -> int:
        return int(self._port(self.instance(name), port)["host"])

    def console(self, name: str, raw: Any = False) -> list[str]:
        done = self.finished.get(name)
        lines = done.lines if done is not None else read_console(self.instance(name))
        return list(lines) if raw else program_lines(lines)

    def pause(self, name: str) -> Multiple:
        self._live(name, "pause").pause()
        return NOTHING

    def resume(self, name: str) -> Multiple:
        self._live(name, "resume").resume()
        return NOTHING

    def state(self, name: str) -> str:
        if name in self.finished:
            return "exited"
        return self.instance(name).state()

    def stop(self, name: str, timeout: Any = None) -> Multiple:
        done = self.finished.get(name)
        if done is None:
            inst = self.instance(name)
            inst.stop(None if timeout is None else float(timeout))
            done = self._finish(name, remove=True)
        return _status(done)

    def kill(self, name: str) -> Multiple:
        if name not in self.finished:
            self.instance(name).kill()
            self._finish(name, remove=True)
        return NOTHING

    def wait(self, name: str, timeout: Any = None) -> Multiple:
        """The program's exit status once the VM ends (code, nil), or (nil, why)."""
        from engitor.vm import runner

        done = self.finished.get(name)
        if done is None:
            inst = self.instance(name)
            if timeout is not None:
                if not inst.wait_exit(float(timeout)):
                    return Multiple((None, "timeout"))
            else:
                runner.follow(inst, out=None)
            done = self._finish(name, remove=name in self.owned)
        return _status(done)

    def qmp(self, name: str, command: Any, arguments: Any = None) -> Any:
        if not isinstance(command, str):
            raise ApiError(f"vm:qmp: expected a QMP command name, got {command!r}")
        args = _plain(arguments, "vm:qmp") if arguments is not None else {}
        if not isinstance(args, dict):
            raise ApiError("vm:qmp: arguments are a table of names, like {device = 'rng0'}")
        inst = self._live(name, "vm:qmp")
        try:
            return inst.qmp(command, **args)
        except Exception as e:
            raise ApiError(f"QMP {command}: {e}") from None

    def vcpus(self, name: str) -> list[dict[str, Any]]:
        """The vCPUs as host threads: {index, thread} each (QMP query-cpus-fast)."""
        cpus = self.qmp(name, "query-cpus-fast")
        return [{"index": c["cpu-index"], "thread": c["thread-id"]} for c in cpus]

    def _finish(self, name: str, *, remove: bool = False) -> Finished:
        """Record how a VM ended (from its console) and, if asked, remove its directory."""
        inst = self.instance(name)
        if name in self.finished:
            return self.finished[name]
        inst.poll_console(final=True)
        code = inst.exit_code()
        reason = ("exited" if code is not None else f"kernel panic: {inst.status.panic}"
                  if inst.status.panic else "the VM stopped before the program finished")
        lines = read_console(inst)
        if inst.alive():  # asked to finish a VM that still runs: it must go
            inst.kill()
        done = self.finished[name] = Finished(code, reason, lines)
        if remove:
            inst.remove()
        self.owned.discard(name)
        return done

    # -- the rest of the toolkit ---------------------------------------------------------------------

    def ps(self, show_all: Any = False) -> list[dict[str, Any]]:
        from engitor.vm.instance import listing

        return listing(show_all=bool(show_all))

    def build(self, target: Any, opts: Any = None) -> Any:
        from engitor.image import pipeline

        o = _options(opts, ("image", "verbose") + RUN_SETTINGS, "engitor.build")
        say = self.log if o.get("verbose") else (lambda _: None)
        out = []
        for image in load_images(target, o, "engitor.build"):
            stored = pipeline.build(image, log=say)
            out.append({"name": image.name, "id": stored.id, "short": stored.short,
                        "size": stored.size()})
        return out[0] if len(out) == 1 else out

    def images(self) -> list[dict[str, Any]]:
        from engitor import store

        return [_image_info(names, img) for names, img in store.listing()]

    def image(self, ref: Any) -> dict[str, Any]:
        from engitor import store
        from engitor.catalog import index

        if not isinstance(ref, str) or not ref:
            raise ApiError(f"engitor.image: expected a name or an image id, got {ref!r}")
        img = store.resolve(ref)
        return _image_info(index.names_of(img), img)

    def image_diff(self, a: Any, b: Any) -> dict[str, Any]:
        from engitor import store
        from engitor.catalog import diff, index

        if not isinstance(b, str):
            raise ApiError("img:diff: expected another image (from engitor.images() or "
                           "engitor.image(name)) or its id")
        x, y = store.resolve(a), store.resolve(b)
        mx, my = x.manifest, y.manifest
        changes = diff.files(index.files(x, mx), index.files(y, my))
        pkgs = diff.packages(mx.get("packages"), my.get("packages"))
        return {"summary": diff.summary(changes), "files": [vars(c) for c in changes],
                "packages": [vars(p) for p in pkgs]}

    def image_history(self, name: Any) -> list[dict[str, Any]]:
        from engitor.catalog import history

        if not isinstance(name, str):
            raise ApiError("img:history: the image has no name (history follows a name)")
        steps = history.of(name)
        return [{"n": s.n, "id": s.id, "short": s.id[:12], "time": s.time, "why": s.why,
                 "size": s.image.size() if s.image else None,
                 "changes": history.changes(s, steps[i + 1] if i + 1 < len(steps) else None)}
                for i, s in enumerate(steps)]

    def image_inspect(self, ref: Any) -> dict[str, Any]:
        from engitor import store
        from engitor.catalog import index

        return index.describe(store.resolve(str(ref)))

    def recipe(self, target: Any) -> dict[str, Any]:
        """What a recipe declares, as plain data (functions shown as their location)."""
        if not isinstance(target, str):
            raise ApiError(f"engitor.recipe: expected a path, got {target!r}")
        from engitor.recipe import targets
        from engitor.recipe.model import setting_fields

        recipe, _ = targets.load(target)
        images = []
        for image in recipe.images:
            entry: dict[str, Any] = {"name": image.name}
            for key in setting_fields():
                entry[key] = _data(getattr(image, key))
            entry["hooks"] = {k: h.where for k, h in image.hooks.items()}
            images.append(entry)
        return {"source": recipe.source, "images": images}

    def free_port(self) -> int:
        """A TCP port free on 127.0.0.1 right now, for `ports = {port .. ":8080"}`."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def shutdown(self) -> list[str]:
        """Stop (at once) the VMs this state started and still owns; remove their directories."""
        ended = []
        for name in sorted(self.owned):
            with contextlib.suppress(Exception):
                self.instance(name).kill()
                self._finish(name, remove=True)
                ended.append(name)
        return ended


def _image_info(names: list[str], img: Any) -> dict[str, Any]:
    """The plain fields of an image object (lua/vm.lua gives it diff, history, inspect)."""
    return {"names": names, "name": names[0] if names else None, "id": img.id,
            "short": img.short, "size": img.size(),
            "program": img.manifest.get("program", "")}


def _status(done: Finished) -> Multiple:
    """Lua's idiom: the exit status, or nil and why."""
    return Multiple((done.code,)) if done.code is not None else Multiple((None, done.reason))


def _data(value: Any) -> Any:
    import enum
    from pathlib import PurePath

    from engitor.recipe.model import Port

    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Port):
        return str(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, tuple | list):
        return [_data(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _data(v) for k, v in value.items()}
    return value


_ALL: list[Machines] = []


def shutdown_all() -> list[str]:
    ended = []
    for machines in _ALL:
        ended += machines.shutdown()
    return ended


atexit.register(shutdown_all)

# Functions the Lua half calls, by VM name for the VM methods.
BRIDGE = ("run", "attach", "wait_port", "port", "console", "pause", "resume", "state", "stop",
          "kill", "wait", "qmp", "vcpus", "ps", "build", "images", "recipe", "free_port",
          "image", "image_diff", "image_history", "image_inspect")


def install(lua: Any, env: Any, *, machines: Machines | None = None) -> Machines:
    """Set `env.engitor` (run, attach, ps, build, images, recipe, free_port, version); returns the
    registry of the VMs it starts (the shell stops them on exit)."""
    machines = machines or Machines()
    _ALL.append(machines)
    bridge = table_of(lua, {name: getattr(machines, name) for name in BRIDGE})
    make = lua.eval("function(src, bridge) return assert(load(src, '@lua/vm.lua'))(bridge) end")
    env.engitor = make((LUA_DIR / "vm.lua").read_text(), bridge)
    env.engitor.version = __version__
    return machines
