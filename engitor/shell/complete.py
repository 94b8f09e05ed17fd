"""Tab completion for the shell: globals and keywords, fields and methods of tables (through
__index tables), a C namespace's names with their signatures, host programs after `sh.`, and
paths inside a string being typed.

Values are looked up the way indexing would find them but without running code (rawget and
__index tables; lua/shell.lua), so completing never calls the user's functions. The Lua side
filters by prefix and hands back one string, which keeps 2,000 names in scope cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from engitor.shell import docs, lexer

if TYPE_CHECKING:
    from engitor.shell.session import Session


def candidates(shell: Session, text: str) -> tuple[list[tuple[str, str]], int] | None:
    """(name, kind) pairs completing the name at the end of `text`, and how many characters
    of it are typed; None when the end of `text` is no place for a name."""
    found = lexer.chain_at_end(text)
    if found is None:
        return None
    parts, sep, prefix = found
    lua = shell.lua
    listed = shell.helpers.members(shell.env, lua.table_from(parts), prefix, sep == ":")
    out = [_pair(line) for line in str(listed).splitlines()]
    if parts:
        out = _documented(shell, parts, sep, out)
    if not parts:
        out += [(w, "keyword") for w in sorted(lexer.KEYWORDS) if w.startswith(prefix)]
    elif parts == ["sh"] and sep == ".":
        have = {name for name, _ in out}
        out += [(p, "program") for p in programs(prefix) if p not in have]
    return out, len(prefix)


def _pair(line: str) -> tuple[str, str]:
    """A "name\1kind" line of shell.lua's members() as (name, kind)."""
    name, _, what = line.partition("\1")
    return name, what


def _documented(shell: Session, parts: list[str], sep: str, found: list[tuple[str, str]]
                ) -> list[tuple[str, str]]:
    """Engitor's own functions show their signature (docs.py) instead of "function"."""
    if len(parts) == 1 and sep == "." and parts[0] in docs.MODULES:
        prefix = parts[0] + "."
    else:
        container = shell.helpers.resolve(shell.env, shell.lua.table_from(parts))
        if container is None or not shell.is_vm(container):
            return found
        prefix = "vm:"
    return [(name, docs.summary(prefix + name) if prefix + name in docs.DOCS else kind)
            for name, kind in found]


_programs: tuple[str, list[str]] | None = None


def programs(prefix: str) -> list[str]:
    """Executables on PATH whose names are Lua names (sh.NAME calls them), cached per PATH."""
    global _programs
    path = os.environ.get("PATH", os.defpath)
    if _programs is None or _programs[0] != path:
        names: set[str] = set()
        for folder in path.split(os.pathsep):
            try:
                with os.scandir(folder or ".") as it:
                    for entry in it:
                        if entry.name.isidentifier() and os.access(entry.path, os.X_OK):
                            names.add(entry.name)
            except OSError:
                continue
        _programs = (path, sorted(names))
    return [n for n in _programs[1] if n.startswith(prefix)]


class LuaCompleter(Completer):
    def __init__(self, shell: Session):
        self.shell = shell
        # Relative paths are relative to the shell's folder (where fs and sh work).
        self.paths = PathCompleter(expanduser=True, get_paths=lambda: [str(shell.cwd)])

    def get_completions(self, document: Document, complete_event: CompleteEvent
                        ) -> Iterator[Completion]:
        text = document.text_before_cursor
        inside = lexer.open_string(text)
        if inside is not None:
            yield from self._paths(inside[1], complete_event)
            return
        found = candidates(self.shell, text)
        if found is None:
            return
        names, typed = found
        for name, kind in names:
            yield Completion(name, start_position=-typed, display_meta=kind)

    def _paths(self, typed: str, event: CompleteEvent) -> Iterable[Completion]:
        return self.paths.get_completions(Document(typed), event)
