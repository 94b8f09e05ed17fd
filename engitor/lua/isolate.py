"""A recipe's Lua in a child process: the one place a CPU limit can stop a long C call.

    described = describe(path, source, display, time_limit=3.0, memory_limit=256 * MiB)
    described.declarations          # [Declaration], functions marked by number
    described.call(3, ctx, label)   # run the recipe's function number 3 as a hook
    described.close()               # (also when the object goes away)

Why a child: the count hook that enforces `time_limit` fires between Lua instructions only, so a
single C call (a backtracking `string.find` pattern over a long string) runs on unchecked. A timer
signal cannot end it either: a Python handler runs only between Python bytecodes, and a C handler
may not unwind LuaJIT's C frames; all a signal can do is end the process. So the description
scope runs in a forked child that can be ended. The parent watches the child's CPU time and
kills it past the limit (`time_limit` plus a grace, so that the located error of the count hook
usually comes first), and the child holds its address space to what it had plus the Lua
memory limit (RLIMIT_AS) while it describes. A fork costs about a millisecond (BENCHMARKS.md).

The child keeps the Lua state and serves the recipe's functions (hooks, generators): they run
there in the script scope, under the same Lua memory limit and a CPU limit of their own
(HOOK_CPU_LIMIT: hooks copy trees and call C; the time a hook waits for a program it runs is not
its CPU time). What crosses between the processes is JSON: plain data, never code or pickles, so
even a child whose Lua broke out of its sandbox cannot make the parent run anything. Output the
child writes through Python (print, log) is sent to the parent and written by it.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.lua.runtime import Declaration, MiB, Runtime

# CPU seconds beyond the description's time limit before the child is killed: the count hook
# normally stops Lua code at the limit itself, with the line it was on.
GRACE = 1.0
HOOK_CPU_LIMIT = 60.0
# Address space the child may add while describing, beyond the Lua heap's own limit: Python's
# share of the conversion (the declarations' text, capped at the memory limit too).
_AS_SLACK = 512 * MiB
_HEADER = struct.Struct("!Q")
_TICK = 0.1


@dataclass
class Described:
    """What a recipe declared, and the child that holds its functions."""

    declarations: list[Declaration]
    sources: dict[str, str]
    function_where: list[str | None]  # where each function (1-based number - 1) was defined
    _child: _Child | None

    def call(self, number: int, ctx: dict[str, Any], label: str) -> Any:
        if self._child is None:
            raise UserError("the recipe's functions are gone (the recipe was closed)")
        return self._child.request({"hook": number, "ctx": ctx, "label": label}, HOOK_CPU_LIMIT,
                                   "a hook")

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None


def describe(path: Path, source: str, display: str, *, time_limit: float | None,
             memory_limit: int | None, packages: bool = False) -> Described:
    """Evaluate `source` (the recipe at `path`, shown as `display`) in a child's description
    scope. Raises `UserError` as `Runtime.eval` does, and when the child is stopped."""
    child = _Child.start(path.parent, time_limit, memory_limit)
    try:
        limit = None if time_limit is None else time_limit + GRACE
        reply = child.request({"describe": source, "display": display, "packages": packages},
                              limit, "the recipe", display)
    except BaseException:
        child.close()
        raise
    shown = reply["shown"]
    decls = [Declaration(name, settings, shown.get(chunk, chunk.lstrip("@=")), line, None, kind)
             for name, chunk, line, settings, kind in json.loads(reply["declarations"])]
    described = Described(decls, reply["sources"], reply["functions"], child)
    if not reply["functions"]:
        described.close()
    return described


class _Child:
    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self.sock = sock
        self._finalizer = weakref.finalize(self, _reap, pid, sock)

    @classmethod
    def start(cls, base_dir: Path, time_limit: float | None,
              memory_limit: int | None) -> _Child:
        parent, child = socket.socketpair()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # Frozen objects are left alone by the collector: a collection in the child would
        # otherwise touch, and so copy, every page the parent's objects live on.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child never returns into the caller's stack
            status = 70
            try:
                gc.disable()
                parent.close()
                _close_inherited(child.fileno())
                _serve(child, base_dir, time_limit, memory_limit)
                status = 0
            finally:
                os._exit(status)
        gc.unfreeze()
        child.close()
        return cls(pid, parent)

    def request(self, message: dict[str, Any], cpu_limit: float | None, what: str,
                where: str | None = None) -> Any:
        _send(self.sock, message)
        start = _cpu_seconds(self.pid)
        try:
            while True:
                ready, _, _ = select.select([self.sock], [], [], _TICK)
                if not ready:
                    used = _cpu_seconds(self.pid) - start
                    if cpu_limit is not None and used > cpu_limit:
                        self.close()
                        raise UserError(
                            f"{what} used more than {cpu_limit:g} s of CPU and was stopped",
                            hint="a string pattern that backtracks over a long string? "
                                 "describing images must be quick", where=where)
                    continue
                reply = _receive(self.sock)
                if reply is None:
                    raise self._died(what)
                if "out" in reply:
                    stream = sys.stdout if reply.get("fd") == 1 else sys.stderr
                    stream.write(reply["out"])
                    stream.flush()
                    continue
                if "error" in reply:
                    text, hint, located = reply["error"]
                    raise UserError(text, hint=hint, where=located)
                return reply["ok"]
        except KeyboardInterrupt:
            self.close()
            raise

    def _died(self, what: str) -> UserError:
        self.close()
        return UserError(f"{what} was stopped: the process evaluating it ended unexpectedly",
                         hint="it may have run out of memory")

    def close(self) -> None:
        self._finalizer()


def _close_inherited(keep: int) -> None:
    """Close what the child inherited beyond stdio and its socket: a lock or socket the parent
    opened must not stay open (held) for as long as the child lives."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = limit if 0 < limit < 1 << 16 else 1 << 16
    os.closerange(3, keep)
    os.closerange(keep + 1, limit)


