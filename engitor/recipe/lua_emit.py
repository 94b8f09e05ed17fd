"""Lua text from data: safe literals, and the writer that turns a compiled config into a recipe.

Every value a config holds reaches Lua as a literal made here, never as text pasted into code:
strings are double-quoted with escapes for quotes, backslashes, line breaks, control and
invisible characters and bytes that are not UTF-8 (so `]]`, `"`, a newline or NUL in a value
stay data); keys are bare names only when they are Lua identifiers that are not keywords;
comments are single lines with their line breaks removed.

The writer lays out a `Program` (locals, then one `image` call per image) the way a person would
write it, and records for every line of the output where in the config it came from, so errors
raised while the Lua runs can name the config's line and column.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from engitor.luasyntax import KEYWORDS as KEYWORDS
from engitor.luasyntax import is_name as is_name

# Integers Lua (doubles) holds exactly.
MAX_EXACT = 2 ** 53
_SIMPLE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Shown as escapes rather than as themselves: controls, format characters (bidi overrides and
# zero-width marks can make code read differently from what it is), separators other than
# the space, and private or unassigned code points.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def _char(ch: str) -> str:
    if ch in _SIMPLE:
        return _SIMPLE[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02X}"
    if 0xD800 <= code <= 0xDFFF:  # any other lone surrogate: its UTF-8-style bytes, as data
        return "".join(f"\\x{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    if code < 0x80:
        return ch if 0x20 <= code < 0x7F else f"\\{code:03d}"
    if ch.isprintable() and unicodedata.category(ch) not in _HIDDEN:
        return ch
    return f"\\u{{{code:X}}}"


_PLAIN = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII but '"' and '\'


def string(value: str | bytes) -> str:
    """A double-quoted Lua string literal with exactly `value`'s bytes (str: UTF-8; lone
    surrogates U+DC80..U+DCFF stand for single bytes, as the runtime's codec reads them)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return '"' + "".join(_char(c) for c in value) + '"'


def number(value: int | float) -> str:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_EXACT:
            raise ValueError(f"{value} is beyond what a Lua number holds exactly")
        return str(value)
    if math.isnan(value):
        return "0/0"
    if math.isinf(value):
        return "math.huge" if value > 0 else "-math.huge"
    return repr(value)  # the shortest text that reads back as the same double


def literal(value: object) -> str:
    """Plain data (str, int, float, bool, None, lists, dicts with str keys) as a Lua expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str | bytes):
        return string(value)
    if isinstance(value, list | tuple):
        return "{ " + ", ".join(literal(v) for v in value) + " }" if value else "{}"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {literal(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no Lua literal for a {type(value).__name__}")


def key(name: str) -> str:
    """A table key: `name` when it is an identifier, else `["…"]`."""
    return name if is_name(name) else f"[{string(name)}]"


_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]")


def comment(text: str) -> str:
    """`-- text` on one line, whatever `text` holds: line breaks and controls become spaces."""
    text = _BREAKS.sub(" ", text)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    return ("-- " + text).rstrip()


# ---------------------------------------------------------------------------------------------
# What the writer lays out. Front ends (YAML, ops config.json) build it; `Origin`s say where in
# the config file each piece was written.


@dataclass(frozen=True)
class Origin:
    line: int  # 1-based
    column: int  # 1-based
    path: str  # the key path in the config's own terms: "images.web.ports[2]", "RunConfig.Memory"


@dataclass(eq=False)
class Node:
    origin: Origin
    leading: list[str] = field(default_factory=list, kw_only=True)  # comment lines before it
    trailing: str | None = field(default=None, kw_only=True)  # a comment at the end of its line


@dataclass(eq=False)
class Lit(Node):
    value: str | int | float | bool | None


@dataclass(eq=False)
class Env(Node):
    """Text made from the environment when the recipe is evaluated: parts are literal text or
    (variable name, default or None)."""

    parts: list[str | tuple[str, str | None]]
    number: bool = False  # where the setting takes a number: the text is read as one


@dataclass(eq=False)
class Seq(Node):
    items: list[Node]


@dataclass(eq=False)
class Entry(Node):
    key: str
    value: Node


@dataclass(eq=False)
class Table(Node):
    entries: list[Entry]


@dataclass(eq=False)
class Local:
    name: str
    value: Node
    leading: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Ref(Node):
    local: Local


@dataclass(eq=False)
class Merge(Node):
    """merge(a, b, …, own): later tables win, as in the DSL's merge."""

    sources: list[Node]
    own: Table


