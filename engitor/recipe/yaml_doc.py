"""A YAML (or JSON) config file as a node graph that keeps where everything was written.

Parsing is PyYAML's safe parser (libyaml's when present) composing nodes, never constructing
Python objects, so no tag can reach Python code. Scalars resolve by the YAML 1.2 core schema
(what JSON also is): `yes`, `on`, `22:22` and `2001-01-01` are text, not booleans, sexagesimal
numbers or dates. The front ends walk the nodes themselves: duplicate keys are refused, marks
give every error its `file:line:column`, and comments (which PyYAML drops) are found in the text
around the nodes so the compiled recipe can carry them.

Why not ruamel.yaml's round trip (comments and positions for free): on bench_yaml's 1,000-key
config its round-trip load took 2.3 s against 95 ms for this module's parse, survey and
comments (libyaml's compose alone: 39 ms), it is another dependency beside PyYAML, and it hands
back Python objects where the front ends need nodes (anchors shared by identity, tags kept).
"""

from __future__ import annotations

import bisect
import json as json_module
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engitor.errors import UserError
from engitor.recipe.lua_emit import MAX_EXACT, Origin

T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MAP, SEQ, MERGE = (T + n for n in
                                                 ("str", "int", "float", "bool", "null", "map",
                                                  "seq", "merge"))
ENV_TAG = "!env"
MAX_DEPTH = 64
MAX_EXPANDED = 1_000_000


class CoreResolver(yaml.resolver.BaseResolver):
    """YAML 1.2's core schema, plus `<<` merge keys."""

    # PyYAML's resolvers keep their table on the class; a fresh one keeps BaseResolver's out.
    yaml_implicit_resolvers: dict[str, Any] = {}  # noqa: RUF012


