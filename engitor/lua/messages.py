"""Lua's error messages reworded for people, the way xmake's interpreter does it.

A raw message is `chunk:LINE: text`; `reword` splits off the location (mapping Lua's short chunk
name back to the file the user knows), rephrases the common runtime and syntax errors, and finds
a hint: did-you-mean for undefined names, the fix for the usual syntax slips, or else the source
line itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from engitor.errors import did_you_mean

SCRIPT_ONLY = {"fs": "file operations", "sh": "host commands", "log": "logging",
               "c": "C libraries"}
# Standard Lua that recipes do not get, and what to use instead.
WITHHELD = {
    "io": "use fs in a hook for files",
    "debug": "debugging hooks would let a recipe escape the sandbox",
    "ffi": "call C from hooks with c.include",
    "jit": "the runtime controls the JIT",
    "package": "require modules from the recipe's folder with require 'name'",
    "dofile": "use require 'name' for modules in the recipe's folder",
    "loadfile": "use require 'name' for modules in the recipe's folder",
    "setfenv": "environments are fixed by the sandbox",
    "getfenv": "environments are fixed by the sandbox",
    "module": "return a table from the module file instead",
    "newproxy": "use setmetatable on a table",
    "dump": "bytecode cannot be loaded by recipes",
    "execute": "run host commands from hooks with sh",
    "remove": "remove files from hooks with fs.remove",
    "rename": "move files from hooks with fs.copy and fs.remove",
    "exit": "a recipe cannot end the process; raise an error() instead",
    "tmpname": "write into the staging tree from hooks with fs",
}
HOOKS_HINT = ("hooks (before_build = function(ctx) … end, after_build, files generators) "
              "run at build time")

_LOCATED = re.compile(r"^(?P<chunk>[^\n]*?):(?P<line>\d+): (?P<msg>.*)$", re.DOTALL)
# LuaJIT: "attempt to call global 'imag' (a nil value)", "attempt to index a nil value".
_ATTEMPT = re.compile(
    r"attempt to (?P<op>call|index|perform arithmetic on|concatenate|get length of) "
    r"(?:(?P<kind>global|local|field|upvalue|method|constant) '(?P<name>[^']*)' "
    r"\(an? (?P<type>\w+) value\)|an? (?P<type2>\w+) value)$")


def _undefined(name: str, known: Iterable[str]) -> tuple[str, str | None]:
    if name in WITHHELD:
        return f"'{name}' is not available to recipes", WITHHELD[name]
    if name in SCRIPT_ONLY:
        return (f"'{name}' ({SCRIPT_ONLY[name]}) is not available while images are declared",
                f"use it inside a hook: {HOOKS_HINT}")
    return f"'{name}' is not defined", did_you_mean(name, known)


def _runtime(msg: str, known: Iterable[str]) -> tuple[str, str | None] | None:
    m = re.fullmatch(r"attempt to compare (\w+) with (\w+)", msg)
    if m:
        return (f"cannot compare a {m.group(1)} with a {m.group(2)}",
                "compare values of the same type (tonumber / tostring first)")
    m = _ATTEMPT.fullmatch(msg)
    if not m:
        return None
    op, kind, name = m.group("op"), m.group("kind"), m.group("name")
    typ = m.group("type") or m.group("type2")
    if typ == "nil" and kind == "global" and op in ("call", "index"):
        return _undefined(name, known)
    subject = f"'{name}'" if name else f"{_a(typ)} value"
    if typ == "nil" and kind in ("field", "method") and name in WITHHELD:
        return f"'{name}' is not available to recipes", WITHHELD[name]
    if op == "call" and kind == "method":
        return (f"no method '{name}' on this value",
                "check the spelling, and that the value is the one you meant")
    if op in ("call", "index"):
        what = "called" if op == "call" else "indexed"
        if typ == "nil" and not name:
            return f"a nil value cannot be {what}", "a name that was never set?"
        if typ == "nil":
            return (f"{subject} is nil and cannot be {what}",
                    "check the spelling, or that it was set before this line")
        return (f"{subject} is {_a(typ)} and cannot be {what}",
                "only functions can be called" if op == "call"
                else "only tables (and strings, for methods) can be indexed")
    verb = {"perform arithmetic on": "do arithmetic with", "get length of": "take the length of",
            "concatenate": "concatenate"}[op]
    return (f"cannot {verb} {subject}" + (f", which is {_a(typ)}" if name else ""),
            "is it defined, and set before this line?" if typ == "nil"
            else "convert it first (tostring / tonumber)")


def _a(typ: str) -> str:
    return ("an " if typ[:1] in "aeiou" else "a ") + typ


def _syntax(msg: str) -> str | None:
    if re.search(r"'}' expected(?: \(to close '\{' at line \d+\))? near", msg):
        return "a missing ',' between two table fields?"
    if re.search(r"'\)' expected", msg):
        return "a missing ')' or ',' between arguments?"
    if re.search(r"'end' expected", msg):
        return "every function, if, for and while needs its 'end'"
    if "'=' expected" in msg:
        return "a setting is written name = value; strings need quotes"
    if "unfinished string" in msg:
        return "close the string with the same quote it opened with"
    if "unfinished long string" in msg or "unfinished long comment" in msg:
        return "close it with ]] (with as many '=' as it opened with)"
    if "'<eof>' expected" in msg:
        return "an 'end' or '}' too many?"
    if "unexpected symbol" in msg:
        return "a missing ',' or a stray character on this line or the one before?"
    return None


def reword(raw: str, shown: Mapping[str, str], sources: Mapping[str, str],
           known: Iterable[str]) -> tuple[str | None, str, str | None]:
    """-> (location "file:LINE" or None, message, hint)."""
    text = raw.split("\nstack traceback:", 1)[0].strip()
    where = None
    line_text = None
    m = _LOCATED.match(text)
    if m and "@" + m.group("chunk") not in shown:
        # Raised inside engitor's own Lua: the caller's frame (found by the runtime) is where.
        text, m = m.group("msg"), None
    if m:
        display = shown["@" + m.group("chunk")]
        line = int(m.group("line"))
        where = f"{display}:{line}"
        text = m.group("msg")
        lines = sources.get(display, "").splitlines()
        if 0 < line <= len(lines):
            line_text = lines[line - 1].strip()
        # error() rethrown through require/pcall can carry a second location: keep the inner one
        inner = _LOCATED.match(text)
        if inner and "@" + inner.group("chunk") in shown:
            return reword(text, shown, sources, known)
    known = list(known)
    runtime = _runtime(text, known)
    if runtime:
        message, hint = runtime
    else:
        message, hint = text, _syntax(text)
        if "bad argument" in text:
            hint = "check the arguments of this call"
        elif text.startswith("error object is a"):
            hint = "give error() a message string"
    if hint is None and line_text:
        hint = f"the line reads: {line_text[:120]}"
    return where, message, hint