@dataclass(eq=False)
class ImageDecl:
    name: str
    body: Node  # Table, Merge or Ref
    origin: Origin
    leading: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Program:
    source: str  # the config's file name, for the stamp
    images: list[ImageDecl]
    locals: list[Local] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # comment lines after the header (warnings)
    trailer: list[str] = field(default_factory=list)


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node inside it (not through Refs)."""
    yield node
    if isinstance(node, Entry):
        yield from walk(node.value)
    elif isinstance(node, Seq):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Table):
        for entry in node.entries:
            yield from walk(entry)
    elif isinstance(node, Merge):
        for source in node.sources:
            yield from walk(source)
        yield from walk(node.own)


# ---------------------------------------------------------------------------------------------


STAMP = "-- Generated by engitor from {source}: edit that file, not this one."
ENV_HELPER = """\
-- ${NAME} in values tagged !env: read from the environment when the recipe is evaluated.
local function env(name, default)
  local value = os.getenv(name)
  if value == nil or (value == "" and default ~= nil) then value = default end
  if value == nil then error("environment variable " .. name .. " is not set", 2) end
  return value
end"""
NUMBER_HELPER = """\
-- Where a setting takes a number, the environment's text is read as one.
local function number(text) return tonumber(text) or text end"""
HELPER_NAMES = frozenset({"env", "number", "image", "merge"})
WIDTH = 96
INDENT = "  "


@dataclass
class Output:
    text: str
    # nodes[n]: the nodes written on Lua line n + 1, outermost first.
    nodes: list[list[Node]]
    # The Lua lines of each image declaration: (first, last, image).
    spans: list[tuple[int, int, ImageDecl]]

    def on_line(self, line: int) -> list[Node]:
        return self.nodes[line - 1] if 0 < line <= len(self.nodes) else []


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.nodes: list[list[Node]] = []

    def put(self, text: str, nodes: Sequence[Node] = (), trailing: str | None = None) -> None:
        if trailing:
            text = f"{text}  {comment(trailing)}"
        self.lines.append(text.rstrip())
        self.nodes.append(list(nodes))

    def comments(self, lines: list[str], indent: str) -> None:
        for text in lines:
            self.put(indent + comment(text))

    # -- expressions ------------------------------------------------------------------------

    def inline(self, node: Node) -> str | None:
        """The node on one line, or None when it carries comments inside (it needs lines)."""
        if isinstance(node, Lit):
            return literal(node.value)
        if isinstance(node, Env):
            return _env_expr(node)
        if isinstance(node, Ref):
            return node.local.name
        if isinstance(node, Seq):
            if any(i.leading or i.trailing for i in node.items):
                return None
            items = [self.inline(i) for i in node.items]
            texts = [t for t in items if t is not None]
            if len(texts) != len(items):
                return None
            return "{ " + ", ".join(texts) + " }" if texts else "{}"
        if isinstance(node, Table):
            if any(e.leading or e.trailing for e in node.entries):
                return None
            parts = []
            for e in node.entries:
                value = self.inline(e.value)
                if value is None:
                    return None
                parts.append(f"{key(e.key)} = {value}")
            return "{ " + ", ".join(parts) + " }" if parts else "{}"
        if isinstance(node, Merge):
            if node.leading or node.trailing:
                return None
            sources = [self.inline(s) for s in (*node.sources, *_own(node))]
            merged = [t for t in sources if t is not None]
            if len(merged) != len(sources):
                return None
            return "merge(" + ", ".join(merged) + ")"
        raise TypeError(node)

    def value(self, node: Node, indent: str, head: str, tail: str, *,
              owner: Node | None = None, trailing: str | None = None,
              force_block: bool = False) -> None:
        """Write `head <node> tail`, on one line when it fits, else across lines."""
        owner = owner or node
        text = None if force_block else self.inline(node)
        if text is not None and len(indent) + len(head) + len(text) + len(tail) <= WIDTH:
            self.put(f"{indent}{head}{text}{tail}", list(walk(owner)), trailing)
            return
        if isinstance(node, Table):
            self.put(f"{indent}{head}{{", [owner], trailing)
            self.entries(node.entries, indent + INDENT)
            self.put(f"{indent}}}{tail}", [owner])
        elif isinstance(node, Seq):
            self.put(f"{indent}{head}{{", [owner], trailing)
            for item in node.items:
                self.comments(item.leading, indent + INDENT)
                self.value(item, indent + INDENT, "", ",", trailing=item.trailing)
            self.put(f"{indent}}}{tail}", [owner])
        elif isinstance(node, Merge):
            trailing = trailing or node.trailing
            sources = [self.inline(s) for s in node.sources]
            if all(s is not None for s in sources):
                joined = ", ".join(sources)  # type: ignore[arg-type]
                if not _own(node):
                    self.put(f"{indent}{head}merge({joined}){tail}", list(walk(owner)), trailing)
                else:
                    self.value(node.own, indent, f"{head}merge({joined}, ", f"){tail}",
                               owner=owner, trailing=trailing, force_block=True)
            else:
                self.put(f"{indent}{head}merge(", [owner], trailing)
                for source in (*node.sources, *_own(node)):
                    self.value(source, indent + INDENT, "", ",")
                self.lines[-1] = self.lines[-1].rstrip(",")
                self.put(f"{indent}){tail}", [owner])
        else:  # a scalar too long for the line: it stays on one anyway
            self.put(f"{indent}{head}{text}{tail}", list(walk(owner)), trailing)

    def entries(self, entries: list[Entry], indent: str) -> None:
        for e in entries:
            self.comments(e.leading, indent)
            self.value(e.value, indent, f"{key(e.key)} = ", ",", owner=e, trailing=e.trailing)


def _own(node: Merge) -> list[Table]:
    """A merge's own table, unless it is empty (merge(a, b) says it all)."""
    own = node.own
    return [own] if own.entries or own.leading or own.trailing else []