def _reap(pid: int, sock: socket.socket) -> None:
    sock.close()
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime (fields 14 and 15; [0] here is field 3, the state)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the child ------------------------------------------------------------------------------------

class _Forward(io.TextIOBase):
    """sys.stdout/sys.stderr of the child: what it writes goes to the parent's streams."""

    def __init__(self, sock: socket.socket, fd: int):
        super().__init__()
        self.sock = sock
        self.fd = fd

    def write(self, text: str) -> int:
        _send(self.sock, {"out": text, "fd": self.fd})
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _serve(sock: socket.socket, base_dir: Path, time_limit: float | None,
           memory_limit: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends this process
    sys.stdout = _Forward(sock, 1)
    sys.stderr = _Forward(sock, 2)
    rt = Runtime(base_dir=base_dir, time_limit=time_limit, memory_limit=memory_limit)
    state: dict[str, Any] = {}
    while True:
        request = _receive(sock)
        if request is None:
            return
        try:
            if "describe" in request:
                reply = _limited(memory_limit, functools.partial(_describe, rt, request, state))
            else:
                reply = _hook(rt, request, state)
            _send(sock, {"ok": reply})
        except UserError as e:
            _send(sock, {"error": [e.message, e.hint, e.where]})
        except MemoryError:
            _send(sock, {"error": ["the recipe used more memory than it may and was stopped",
                                   "a table or string that grows without end?", None]})


def _limited(memory_limit: int | None, work: Callable[[], Any]) -> Any:
    if memory_limit is None:
        return work()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = _address_space()
    if size:
        resource.setrlimit(resource.RLIMIT_AS, (size + memory_limit + _AS_SLACK, hard))
    try:
        return work()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _describe(rt: Runtime, request: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    env = rt.description_env(packages=request["packages"])
    rt.eval(request["describe"], env, request["display"], time_limit=rt.time_limit)
    text, functions = rt.export(env)
    state["env"], state["functions"] = env, functions
    wheres = [rt.where_of(functions[i]) for i in range(1, len(functions) + 1)]
    return {"declarations": text, "sources": rt.sources, "functions": wheres,
            "shown": rt.shown_names()}


def _hook(rt: Runtime, request: dict[str, Any], state: dict[str, Any]) -> Any:
    fn = state["functions"][request["hook"]]
    return rt.run_hook(fn, state["env"], request["ctx"], label=request["label"])


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8", "surrogatepass")
    sock.sendall(_HEADER.pack(len(data)) + data)


def _receive(sock: socket.socket) -> Any:
    header = _read(sock, _HEADER.size)
    if header is None:
        return None
    data = _read(sock, _HEADER.unpack(header)[0])
    if data is None:
        return None
    return json.loads(data.decode("utf-8", "surrogatepass"))


def _read(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
