"""Just enough of Lua's lexical grammar for the shell: where strings and comments are, which
names are keywords, and how deep in blocks a token sits.

The shell needs this to complete paths inside a string being typed, to complete the names of
a dotted chain (`fs.re`, `vm:wa`) and nothing inside comments, and to keep a line's top-level
`local` names for the next line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engitor.luasyntax import KEYWORDS as KEYWORDS
from engitor.luasyntax import NAME

# Words that open a block closed by `end` (`while`/`for` open theirs with `do`), and `repeat`
# closed by `until`.
OPENERS = frozenset({"function", "do", "if", "repeat"})
CLOSERS = frozenset({"end", "until"})

_NAME = NAME
_NUMBER = re.compile(r"0[xX][0-9a-fA-F.]*(?:[pP][+-]?\d+)?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
                     r"(?:ULL|LL|i)?", re.I)
_LONG_OPEN = re.compile(r"\[(=*)\[")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Token:
    kind: str  # name keyword number string comment op
    text: str
    start: int
    end: int
    closed: bool = True  # False: a string or comment still open at the end of the text


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _SPACE.match(text, i)
        if m:
            i = m.end()
            continue
        tok = _comment(text, i) if text.startswith("--", i) else (
            _quoted(text, i) if text[i] in "\"'" else _long(text, i, i, "string"))
        if tok is None:
            tok = _word(text, i)
        out.append(tok)
        i = tok.end
    return out


def _long(text: str, start: int, at: int, kind: str) -> Token | None:
    """A long bracket ([[...]], [==[...]==]) opening at `at`, as a token from `start`."""
    long = _LONG_OPEN.match(text, at)
    if not long:
        return None
    close = "]" + long.group(1) + "]"
    j = text.find(close, long.end())
    end = len(text) if j < 0 else j + len(close)
    return Token(kind, text[start:end], start, end, j >= 0)


def _comment(text: str, i: int) -> Token:
    long = _long(text, i, i + 2, "comment")
    if long:
        return long
    j = text.find("\n", i)
    end = len(text) if j < 0 else j
    return Token("comment", text[i:end], i, end)


def _quoted(text: str, i: int) -> Token:
    """A '...' or "..." string; one a line break or the end cuts is not closed."""
    quote, j, n = text[i], i + 1, len(text)
    closed = False
    while j < n:
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            closed = True
            j += 1
            break
        if text[j] == "\n":
            break
        j += 1
    end = min(j, n)
    return Token("string", text[i:end], i, end, closed)


def _word(text: str, i: int) -> Token:
    """A name, keyword, number or operator."""
    m = _NAME.match(text, i)
    if m:
        word = m.group()
        return Token("keyword" if word in KEYWORDS else "name", word, i, m.end())
    m = _NUMBER.match(text, i)
    if m and m.end() > i:
        return Token("number", m.group(), i, m.end())
    op = next((o for o in ("...", "..", "==", "~=", "<=", ">=", "::") if text.startswith(o, i)),
              text[i])
    return Token("op", op, i, i + len(op))


def open_string(text: str) -> tuple[int, str] | None:
    """When `text` ends inside a string literal: where its content starts and the content so
    far (escapes left as typed)."""
    toks = tokens(text)
    if not toks or toks[-1].kind != "string" or toks[-1].closed or toks[-1].end != len(text):
        return None
    tok = toks[-1]
    if tok.text[0] in "\"'":
        if "\n" in tok.text:
            return None
        return tok.start + 1, tok.text[1:]
    opening = _LONG_OPEN.match(tok.text)
    assert opening is not None
    return tok.start + opening.end(), tok.text[opening.end():]


def in_comment(text: str) -> bool:
    toks = tokens(text)
    return bool(toks) and toks[-1].kind == "comment" and toks[-1].end == len(text) and \
        (not toks[-1].closed or not toks[-1].text.startswith("--["))


_CHAIN = re.compile(r"((?:[A-Za-z_]\w*\s*[.:]\s*)*)([A-Za-z_]\w*)?$")


def chain_at_end(text: str) -> tuple[list[str], str, str] | None:
    """The dotted chain being typed at the end of `text`: (names before the last separator,
    the separator '.', ':' or '' for a plain name, the partial last name). None when the
    end of the text is not a place for a name (inside a string or comment, after a number)."""
    if open_string(text) is not None or in_comment(text):
        return None
    m = _CHAIN.search(text)
    assert m is not None  # both parts are optional: it matches at the end at least
    before = text[:m.start()]
    concat = before.endswith("..") and not before.endswith("...")
    if before and not concat and (before[-1].isalnum() or before[-1] in "_.:])}\"'"):
        return None  # after a number, a call, an index: not a name to complete
    chain, last = m.group(1), m.group(2) or ""
    parts = [p for p in re.split(r"\s*[.:]\s*", chain.strip()) if p]
    seps = re.findall(r"[.:]", chain)
    if not seps:
        return [], "", last
    if ":" in seps[:-1]:
        return None  # `a:b.c` is not an expression
    return parts, seps[-1], last


def persist_locals(code: str) -> str:
    """The chunk with its top-level `local` declarations made global, so that a name defined
    on one line of the shell is there on the next (each line is its own chunk). Locals inside
    functions and blocks stay local."""
    toks = tokens(code)
    depth = 0
    cuts: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for i, tok in enumerate(toks):
        if tok.kind != "keyword":
            continue
        if tok.text == "local" and depth == 0:
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and nxt.kind == "keyword" and nxt.text == "function":
                cuts.append((tok.start, nxt.start, ""))
                continue
            # `local a, b` without `=` declares nils: as globals that must be said.
            j = i + 1
            while j < len(toks) and toks[j].kind == "name":
                if j + 1 < len(toks) and toks[j + 1].text == ",":
                    j += 2
                    continue
                break
            last_name = toks[j] if j < len(toks) and toks[j].kind == "name" else None
            cuts.append((tok.start, toks[i + 1].start if nxt else tok.end, ""))
            if last_name is not None:
                after = toks[j + 1] if j + 1 < len(toks) else None
                if after is None or after.text != "=":
                    cuts.append((last_name.end, last_name.end, " = nil"))
        elif tok.text in OPENERS:
            depth += 1
        elif tok.text in CLOSERS:
            depth = max(0, depth - 1)
    for start, end, new in reversed(cuts):
        code = code[:start] + new + code[end:]
    return code