def _env_expr(node: Env) -> str:
    parts = []
    for part in node.parts:
        if isinstance(part, str):
            if part:
                parts.append(string(part))
        else:
            name, default = part
            parts.append(f"env({string(name)})" if default is None
                         else f"env({string(name)}, {string(default)})")
    expr = " .. ".join(parts) or '""'
    return f"number({expr})" if node.number else expr


def render(program: Program) -> Output:
    """The recipe a person would write for `program`, with its line-to-origin map."""
    w = Writer()
    w.put(STAMP.format(source=_one_line(PurePosixPath(program.source).name or program.source)))
    if program.header:
        w.put("")
        w.comments(program.header, "")
    if program.notes:
        w.put("")
        w.comments(program.notes, "")
    every = [n for decl in program.images for n in walk(decl.body)]
    every += [n for local in program.locals for n in walk(local.value)]
    envs = [n for n in every if isinstance(n, Env)]
    if envs:
        w.put("")
        for line in ENV_HELPER.splitlines():
            w.put(line)
    if any(e.number for e in envs):
        w.put("")
        for line in NUMBER_HELPER.splitlines():
            w.put(line)
    for local in program.locals:
        w.put("")
        w.comments(local.leading, "")
        w.value(local.value, "", f"local {local.name} = ", "")
    spans = []
    for decl in program.images:
        w.put("")
        w.comments(decl.leading + decl.body.leading, "")
        first = len(w.lines) + 1
        head = f"image {string(decl.name)} "
        body = decl.body
        if isinstance(body, Table):
            w.value(body, "", head, "", owner=body, force_block=True)
        else:
            block = isinstance(body, Merge) and bool(_own(body))
            w.value(body, "", head + "(", ")", force_block=block)
        spans.append((first, len(w.lines), decl))
    if program.trailer:
        w.put("")
        w.comments(program.trailer, "")
    return Output("\n".join(w.lines) + "\n", w.nodes, spans)


def _one_line(text: str) -> str:
    return comment(text)[3:]
