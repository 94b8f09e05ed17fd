"""LuaJIT for recipes, hooks and the shell: one sandboxed runtime per evaluation.

    rt = Runtime(base_dir=recipe_folder)
    env = rt.description_env()                 # the DSL, no side effects, no fs/sh/log/c
    rt.eval(text, env, "web.lua", time_limit=rt.time_limit)
    env = rt.script_env(staging)               # fs (confined to staging), log, sh, c

A REPL (the shell) makes its own:

    rt = Runtime(base_dir=Path.cwd(), time_limit=None, memory_limit=None, out=sys.stdout)
    env = rt.script_env(fs_root=Path.cwd(), fs_writable=True)
    values = rt.eval(line, env, "stdin")       # raw Lua values; api.to_python() for plain data
    rt.is_incomplete(text)                     # read another line?

Ctrl-C raises KeyboardInterrupt out of `eval`/`call` wherever the interpreter runs, not inside a
JIT-compiled trace; `time_limit=math.inf` runs with the JIT off so that every loop can be
interrupted.

The sandbox (trusted Lua in lua/sandbox.lua, loaded with LuaJIT's real globals): recipes see only
allow-listed environments; no `python` global, no Python eval or builtins, an attribute filter that
refuses every attribute of every Python object, and Python functions reach Lua only through
`engitor.lua.api.expose` (Lua closures that return plain values and raise plain strings).

Limits: a description is evaluated with the JIT off and a count hook (count hooks do not fire in
JIT-compiled traces) that stops it after `time_limit` seconds; its memory is capped by lupa's
`max_memory`, and so are hooks (`run_hook`) and the conversions of declarations and hook results
(bytes counted: a string shared by many tables is a copy each time). A count hook cannot stop a
single long C call: recipes are evaluated in a child process whose CPU time is watched
(engitor/lua/isolate.py; SECURITY.md). The shell's script scope lifts the limits.

Other modules add APIs to the script scope with `install(lua, env)` functions (`lua` the lupa
LuaRuntime, `env` the scope's Lua table), listed in `SCRIPT_APIS` (module names, each imported if
present) or passed as `Runtime(script_apis=…)`; or install into an env they got from
`script_env()` themselves.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lupa import luajit21

import engitor
from engitor.errors import UserError
from engitor.lua import api
from engitor.lua.api import expose, to_lua, to_python
from engitor.lua.messages import reword
from engitor.units import MiB

DEFAULT_TIME_LIMIT = 3.0
DEFAULT_MEMORY_LIMIT = 256 * MiB
# engitor's Lua half (the project layout puts lua/ beside the package).
LUA_DIR = engitor.LUA_DIR

# Script-scope APIs installed when their module exists: fs and log are always there; sh and c
# come from the C bridge. Each module has `install(lua, env)`.
SCRIPT_APIS: tuple[str, ...] = ("engitor.lua.api.sh", "engitor.lua.api.c")
SCRIPT_ONLY = ("fs", "log", "sh", "c")

Installer = Callable[[Any, Any], None]
_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# Lua's short_src keeps 60 bytes; longer names are shown by basename and mapped back.
_MAX_SHOWN = 50


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not available to Lua")


@dataclass(frozen=True)
class Declaration:
    """One `image` call of a description: its settings as plain Python data and where it was
    made. A Lua function in the settings is the marker [None, "fn", i], `functions[i]` (a Lua
    table shared by the declarations of one description); a table whose keys are neither 1..n
    nor all strings is [None, "pairs", [[key, value], …]], where a key that was a table or a
    function is [None, "key", "table"]."""

    name: Any
    settings: Any
    chunk: str  # display name of the file
    line: int
    functions: Any = None
    kind: str = "image"  # or "package" (a runtime package recipe, packages/NAME.lua)

    @property
    def where(self) -> str:
        return f"{self.chunk}:{self.line}"


class Runtime:
    """One LuaJIT state. Not thread-safe: use it from one thread at a time."""

    def __init__(self, *, base_dir: Path | None = None, time_limit: float | None = DEFAULT_TIME_LIMIT,
                 memory_limit: int | None = DEFAULT_MEMORY_LIMIT, out: TextIO | None = None,
                 script_apis: Sequence[str | Installer] = SCRIPT_APIS, lua_dir: Path = LUA_DIR):
        self.base_dir = (base_dir or Path.cwd()).resolve()
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.out = out  # where print() writes; None: sys.stderr at the time of the call
        self.lua_dir = lua_dir
        self._script_apis = tuple(script_apis)
        self.lua = luajit21.LuaRuntime(
            encoding=api.ENCODING, source_encoding="utf-8", register_eval=False,
            register_builtins=False, unpack_returned_tuples=True,
            attribute_filter=_deny_attributes, max_memory=memory_limit or 0)
        g = self.lua.globals()
        g.python = None
        g.package.loaded.python = None
        self.sources: dict[str, str] = {}  # display name -> text, for locations and hints
        self._shown: dict[str, str] = {}   # "@shown" chunk name -> display name
        self._described: list[tuple[Any, Any, Any]] = []  # (env, decls, close)
        self._script_envs: list[Any] = []
        helpers = self.lua.table_from({"find_module": self._find_module})
        self._sandbox = self._load_trusted("sandbox.lua", helpers)
        self._dsl = self._load_trusted("dsl.lua")
        self._print = self._sandbox.make_print(expose(self.lua, self._write))

    # -- scopes ---------------------------------------------------------------------------------

    def description_env(self, *, packages: bool = False) -> Any:
        """A fresh description scope: Lua's safe base library plus `image` and `merge`; with
        `packages`, also `package` (runtime package recipes, where it stands in for Lua's
        `package` library, which recipes never see)."""
        env = self._sandbox.new_env(self._print)
        dsl, decls, close = self._dsl.new()
        env.image = dsl.image
        env.merge = dsl.merge
        if packages:
            env.package = dsl.package
        self._described.append((env, decls, close))
        return env

    def declarations(self, env: Any) -> list[Declaration]:
        """What a description scope declared, in order; closes it to further declarations."""
        text, functions = self.export(env)
        return [Declaration(name, settings, self.display(source), line, functions, kind)
                for name, source, line, settings, kind in json.loads(text)]

    def export(self, env: Any) -> tuple[str, Any]:
        """The declarations of a description scope as JSON text ([name, chunk, line, settings,
        kind] each; see `Declaration` for the markers), and the Lua table of its functions;
        closes the scope. The text is capped at the memory limit."""
        for known, decls, close in self._described:
            if known is env:
                close()
                # Exporting is engitor's work, not the recipe's: it gets memory even when the
                # description used nearly all of its share.
                self.lua.set_max_memory(0)
                limit = self.memory_limit or 2**53
                try:
                    text, functions, *_ = self._dsl.export(decls, limit)
                finally:
                    if self.memory_limit and not self._script_envs:
                        self.lua.set_max_memory(self.memory_limit)
                if text is None:
                    raise UserError(
                        f"the recipe's settings come to more than {limit // MiB} MiB once "
                        "written out", hint="a large string or table used by many images? "
                        "each use is a copy in the settings", where=self._first_chunk())
                return text, functions
        raise ValueError("not a description scope of this runtime")

    def script_env(self, staging: Path | None = None, *, env: Any = None, label: str = "",
                   fs_root: Path | None = None, fs_writable: bool | None = None) -> Any:
        """The script scope: `fs`, `log`, `sh`, `c` and every installed API.

        `fs` works inside `staging` (read-write) when given, else inside `fs_root` (default: the
        recipe's folder), read-only unless `fs_writable`. `env=` turns an existing scope (a
        recipe's, so its helper functions see the APIs) into a script scope in place. Lifts the
        description's memory limit.
        """
        from engitor.lua.api import fs, log

        if self.memory_limit:
            self.lua.set_max_memory(0)
        if env is None:
            env = self._sandbox.new_env(self._print)
        root = Path(staging) if staging is not None else (fs_root or self.base_dir)
        writable = staging is not None if fs_writable is None else fs_writable
        fs.install(self.lua, env, root=root, writable=writable, source_dir=self.base_dir)
        log.install(self.lua, env, label=label)
        if not any(e is env for e in self._script_envs):
            self._script_envs.append(env)
            for item in self._script_apis:
                installer = _installer(item)
                if installer is not None:
                    installer(self.lua, env)
        return env

    # -- running code ---------------------------------------------------------------------------

    def eval(self, code: str, env: Any, chunkname: str, *,
             time_limit: float | None = None) -> tuple[Any, ...]:
        """Compile and run `code` in `env`; returns its Lua results. Errors are `UserError`s
        located at `chunkname:LINE`. `time_limit` (seconds) runs it with the JIT off."""
        fn = self.compile(code, env, chunkname)
        return self.call(fn, time_limit=time_limit, chunk=chunkname)

    def compile(self, code: str, env: Any, chunkname: str) -> Any:
        shown = self._register(chunkname, code)
        fn, message = _pair(self._sandbox.compile(code, shown, env))
        if fn is None:
            raise self._error(message, None, "syntax", chunkname)
        return fn

    def is_incomplete(self, code: str) -> bool:
        """True when `code` is a syntax error only because it ends too soon (a REPL's cue to
        read another line)."""
        fn, message = _pair(self._sandbox.compile(code, "=stdin", self.lua.table()))
        return fn is None and str(message).endswith("near '<eof>'")

    def call(self, fn: Any, *args: Any, time_limit: float | None = None,
             chunk: str | None = None) -> tuple[Any, ...]:
        """Call a Lua function under the sandbox's guard (Ctrl-C, optional time limit)."""
        sb = self._sandbox
        sb.guard(_now, time_limit)
        try:
            result = sb.run(fn, *args)
        except luajit21.LuaMemoryError:
            raise self._error("not enough memory", sb.last_where(), "memory", chunk) from None
        finally:
            sb.unguard()
        result = result if isinstance(result, tuple) else (result,)
        if result[0] is True:
            return result[1:]
        _, message, where, kind = result
        if kind == "python":
            if not isinstance(message, Exception):
                raise message  # Ctrl-C and friends, untouched
            raise UserError(f"{type(message).__name__}: {message}", where=self.display_where(where))
        raise self._error(message, where, kind, chunk, limit=time_limit)

    def run_hook(self, fn: Any, env: Any, ctx: dict[str, Any], *, label: str) -> Any:
        """Run a recipe's hook in the script scope (its own env, promoted); returns plain data."""
        staging = ctx.get("staging")
        self.script_env(Path(staging) if staging else None, env=env, label=label)
        # A hook gets the description's memory limit back (script_env lifted it), and what it
        # returns is converted under the same byte budget.
        if self.memory_limit:
            self.lua.set_max_memory(self.memory_limit)
        try:
            results = self.call(fn, to_lua(self.lua, ctx))
        finally:
            if self.memory_limit:
                self.lua.set_max_memory(0)
        budget = api.Budget(self.memory_limit or api.DEFAULT_BUDGET)
        try:
            return to_python(results[0], budget=budget) if results else None
        except api.ApiError as e:
            raise UserError(f"the hook returned a value engitor cannot read: {e}",
                            hint="return strings, numbers, booleans and tables of them",
                            where=self.where_of(fn)) from None

    # -- chunks, modules, locations ---------------------------------------------------------------

    def _register(self, display: str, text: str) -> str:
        shown = display if len(display) <= _MAX_SHOWN else Path(display).name[-_MAX_SHOWN:]
        self._shown["@" + shown] = display
        self.sources[display] = text
        return "@" + shown

    def display(self, source: str) -> str:
        """A Lua chunk name ("@web.lua") as the user knows the file."""
        return self._shown.get(source, source.lstrip("@="))

    def shown_names(self) -> dict[str, str]:
        """Lua chunk names ("@web.lua") -> the files as the user knows them."""
        return dict(self._shown)

    def where_of(self, fn: Any) -> str | None:
        """Where a Lua function was defined, "file:line" as the user knows the file."""
        return self.display_where(self._sandbox.where_of(fn))

    def display_where(self, where: str | None) -> str | None:
        if not where:
            return None
        name, _, line = where.rpartition(":")
        return f"{self.display('@' + name)}:{line}"

    def _find_module(self, name: Any) -> tuple[Any, Any]:
        try:
            return self._locate_module(name)
        except Exception as e:
            return None, f"module '{name}': {type(e).__name__}: {e}"

    def _locate_module(self, name: str) -> tuple[Any, Any]:
        if not _MODULE_RE.fullmatch(name):
            return None, f"module name '{name}' is not valid: use names like 'common' or 'lib.util'"
        rel = name.replace(".", "/")
        tried = []
        for folder in (self.base_dir, self.lua_dir):
            for candidate in (f"{rel}.lua", f"{rel}/init.lua"):
                path = folder / candidate
                tried.append(str(path))
                if not path.is_file():
                    continue
                real = path.resolve()
                if not real.is_relative_to(folder.resolve()):
                    return None, f"module '{name}' at {path} leads outside {folder}"
                text = real.read_bytes().decode("utf-8", "surrogateescape")
                return self._register(_display_path(path), text), text
        return None, (f"module '{name}' not found (modules come from the recipe's folder and "
                      f"engitor's lua/ folder; tried {', '.join(tried)})")

    def _load_trusted(self, filename: str, *args: Any) -> Any:
        path = self.lua_dir / filename
        loader = self.lua.eval("function(s, n) return assert(load(s, n)) end")
        return loader(path.read_text(), "=engitor/" + filename)(*args)

    def _first_chunk(self) -> str | None:
        return next(iter(self.sources), None)

    def _write(self, text: str) -> None:
        stream = self.out or sys.stderr
        stream.write(text)
        stream.flush()

    def _error(self, message: Any, where: str | None, kind: str, chunk: str | None, *,
               limit: float | None = None) -> UserError:
        where = self.display_where(where)
        if kind == "timeout":
            return UserError(
                f"the recipe ran longer than {limit or self.time_limit:g} s and was stopped",
                hint="an endless loop? describing images must be quick; slow work belongs in "
                     "a hook", where=where or chunk)
        if kind == "memory":
            if self.memory_limit and not self._script_envs:
                return UserError(
                    f"the recipe used more than {self.memory_limit // MiB} MiB of memory and "
                    "was stopped", hint="a table or string that grows without end?",
                    where=where or chunk)
            return UserError("Lua ran out of memory", where=where or chunk)
        text = str(message)
        located, msg, hint = reword(text, self._shown, self.sources, self._known_names())
        return UserError(msg, hint=hint, where=located or where or chunk)

    def _known_names(self) -> list[str]:
        names = {"image", "merge", *SCRIPT_ONLY}
        env = self._sandbox.new_env(self._print)
        names.update(str(k) for k in env.keys())
        return sorted(names)


def _pair(result: Any) -> tuple[Any, Any]:
    """A Lua call's (value, message) pair: lupa gives a lone value for one result."""
    return result if isinstance(result, tuple) else (result, None)


def _now() -> float:
    """Called by the count hook. A Python function, not the builtin: running Python bytecode is
    what lets the interpreter deliver a pending Ctrl-C into running Lua."""
    return time.monotonic()


def _installer(item: str | Installer) -> Installer | None:
    if callable(item):
        return item
    try:
        module = importlib.import_module(item)
    except ModuleNotFoundError as e:
        if e.name == item:
            return None  # that API is not part of this build
        raise
    return module.install


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
