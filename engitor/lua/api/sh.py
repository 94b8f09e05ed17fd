"""`sh`: host programs called like functions, from Lua (lua/sh.lua) and from Python.

Commands are argv lists, never a shell line, unless a caller asks for one (`shell()`), so an
argument is never re-read as syntax. A command that fails raises `CommandFailed` (a UserError)
with its exit code and stderr; in Lua that is a clean error message. Pipes connect real
processes (no buffering through Python); a stage killed by SIGPIPE because a later one stopped
reading is not a failure, any other failing stage is.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engitor import LUA_DIR
from engitor.errors import UserError
from engitor.lua.api import as_bytes
from engitor.proc import DEVNULL, PIPE, STDOUT, Popen, TimeoutExpired, exit_words, spawn

STDERR_MODES = ("capture", "inherit", "stdout")


class CommandFailed(UserError):
    """A command ran and failed: exit code (negative: killed by that signal) and stderr."""

    def __init__(self, argv: list[str], code: int, stderr: bytes):
        self.argv, self.code, self.stderr = argv, code, stderr
        tail = stderr.decode(errors="replace").strip().splitlines()[-20:]
        msg = f"{shlex.join(argv)}: {exit_words(code)}"
        if tail:
            msg += ": " + "\n".join(tail)
        super().__init__(msg)


@dataclass(frozen=True)
class Result:
    stdout: bytes
    stderr: bytes
    code: int

    @property
    def text(self) -> str:
        """stdout as text without its trailing newline: what `sh.cmd()` returns in Lua."""
        return strip_newline(self.stdout).decode(errors="replace")


def strip_newline(data: bytes) -> bytes:
    return data[:-1] if data.endswith(b"\n") else data


def argv_of(name: str, args: Iterable[object] = ()) -> list[str]:
    """A command line from a name and arguments; numbers become text, anything else is refused."""
    out = [name]
    for a in args:
        if isinstance(a, bool) or a is None:
            raise UserError(f"argument {len(out)} of {name} is {a!r}: arguments are strings or numbers")
        if isinstance(a, int | float):
            a = str(int(a)) if isinstance(a, float) and a.is_integer() else str(a)
        elif isinstance(a, bytes):
            a = a.decode()
        elif not isinstance(a, str):
            raise UserError(f"argument {len(out)} of {name} is a {type(a).__name__}: "
                            "arguments are strings or numbers")
        out.append(a)
    if not name:
        raise UserError("empty command name")
    return out


def environment(env: Mapping[str, str | None] | None, base: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """The child's environment: `base` (default: ours) with `env` on top; None unsets."""
    out = dict(os.environ if base is None else base)
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = str(v)
    return out


def _resolve(argv: list[str], env: dict[str, str]) -> str:
    """The program to execute, looked up in the child's PATH (argv[0] stays as written)."""
    if "/" in argv[0]:
        return argv[0]
    found = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    if not found:
        raise UserError(f"command not found: {argv[0]}",
                        hint=f"searched PATH={env.get('PATH', os.defpath)}")
    return found


def _check_cwd(cwd: str | None) -> None:
    if cwd is not None and not os.path.isdir(cwd):
        raise UserError(f"cwd '{cwd}' is not a directory")