for _tag, _regex, _first in (
    (BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (FLOAT, r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    (MERGE, r"^(?:<<)$", "<"),
):
    CoreResolver.add_implicit_resolver(_tag, re.compile(_regex), list(_first))

if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser  # type: ignore[attr-defined]  # (the stubs omit it)

    class _Composer(CParser, CoreResolver):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            CoreResolver.__init__(self)
else:  # pragma: no cover - PyYAML without libyaml
    class _Composer(yaml.reader.Reader, yaml.scanner.Scanner,  # type: ignore[no-redef]
                    yaml.parser.Parser, yaml.composer.Composer, CoreResolver):
        def __init__(self, stream: str):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            CoreResolver.__init__(self)


_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_ANCHOR = re.compile(r"(?:![^\s]*\s+)?&([^\s,\[\]{}]+)")
_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#", re.M)
_LINE_END = re.compile(r"[\r\n\x85\u2028\u2029]|$")
_ENV_REF = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.I)


def _one_escape(m: re.Match[str]) -> str:
    high, low = int(m.group(2), 16), int(m.group(3), 16)
    return f"{m.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


@dataclass
class Comments:
    leading: dict[int, list[str]] = field(default_factory=dict)  # node id -> lines before it
    trailing: dict[int, str] = field(default_factory=dict)  # node id -> comment on its line
    header: list[str] = field(default_factory=list)
    trailer: list[str] = field(default_factory=list)


def _check_json(text: str, display: str) -> None:
    try:
        json_module.loads(text)
    except json_module.JSONDecodeError as e:
        raise UserError(f"not valid JSON: {e.msg}", where=f"{display}:{e.lineno}:{e.colno}",
                        hint="check the commas, brackets and quotes around this place"
                        ) from None
    except RecursionError:
        raise UserError("not valid JSON: nested too deeply", where=display) from None


class Document:
    """One parsed config file: its root node and the means to read and locate the rest."""

    def __init__(self, text: str, display: str, *, json: bool = False):
        self.display = display
        self.text = text[1:] if text.startswith("\ufeff") else text
        if json:
            _check_json(self.text, display)  # YAML reads more than JSON: commas, quotes, comments
        if json and "\\u" in self.text:
            # JSON writes a character beyond U+FFFF as a pair of escapes, which YAML refuses;
            # in JSON every escape is inside a double-quoted string, so rewriting them is safe.
            self.text = _PAIR.sub(_one_escape, self.text)
        self._starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]
        try:
            self.root: Node | None = _Composer(self.text).get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problem = e.problem or e.context or "not valid YAML"
            hint = None
            if "duplicate anchor" in (e.context or ""):
                at = self._starts[mark.line] + mark.column if mark else 0
                found = _ANCHOR.match(self.text, at)
                problem = f"the anchor &{found.group(1) if found else '…'} is defined twice"
                hint = "give each anchor its own name"
            elif "single document" in (e.context or "") or "another document" in (e.problem or ""):
                problem = "the file holds more than one YAML document"
                hint = "declare several images in one document under images:"
            elif "undefined alias" in problem:
                hint = "an alias (*name) must follow its anchor (&name) in the file"
            elif "found character '\\t'" in problem:
                hint = "YAML indents with spaces, not tabs"
            raise UserError(f"not valid YAML: {problem}", hint=hint,
                            where=self._at(mark.line, mark.column) if mark else display) from None
        except yaml.reader.ReaderError as e:
            line, column = self.position(e.position)
            raise UserError(f"not valid YAML: {e.reason} (character {e.character!r})",
                            hint="write the character as an escape in a double-quoted string",
                            where=self._at(line, column)) from None
        except RecursionError:
            raise UserError("the file is nested too deeply", where=display) from None

    @classmethod
    def read(cls, path: Path, display: str | None = None, *, json: bool = False) -> Document:
        display = display or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{display}: no such file", hint="check the path") from None
        except IsADirectoryError:
            raise UserError(f"{display} is a folder, not a config file") from None
        except OSError as e:
            raise UserError(f"{display}: cannot read it: {e.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[:e.start].count(b"\n") + 1
            raise UserError("the file is not valid UTF-8 text", hint="save it as UTF-8",
                            where=f"{display}:{line}") from None
        return cls(text, display, json=json)

    # -- locations --------------------------------------------------------------------------

    def position(self, index: int) -> tuple[int, int]:
        """0-based (line, column) of a character index, counting lines as YAML does."""
        line = bisect.bisect_right(self._starts, index) - 1
        return line, index - self._starts[line]

    def _at(self, line: int, column: int) -> str:
        return f"{self.display}:{line + 1}:{column + 1}"

    def where(self, node: Node) -> str:
        return self._at(node.start_mark.line, node.start_mark.column)

    def origin(self, node: Node, path: str) -> Origin:
        return Origin(node.start_mark.line + 1, node.start_mark.column + 1, path)

    def error(self, node: Node, message: str, hint: str | None = None) -> UserError:
        return UserError(message, hint=hint, where=self.where(node))

    def anchor(self, node: Node) -> str | None:
        """The anchor name written at the node (`&name`), if any."""
        m = _ANCHOR.match(self.text, node.start_mark.index)
        return m.group(1) if m else None

    # -- values -----------------------------------------------------------------------------

    def pairs(self, node: MappingNode, what: str) -> list[tuple[Node, Node]]:
        """A mapping's (key, value) pairs; duplicate keys are an error at the second one."""
        seen: dict[Any, Node] = {}
        for key, _ in node.value:
            if isinstance(key, ScalarNode):
                ident = (key.tag, key.value) if key.tag != MERGE else MERGE
                if ident in seen:
                    first = seen[ident]
                    raise self.error(key, f"duplicate key {key.value!r} in {what}",
                                     f"it is already set at line {first.start_mark.line + 1}, "
                                     f"column {first.start_mark.column + 1}; keep one")
                seen[ident] = key
        return node.value

    def text_key(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag not in (STR, ENV_TAG):
            shown = node.value if isinstance(node, ScalarNode) else "a " + _kind(node)
            raise self.error(node, f"{what} must be text, got {shown!r}",
                             "quote the key: '1': …" if isinstance(node, ScalarNode) else None)
        if node.tag == ENV_TAG:
            raise self.error(node, "!env applies to values, not keys")
        return self.string(node)

    def string(self, node: ScalarNode) -> str:
        value = node.value
        if not value.isascii() and _SURROGATE.search(value):
            try:  # "\ud83d\ude00" (JSON's escape of one character) is a pair
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                raise self.error(node, "the text holds a lone surrogate (\\uD800-\\uDFFF), "
                                       "which is not a character",
                                 "write the character itself, or its \\U escape") from None
        return value

    def scalar(self, node: ScalarNode) -> str | int | float | bool | None:
        """A scalar's value by its (resolved or explicit) tag."""
        tag, text = node.tag, node.value
        try:
            if tag == STR:
                return self.string(node)
            if tag == NULL:
                return None
            if tag == BOOL:
                return text.lower() == "true"
            if tag == INT:
                digits = text.lstrip("+-")
                sign = -1 if text.startswith("-") else 1
                number = sign * (int(digits[2:], 8) if digits.startswith("0o") else
                                 int(digits[2:], 16) if digits.startswith("0x") else
                                 int(digits, 10))
                if abs(number) > MAX_EXACT:
                    raise self.error(node, f"{text} is too large a number (Lua holds whole "
                                           "numbers exactly up to 2^53)",
                                     f"quote it if it is text: '{text}'")
                return number
            if tag == FLOAT:
                lowered = text.lower()
                if lowered.endswith((".inf", ".nan")):
                    return float(lowered.replace(".", ""))
                return float(text)
        except ValueError:
            raise self.error(node, f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}") from None
        if tag == MERGE:
            raise self.error(node, "'<<' (a merge key) cannot be a value",
                             "quote it for the text '<<'")
        raise self.error(node, f"the tag {tag} is not allowed here",
                         "values are text, numbers, booleans, lists and mappings; !env "
                         "marks text read from the environment")

    def env_parts(self, node: ScalarNode) -> list[str | tuple[str, str | None]]:
        """`!env "http://${HOST}:${PORT:-80}"`
        -> ["http://", ("HOST", None), ":", ("PORT", "80")]."""
        text = self.string(node)
        parts: list[str | tuple[str, str | None]] = []
        at = 0
        for m in _ENV_REF.finditer(text):
            parts.append(text[at:m.start()])
            at = m.end()
            if m.group() == "$$":
                parts.append("$")
                continue
            body = m.group(1)
            name, sep, default = (body or "").partition(":-")
            if m.group(1) is None or not _ENV_NAME.fullmatch(name):
                raise self.error(node, f"!env: {m.group()!r} is not a variable reference",
                                 "write ${NAME} or ${NAME:-default} (NAME: letters, digits, _), "
                                 "and $$ for a $")
            parts.append((name, default if sep else None))
        parts.append(text[at:])
        merged: list[str | tuple[str, str | None]] = []
        for part in parts:  # join neighbouring text
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        if not any(isinstance(p, tuple) for p in merged):
            raise self.error(node, "!env text names no variable",
                             "write ${NAME} where the value of NAME goes, or drop !env")
        return merged

    # -- structure --------------------------------------------------------------------------

    def survey(self) -> Survey:
        """Count how often each node is reached (aliases reach a node again), refuse cycles
        and depth, and collect what comments attach to."""
        s = Survey()
        stack: set[int] = set()

        def visit(node: Node, depth: int, path: str) -> None:
            nid = id(node)
            if nid in stack:
                raise self.error(node, "an alias refers to the node it is inside of",
                                 "an anchor's value cannot use its own alias")
            s.count[nid] = s.count.get(nid, 0) + 1
            if s.count[nid] > 1:
                return
            s.paths[nid] = path
            if depth > MAX_DEPTH:
                raise self.error(node, f"the value is nested more than {MAX_DEPTH} levels deep")
            if isinstance(node, ScalarNode):
                s.spans.append((node.start_mark.index, node.end_mark.index))
                return
            stack.add(nid)
            if isinstance(node, SequenceNode):
                for item in node.value:
                    s.targets.append((item.start_mark.line, item))
                    visit(item, depth + 1, path)
            else:
                for key, value in node.value:
                    s.targets.append((key.start_mark.line, key))
                    visit(key, depth + 1, path)
                    name = key.value if isinstance(key, ScalarNode) else "?"
                    child = path if key.tag == MERGE else f"{path}.{name}" if path else name
                    visit(value, depth + 1, child)
            stack.discard(nid)

        if self.root is not None:
            visit(self.root, 0, "")
            self._expanded_size(self.root, {})
        s.spans.sort()
        return s

    def _expanded_size(self, node: Node, sizes: dict[int, int]) -> int:
        """How many values `node` stands for once every alias is copied out; refused past
        MAX_EXPANDED (aliases of aliases multiply: nine levels of nine make 387 million, the
        'billion laughs'). Runs after `survey` refused cycles."""
        nid = id(node)
        if nid in sizes:
            return sizes[nid]
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._expanded_size(item, sizes) for item in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._expanded_size(k, sizes) + self._expanded_size(v, sizes)
                        for k, v in node.value)
        if size > MAX_EXPANDED:
            raise self.error(node, f"with its aliases expanded this value holds more than "
                                   f"{MAX_EXPANDED:,} values (aliases of aliases multiply)",
                             "share a value with one alias level, or write a Lua recipe that "
                             "builds it in a loop")
        sizes[nid] = size
        return size

    def comments(self, survey: Survey) -> Comments:
        """Comments attached to the key or list item they precede or end the line of."""
        out = Comments()
        if "#" not in self.text:
            return out
        starts = [i for i, _ in survey.spans]
        first_line: dict[int, Node] = {}
        for line, node in survey.targets:
            first_line.setdefault(line, node)
        target_lines = sorted(first_line)
        first_content = target_lines[0] if target_lines else None
        pending: list[tuple[int, str]] = []
        for m in _COMMENT.finditer(self.text):
            k = bisect.bisect_right(starts, m.start()) - 1
            if k >= 0 and survey.spans[k][1] > m.start():
                continue  # a '#' inside a scalar
            line, column = self.position(m.start())
            line_end = _LINE_END.search(self.text, m.end())
            end = line_end.start() if line_end else len(self.text)
            text = self.text[m.end():end]
            text = text[1:] if text.startswith(" ") else text
            before = self.text[self._starts[line]:m.start()]
            if before.strip() and line in first_line:
                out.trailing[id(first_line[line])] = text.rstrip()
            elif not before.strip():
                pending.append((line, text.rstrip()))
        # Each run of comment lines belongs to the next key or item after it; a run before the
        # first one that a blank line separates from it is the file's header.
        for line, text in pending:
            n = bisect.bisect_right(target_lines, line)
            if n == len(target_lines):
                out.trailer.append(text)
                continue
            target = target_lines[n]
            if target == first_content and self._blank_between(line, target):
                out.header.append(text)
            else:
                out.leading.setdefault(id(first_line[target]), []).append(text)
        return out

    def _blank_between(self, line: int, target: int) -> bool:
        for n in range(line + 1, target):
            end = self._starts[n + 1] if n + 1 < len(self._starts) else len(self.text)
            chunk = self.text[self._starts[n]:end].strip()
            if not chunk:
                return True
            if not chunk.startswith("#"):
                return False
        return False


@dataclass
class Survey:
    count: dict[int, int] = field(default_factory=dict)  # node id -> times reached
    paths: dict[int, str] = field(default_factory=dict)  # node id -> key path where written
    spans: list[tuple[int, int]] = field(default_factory=list)  # scalar (start, end) indexes
    targets: list[tuple[int, Node]] = field(default_factory=list)  # (line, key or item node)


def _kind(node: Node) -> str:
    return "list" if isinstance(node, SequenceNode) else \
        "mapping" if isinstance(node, MappingNode) else "value"


def kind(node: Node) -> str:
    return _kind(node)
