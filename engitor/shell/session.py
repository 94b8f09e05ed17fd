"""The shell's core, without the terminal: one Lua runtime with the whole toolkit, and what a
typed chunk means (an expression is printed, a statement run, `?x` asks for help).

    shell = Session(out=sys.stdout, err=sys.stderr)
    shell.execute("t = {1, 2, x = {y = 3}}")
    shell.execute("t")                 # prints {1, 2, x = {y = 3}}
    shell.run_file(Path("script.lua"), ["arg1"])     # -> exit status
    shell.run_stream(sys.stdin)                      # -> exit status

The terminal side (prompt_toolkit) is in repl.py and complete.py; scripts and pipes never
import it, so they start quicker.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from engitor.errors import UserError
from engitor.lua import api
from engitor.lua.api import c as c_api
from engitor.lua.runtime import LUA_DIR, SCRIPT_APIS, Runtime
from engitor.shell import docs, lexer, vm_api

PRETTY_DEPTH = 4
PRETTY_ITEMS = 50


class ShellExit(BaseException):
    """exit(code) from Lua: a BaseException, so no pcall in Lua can swallow it."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Session:
    def __init__(self, *, out: TextIO | None = None, err: TextIO | None = None,
                 color: bool = False, interactive: bool = True, cwd: Path | None = None,
                 width: int | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = color
        self.interactive = interactive
        self.cwd = (cwd or Path.cwd()).resolve()
        self.width = width
        # Typed code runs with the JIT off so that Ctrl-C stops any loop; scripts keep it.
        self.time_limit: float | None = math.inf if interactive else None
        self.machines = vm_api.Machines(log=self._note)
        self.rt = Runtime(base_dir=self.cwd, time_limit=None, memory_limit=None, out=self.out,
                          script_apis=(*SCRIPT_APIS, self._install))
        self.env = self.rt.script_env(fs_root=self.cwd, fs_writable=True)
        self.lua = self.rt.lua
        loader = self.lua.eval("function(s, n) return assert(load(s, n)) end")
        self.helpers = loader((LUA_DIR / "shell.lua").read_text(), "=engitor/shell.lua")()
        self.names = self.helpers.names(self.env)
        self._compiles = self.lua.eval("function(s) return (loadstring(s)) ~= nil end")
        self._select = self.lua.globals().select
        self.count = 0

    def _install(self, lua: Any, env: Any) -> None:
        vm_api.install(lua, env, machines=self.machines)
        env.help = api.expose(lua, self._help)
        env.exit = api.expose(lua, _exit)

    # -- output ---------------------------------------------------------------------------------

    def _note(self, text: str) -> None:
        self.err.write(f"engitor: {text}\n")
        self.err.flush()

    def write(self, text: str, *, highlight: bool = True) -> None:
        if self.color and highlight:
            text = _highlight(text)
        elif not text.endswith("\n"):
            text += "\n"
        self.out.write(text)
        self.out.flush()

    def error(self, e: BaseException) -> None:
        if isinstance(e, UserError):
            hint = e.hint
            if self.interactive and hint and hint.startswith("the line reads:"):
                hint = None  # it is the line just typed
            text = f"{e.where}: {e.message}" if e.where else e.message
            if hint:
                text += f" (hint: {hint})"
        else:
            text = f"{type(e).__name__}: {e}"
        prefix = "error: " if self.interactive else "engitor: "
        text = prefix + text
        if self.color:
            text = f"\x1b[31m{text}\x1b[0m"
        self.err.write(text + "\n")
        self.err.flush()

    def pretty(self, values: tuple[Any, ...]) -> str:
        width = self.width or (shutil.get_terminal_size().columns if self.interactive else 80)
        opts = self.lua.table_from({"depth": PRETTY_DEPTH, "items": PRETTY_ITEMS,
                                    "width": max(20, width - 1), "names": self.names})
        (text,) = self.rt.call(self.helpers.pretty, opts, len(values), *values,
                               time_limit=self.time_limit)
        return str(text)

    # -- reading --------------------------------------------------------------------------------

    def incomplete(self, text: str) -> bool:
        """Whether the chunk needs more lines: it ends inside a block, string or expression."""
        stripped = text.strip()
        if not stripped or stripped.startswith("?"):
            return False
        toks = lexer.tokens(text)
        if toks and not toks[-1].closed and toks[-1].text[0] in "\"'":
            return False  # a short string cannot go on to the next line: that is an error
        if stripped.startswith("="):
            return self.rt.is_incomplete("return " + stripped[1:])
        if self._compiles("return " + text) or self._compiles(text):
            return False  # `t` alone could begin `t = 1`, but it is a whole expression
        return self.rt.is_incomplete(text) or self.rt.is_incomplete("return " + text)

    def execute(self, text: str, *, chunk: str | None = None, line: int = 1,
                source: str | None = None) -> bool:
        """Run one chunk as typed; print its values or its error. False when it failed.
        ShellExit (exit()) and KeyboardInterrupt are the caller's.

        Typed chunks are named in[N]; a pipe names its chunks `chunk` starting at `line`, with
        `source` the text read so far, so errors point at the line of the stream."""
        stripped = text.strip()
        if not stripped:
            return True
        self.count += 1
        name = chunk or f"in[{self.count}]"
        padded = "\n" * (line - 1) + text
        try:
            if stripped.startswith("?"):
                self.help_expression(stripped[1:].strip(), name)
                return True
            if stripped.startswith("="):
                fn = self.rt.compile(_expression("\n" * (line - 1) + stripped[1:]), self.env,
                                     name)
            else:
                fn = self._compile(padded, name)
            self.rt.sources[name] = source or padded  # as typed, not as wrapped
            values = self.rt.call(fn, self._select, time_limit=self.time_limit, chunk=name)
            if values:
                self.write(self.pretty(values))
            return True
        except UserError as e:
            self.error(e)
            return False

    def _compile(self, text: str, name: str) -> Any:
        try:
            return self.rt.compile(_expression(text), self.env, name)
        except UserError:
            pass
        try:
            return self.rt.compile(lexer.persist_locals(text), self.env, name)
        finally:
            self.rt.sources[name] = text

    # -- help -----------------------------------------------------------------------------------

    def help_expression(self, expr: str, name: str) -> None:
        if not expr:
            self.write(docs.OVERVIEW, highlight=False)
            return
        # `vm:wait_port` names a method; as an expression it is `vm.wait_port`.
        head, sep, last = expr.rpartition(":")
        if sep and lexer.chain_at_end(expr) is not None:
            expr = f"{head}.{last}"
        fn = self.rt.compile(_expression(expr), self.env, name)
        values = self.rt.call(fn, self._select, time_limit=self.time_limit, chunk=name)
        path = expr.replace(" ", "").split(".") if lexer.chain_at_end(expr) else None
        self.write(self.describe(values[0] if values else None, path), highlight=False)

    def _help(self, *values: Any) -> api.Multiple:
        text = self.describe(values[0], None) if values else docs.OVERVIEW
        self.write(text, highlight=False)
        return api.Multiple(())

    def describe(self, value: Any, path: list[str] | None) -> str:
        """What help() says about a value, named by `path` when the user typed one."""
        h = self.helpers
        if path is None or h.resolve(self.env, self.lua.table_from(path)) is None:
            found = h.find(self.env, value) if value is not None else None
            path = [str(found[i]) for i in range(1, len(found) + 1)] if found is not None else None
        kind = api.luajit21.lua_type(value)
        if path:
            dotted = ".".join(path)
            if dotted in docs.DOCS:
                return docs.DOCS[dotted]
            if dotted in docs.MODULES and kind == "table":
                return self._module(dotted, value)
            if len(path) > 1:
                container = h.resolve(self.env, self.lua.table_from(path[:-1]))
                if container is not None and h.c_data(container) is not None:
                    found_c = (c_api.describe(self.lua, container) or {}).get(path[-1])
                    if found_c:
                        return f"{dotted}: {found_c}"
                if container is not None and self.is_vm(container):
                    key = f"vm:{path[-1]}"
                    if key in docs.DOCS:
                        return docs.DOCS[key]
        if kind == "table":
            if self.is_vm(value):
                methods = sorted(k for k in docs.DOCS if k.startswith("vm:"))
                return "\n".join([self.pretty((value,)), docs.MODULES["vm"], "",
                                  *(f"  {docs.summary(m)}" for m in methods)])
            if h.c_data(value) is not None:
                return self._c_namespace(value)
            return self._fields(value, ".".join(path) if path else None)
        if kind == "function":
            return self._function(value, ".".join(path) if path else None)
        return f"{self.pretty((value,))}  ({kind or type(value).__name__})"

    def is_vm(self, value: Any) -> bool:
        return bool(self.helpers.is_vm(value))

    def _module(self, name: str, table: Any) -> str:
        lines = [docs.MODULES[name], ""]
        for key in sorted(str(k) for k in table.keys()):
            dotted = f"{name}.{key}"
            if dotted in docs.DOCS:
                lines.append(f"  {docs.summary(dotted)}")
            else:
                value = table[key]
                shown = self.pretty((value,)) if api.luajit21.lua_type(value) != "table" \
                    else "{…}"
                lines.append(f"  {dotted} = {shown}")
        return "\n".join(lines)

    def _c_namespace(self, ns: Any) -> str:
        described = c_api.describe(self.lua, ns) or {}
        kinds: dict[str, int] = {}
        for text in described.values():
            k = "functions" if "(" in text and "--" in text else \
                "types" if text == "type" else "constants and macros"
            kinds[k] = kinds.get(k, 0) + 1
        (title,) = self.rt.call(self.lua.eval("tostring"), ns)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return f"{title}\n{counts}\nTab after the namespace lists them; help(ns.NAME) shows " \
               "one; c.info(ns) gives them all by kind."

    def _fields(self, table: Any, name: str | None) -> str:
        text = self.helpers.members(table, self.lua.table(), "", False)
        rows = [line.split("\1") for line in str(text).splitlines()]
        head = f"{name}: a table" if name else "a table"
        if not rows:
            return head + " with no named fields"
        return "\n".join([head + " with fields:", *(f"  {n:<24} {k}" for n, k in rows)])

    def _function(self, fn: Any, name: str | None) -> str:
        where = self.helpers.defined(fn)
        if where is None:
            return f"{name or 'a function'}: a built-in function" + \
                (" (Lua's standard library: see the Lua 5.1 manual)" if name else "")
        source, first, last = where
        display = self.rt.display("@" + str(source))
        head = f"{name or 'function'}: defined at {display}:{first}"
        text = self.rt.sources.get(display)
        if text is None:
            return head
        body = text.splitlines()[int(first) - 1:int(last)]
        return "\n".join([head, *("  " + line for line in body)])

    # -- whole programs -----------------------------------------------------------------------------

    def run_file(self, path: Path, args: list[str]) -> int:
        """Run a script with `arg` (arg[0] its path) and `...` set; the exit status."""
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            self.error(UserError(f"{path}: no such script"))
            return 2
        except (OSError, UnicodeDecodeError) as e:
            self.error(UserError(f"{path}: cannot read it: {e}"))
            return 2
        if text.startswith("#!"):
            text = "--" + text  # keeps line numbers; Lua itself skips a first '#' line
        self.env.arg = api.to_lua(self.lua, {0: str(path), **dict(enumerate(args, 1))})
        try:
            fn = self.rt.compile(text, self.env, str(path))
            self.rt.call(fn, *args, time_limit=self.time_limit, chunk=str(path))
        except UserError as e:
            self.error(e)
            return 1
        except ShellExit as e:
            return e.code
        return 0

    def run_stream(self, stream: TextIO) -> int:
        """Lua read from a pipe, chunk by chunk as if typed; stops at the first error."""
        buffered, seen, first = "", "", 1
        try:
            for number, line in enumerate(stream, 1):
                if not buffered:
                    first = number
                buffered += line
                seen += line
                if self.incomplete(buffered):
                    continue
                chunk, buffered = buffered, ""
                if not self.execute(chunk, chunk="stdin", line=first, source=seen):
                    return 1
            if buffered.strip() and not self.execute(buffered, chunk="stdin", line=first,
                                                     source=seen):
                return 1
        except ShellExit as e:
            return e.code
        return 0

    def close(self) -> None:
        """Stop the VMs this shell started (detached ones live on)."""
        ended = self.machines.shutdown()
        if ended:
            self._note(f"stopped {', '.join(ended)} (started in this shell)")


def _expression(text: str) -> str:
    """A typed expression as a chunk returning all its values. `return f()` would be a tail
    call, and a tail-called function's error loses the line it came from; as an argument of
    `select` (handed in as the chunk's vararg, so no global is needed) it keeps it. The text
    stays on its own lines: the line numbers are the user's, a trailing comment ends before
    the closing parenthesis."""
    return "local __select = ... return __select(1, " + text + "\n)"


def _exit(code: Any = 0) -> None:
    if code is True or code is None:
        code = 0
    elif code is False:
        code = 1
    if not isinstance(code, int | float) or not float(code).is_integer():
        raise api.ApiError(f"exit: expected an exit status (a whole number), got {code!r}")
    raise ShellExit(int(code))


def _highlight(text: str) -> str:
    from pygments import highlight
    from pygments.formatters import TerminalFormatter
    from pygments.lexers.scripting import LuaLexer

    return highlight(text, LuaLexer(), TerminalFormatter())


def wants_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and \
        os.environ.get("TERM", "") != "dumb"