def pipe(stages: list[list[str]], *, stdin: bytes | str | None = None, cwd: str | None = None,
         env: Mapping[str, str | None] | None = None, check: bool = True,
         timeout: float | None = None, stderr: str = "capture") -> Result:
    """Run commands connected stdout to stdin; the result is the last one's output."""
    if not stages:
        raise UserError("a pipe needs at least one command")
    if stderr not in STDERR_MODES:
        raise UserError(f"stderr must be one of {', '.join(STDERR_MODES)}, not {stderr!r}")
    _check_cwd(cwd)
    full_env = environment(env)
    argvs = [argv_of(s[0], s[1:]) if s else argv_of("") for s in stages]
    programs = [_resolve(a, full_env) for a in argvs]
    procs: list[Popen[bytes]] = []
    errs = [tempfile.TemporaryFile() for _ in stages] if stderr == "capture" else []
    with tempfile.TemporaryFile() as infile:
        if stdin is not None:
            infile.write(stdin.encode() if isinstance(stdin, str) else stdin)
            infile.seek(0)
        prev: Any = infile if stdin is not None else DEVNULL
        try:
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                err = (errs[i] if stderr == "capture" else
                       STDOUT if stderr == "stdout" else None)
                p = spawn(argv, executable=programs[i], stdin=prev, stdout=PIPE, stderr=err,
                          cwd=cwd, env=full_env)
                if procs and procs[-1].stdout:
                    procs[-1].stdout.close()   # only the next stage holds the read end now
                procs.append(p)
                prev = p.stdout
                if last:
                    break
        except (OSError, UserError) as e:  # a stage could not start: stop those that did
            for p in procs:
                p.kill()
                p.wait()
            why = e.strerror if isinstance(e, OSError) else "No such file or directory"
            raise UserError(f"cannot run {shlex.join(argvs[len(procs)])}: {why}") from None
        try:
            out, _ = procs[-1].communicate(timeout=timeout)
        except TimeoutExpired:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()
            raise UserError(f"{' | '.join(shlex.join(a) for a in argvs)}: timed out after "
                            f"{timeout:g} s") from None
        for p in procs[:-1]:
            p.wait()
        stderrs = []
        for f in errs:
            f.seek(0)
            stderrs.append(f.read())
            f.close()
    codes = [p.returncode for p in procs]
    if check:
        for i, (argv, code) in enumerate(zip(argvs, codes, strict=True)):
            if code == -signal.SIGPIPE and i < len(codes) - 1:
                continue
            if code != 0:
                raise CommandFailed(argv, code, stderrs[i] if stderrs else b"")
    return Result(out, stderrs[-1] if stderrs else b"", codes[-1])


def run(argv: list[str], **opts) -> Result:
    """One command: `run(["git", "rev-parse", "HEAD"], cwd=...)`; options as for `pipe`."""
    return pipe([argv], **opts)


def shell(script: str, **opts) -> Result:
    """A shell line, explicitly: the only way `sh` ever involves /bin/sh."""
    return pipe([["/bin/sh", "-c", script]], **opts)


# -- Lua --------------------------------------------------------------------------------------

_OPTIONS = ("cwd", "env", "stdin", "check", "timeout", "stderr")


def _from_lua(v):
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v


def _array(tbl) -> list:
    items = [(k, v) for k, v in tbl.items() if isinstance(k, int)]
    return [_from_lua(v) for _, v in sorted(items, key=lambda kv: kv[0])]


def _lua_run(spec):
    """The bridge: spec = {stages = {{argv}...}} | {shell = "..."}, plus options."""
    opts = {}
    for k in _OPTIONS:
        v = spec[k]
        if v is None:
            continue
        if k == "env":
            opts[k] = {_from_lua(a): (None if b is False else _from_lua(b)) for a, b in v.items()}
        elif k == "stdin":
            opts[k] = as_bytes(v if isinstance(v, bytes | str) else str(v))
        elif k == "timeout":
            opts[k] = float(v)
        elif k == "cwd" or k == "stderr":
            opts[k] = _from_lua(v)
        else:
            opts[k] = bool(v)
    if spec["shell"] is not None:
        res = shell(_from_lua(spec["shell"]), **opts)
    else:
        res = pipe([_array(s) for s in _array(spec["stages"])], **opts)
    return res


def install(lua, env) -> None:
    """Set `env.sh` for one Lua scope of `lua` (a lupa.luajit21.LuaRuntime)."""
    from engitor.lua.api.c import guarded

    def bridge(spec):
        res = _lua_run(spec)
        return lua.table(res.stdout, res.code, res.stderr)

    factory = lua.execute((LUA_DIR / "sh.lua").read_text(), guarded(lua, bridge),
                          lua.table_from(_OPTIONS), name="@lua/sh.lua")
    env["sh"] = factory()
