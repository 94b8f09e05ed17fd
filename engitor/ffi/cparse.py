"""Stage 1 of the C bridge: run the host preprocessor over headers and split what it says.

One `cc -E -dD -H` run gives everything: the declarations with their attributes intact (LuaJIT
gets those verbatim: dropping `__attribute__` changes layouts, e.g. the packed `struct
epoll_event`), every `#define` in place with its file and line (so macros can be told apart by
the header that made them; the compiler's own come from `<built-in>`), and on stderr the list of
files read (the cache's dependencies). The text is cut into top-level declarations ("chunks"),
each remembering where it came from; pycparser then reads an attribute-free copy of the same
chunks, so every AST node maps back to the exact text LuaJIT will see.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engitor.errors import UserError
from engitor.ffi import cache
from engitor.proc import run

if TYPE_CHECKING:
    from pycparser import c_ast

# Types gcc knows as keywords but neither pycparser nor LuaJIT do. They only appear in glibc's
# declarations of the f128/f64x function families; mapping them keeps the header readable and
# the layouts right on x86-64 (size and alignment agree), and the model marks functions that
# pass them by value as not callable.
FLOAT_DEFINES = (
    "_Float128=long double", "_Float64x=long double", "_Float32x=double",
    "_Float64=double", "_Float32=float", "__float128=long double",
)

# Tokens pycparser cannot read that never change a declaration's meaning for indexing; LuaJIT
# gets them untouched. Those followed by a parenthesised group lose the group too.
_STRIP_WITH_GROUP = ("__attribute__", "__attribute", "__asm__", "__asm", "asm", "__declspec")
_STRIP_WORD = ("__extension__", "__restrict__", "__restrict", "__inline__", "__inline",
               "__const", "__signed__", "__volatile__", "__thread")
_STRIP_RE = re.compile(
    r"\b(" + "|".join(_STRIP_WITH_GROUP) + r")\b\s*(?=\()|\b(" + "|".join(_STRIP_WORD) + r")\b"
)
_REPLACE = {"__const": "const", "__signed__": "signed", "__volatile__": "volatile"}

# What usually makes a header readable when pycparser stops at a given token.
_FIXES = {
    "__int128": "__int128=long long",
    "_Atomic": "_Atomic=",
    "__typeof__": "__typeof__(x)=int",
    "typeof": "typeof(x)=int",
    "__auto_type": "__auto_type=int",
    "_Decimal32": "_Decimal32=float",
    "_Decimal64": "_Decimal64=double",
    "_Decimal128": "_Decimal128=long double",
    "__seg_fs": "__seg_fs=",
    "__seg_gs": "__seg_gs=",
    "__ibm128": "__ibm128=long double",
    "__bf16": "__bf16=short",
    "_Float16": "_Float16=short",
}

_SPECIAL_FILES = ("<stdin>", "<built-in>", "<command-line>")
_MARKER = re.compile(r'# (\d+) "((?:[^"\\]|\\.)*)"((?: \d)*)$')
_DEFINE = re.compile(r"#define ([A-Za-z_]\w*)(\([^)]*\))? ?(.*)$")
_UNDEF = re.compile(r"#undef ([A-Za-z_]\w*)")
_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[{}();]')
# Paths that a public header splits itself into: their declarations and macros count as the
# including header's own (glibc's bits/, the kernel's asm/ pieces).
_PRIVATE_DIRS = {"bits", "asm", "asm-generic", "gnu"}


@dataclass(frozen=True)
class Toolchain:
    """The host C compiler and what it searches, probed once per compiler binary."""
    cc: str                      # resolved path of the driver
    identity: str                # path, size and mtime: part of every cache key
    version: str
    include_dirs: tuple[str, ...]
    lib_dirs: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """What a user asked to include: headers and the flags that change what they say."""
    headers: tuple[str, ...]
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()

    def source(self) -> str:
        lines = []
        for h in self.headers:
            lines.append(f'#include "{h}"' if is_path(h) else f"#include <{h}>")
        return "\n".join(lines) + "\n"

    def argv(self, tc: Toolchain) -> list[str]:
        """The preprocessor command line: pure, so the cache key can be built from it."""
        argv = [tc.cc, "-E", "-dD", "-H", "-xc"]
        argv += [f"-I{d}" for d in self.include_dirs]
        argv += [f"-D{d}" for d in FLOAT_DEFINES]
        argv += [f"-D{d}" for d in self.defines]
        argv += list(self.cflags)
        return argv + ["-"]


def is_path(header: str) -> bool:
    return header.startswith(("/", "./", "../"))


@dataclass
class Chunk:
    """One top-level declaration as the preprocessor wrote it."""
    text: str
    file: str
    line: int
    own: bool = False            # written in a requested header (or one of its private parts)
    is_funcdef: bool = False     # has a body: LuaJIT gets only the prototype
    pragma: bool = False         # a `#pragma pack` line: LuaJIT must see every one, in order
    lines: list[tuple[str, int]] = field(default_factory=list, repr=False)

    def where(self, offset: int = 0) -> tuple[str, int]:
        if self.lines and 0 <= offset < len(self.lines):
            return self.lines[offset]
        return self.file, self.line


@dataclass(frozen=True)
class MacroDef:
    name: str
    params: tuple[str, ...] | None   # None: object-like
    body: str
    file: str
    line: int
    own: bool


@dataclass
class Preprocessed:
    chunks: list[Chunk]
    macros: dict[str, MacroDef]
    deps: list[str]                  # every file the preprocessor read
    header_paths: list[str]          # the requested headers, resolved
    builtins: dict[str, MacroDef] = field(default_factory=dict)


_toolchains: dict[str, Toolchain] = {}


def toolchain(cc: str | None = None) -> Toolchain:
    """Probe the compiler (version, search dirs); memoised per binary identity."""
    name = cc or os.environ.get("CC") or "cc"
    found = shutil.which(name)
    if not found:
        raise UserError(f"C compiler '{name}' not found",
                        hint="install gcc (apt-get install gcc libc6-dev) or set CC")
    real = os.path.realpath(found)
    st = os.stat(real)
    identity = f"{real}:{st.st_size}:{st.st_mtime_ns}"
    if identity in _toolchains:
        return _toolchains[identity]
    tc = _probe(real, identity)
    _toolchains[identity] = tc
    return tc


def _probe(cc: str, identity: str) -> Toolchain:
    cached = cache.load_toolchain(identity)
    if cached:
        return Toolchain(cc=cc, identity=identity, version=cached["version"],
                         include_dirs=tuple(cached["include_dirs"]),
                         lib_dirs=tuple(cached["lib_dirs"]))
    version = run([cc, "-dumpfullversion"]).stdout.strip()
    machine = run([cc, "-dumpmachine"]).stdout.strip()
    probe = run([cc, "-E", "-v", "-xc", "/dev/null"])
    inc, on = [], False
    for line in probe.stderr.splitlines():
        if line.startswith("#include <...> search starts here"):
            on = True
        elif line.startswith("End of search list"):
            on = False
        elif on:
            inc.append(os.path.normpath(line.strip()))
    dirs = run([cc, "-print-search-dirs"]).stdout
    libs = []
    for line in dirs.splitlines():
        if line.startswith("libraries: ="):
            libs = [os.path.normpath(p) for p in line.split("=", 1)[1].split(":") if p]
    std = [f"/usr/lib/{machine}", f"/lib/{machine}", "/usr/local/lib", "/usr/lib", "/lib"]
    lib_dirs = [d for d in dict.fromkeys(std + libs) if os.path.isdir(d)]
    tc = Toolchain(cc=cc, identity=identity, version=f"{machine} {version}",
                   include_dirs=tuple(inc), lib_dirs=tuple(lib_dirs))
    cache.store_toolchain(identity, {"version": tc.version, "include_dirs": inc,
                                     "lib_dirs": lib_dirs})
    return tc


def preprocess(req: Request, tc: Toolchain) -> Preprocessed:
    proc = run(req.argv(tc), input=req.source())
    deps, errors = [], []
    for line in proc.stderr.splitlines():
        m = re.match(r"\.+ (.*)$", line)
        if m:
            deps.append(os.path.normpath(m.group(1)))
        elif ": error: " in line or ": fatal error: " in line:
            errors.append(line)
    if proc.returncode != 0:
        raise _cc_error(req, tc, errors or proc.stderr.strip().splitlines()[-1:])
    pre = split(proc.stdout)
    pre.deps = sorted(set(deps))
    return pre


def _cc_error(req: Request, tc: Toolchain, errors: list[str]) -> UserError:
    first = errors[0] if errors else "the preprocessor failed"
    m = re.match(r"(.*?):(\d+):(?:\d+:)? (?:fatal )?error: (.*)$", first)
    if not m:
        return UserError(first)
    where, msg = f"{_short(m.group(1), tc)}:{m.group(2)}", m.group(3)
    missing = re.match(r"(.+): No such file or directory", msg)
    if missing:
        header = missing.group(1)
        tried = list(req.include_dirs) + list(tc.include_dirs)
        if where.startswith("<stdin>"):
            return UserError(f"header '{header}' not found",
                             hint=f"searched {', '.join(tried)}; install its -dev package or "
                                  "add its directory with incdir={...}")
        return UserError(f"'{header}' (included here) not found", where=where,
                         hint=f"searched {', '.join(tried)}; add its directory with incdir={{...}}")
    return UserError(msg, where=where)


def _short(path: str, tc: Toolchain | None = None, extra: tuple[str, ...] = ()) -> str:
    """A header's name as it would be written in #include, for messages and listings."""
    return _shorten(path, extra + (tc.include_dirs if tc else ()))


@functools.lru_cache(maxsize=4096)
def _shorten(path: str, dirs: tuple[str, ...]) -> str:
    for d in sorted(set(dirs + ("/usr/include",)), key=len, reverse=True):
        if path.startswith(d.rstrip("/") + "/"):
            return path[len(d.rstrip("/")) + 1:]
    return path


def split(text: str) -> Preprocessed:
    """Cut `cc -E -dD` output into top-level declarations and macro definitions."""
    splitter = _Splitter()
    for raw in text.split("\n"):
        splitter.feed(raw)
    return splitter.done()


class _Splitter:
    """The state of one `split`: where the preprocessor says we are (file, line, the include
    stack and which files count as the requested headers' own), and the declaration being
    gathered (its text, source lines, brace and parenthesis depth)."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.macros: dict[str, MacroDef] = {}
        self.builtins: dict[str, MacroDef] = {}
        self.stack: list[str] = []          # include stack of file names
        self.own_files: set[str] = set()
        self.headers: list[str] = []
        self.file, self.line = "<stdin>", 1
        self.buf: list[str] = []
        self.lines: list[tuple[str, int]] = []
        self.held: list[Chunk] = []         # #pragma pack lines met inside the declaration
        self.depth = self.paren = 0
        self.funcdef = False

    def done(self) -> Preprocessed:
        self.flush()
        return Preprocessed(chunks=self.chunks, macros=self.macros, deps=[],
                            header_paths=self.headers, builtins=self.builtins)

    def flush(self) -> None:
        body = "".join(self.buf).strip()
        if body and body != ";":
            f, ln = self.lines[0] if self.lines else (self.file, self.line)
            self.chunks.append(Chunk(body, f, ln, own=f in self.own_files,
                                     is_funcdef=self.funcdef, lines=self.lines))
        self.chunks.extend(self.held)
        self.held.clear()
        self.buf, self.lines, self.funcdef = [], [], False

    def feed(self, raw: str) -> None:
        if raw.startswith("#"):
            m = _MARKER.match(raw)
            if m:
                self.marker(m)
            else:
                self.directive(raw)
                self.line += 1
        elif self.file == "<stdin>" and not raw.strip():
            self.line += 1
        else:
            self.code(raw)
            self.line += 1

    def marker(self, m: re.Match[str]) -> None:
        """A `# LINE "FILE" FLAGS` line: entering (1) or returning to (2) a file."""
        new_file = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
        flags = m.group(3).split()
        stack = self.stack
        if "1" in flags:
            parent = stack[-1] if stack else self.file
            stack.append(new_file)
            if parent == "<stdin>":
                self.headers.append(new_file)
                self.own_files.add(new_file)
            elif parent in self.own_files and (_PRIVATE_DIRS & set(Path(new_file).parts)
                                               or Path(new_file).name == Path(parent).name):
                # a header's private parts, or the file an #include_next wrapper reads
                self.own_files.add(new_file)
        elif "2" in flags:
            while stack and stack[-1] != new_file:
                stack.pop()
            if not stack:
                stack.append(new_file)
        elif stack:
            stack[-1] = new_file     # a #line inside the same file, or the main file
        else:
            stack.append(new_file)
        self.file, self.line = new_file, int(m.group(1))

    def directive(self, raw: str) -> None:
        """#define, #undef and #pragma pack lines (-dD keeps them in place)."""
        if raw.startswith("#define"):
            d = _DEFINE.match(raw)
            if d:
                params = None
                if d.group(2) is not None:
                    params = tuple(p.strip() for p in d.group(2)[1:-1].split(",") if p.strip())
                # the compiler's own and -D ones are needed to expand, never listed
                into = self.builtins if self.file in _SPECIAL_FILES[1:] else self.macros
                into.pop(d.group(1), None)   # definition order = order of last definition
                into[d.group(1)] = MacroDef(d.group(1), params, d.group(3).strip(),
                                            self.file, self.line, self.file in self.own_files)
        elif raw.startswith(("#pragma pack", "#pragma  pack")):
            # Packing changes layouts, so LuaJIT sees every such line in order. LuaJIT
            # reads them only between declarations; one inside a declaration (gcc does
            # not repack the members around it either) goes right after it.
            pragma = Chunk(raw.strip(), self.file, self.line, own=self.file in self.own_files,
                           pragma=True, lines=[(self.file, self.line)])
            if self.depth or self.paren or "".join(self.buf).strip():
                self.held.append(pragma)
            else:
                self.flush()
                self.chunks.append(pragma)
        elif raw.startswith("#undef"):
            u = _UNDEF.match(raw)
            if u:
                self.macros.pop(u.group(1), None)
                self.builtins.pop(u.group(1), None)

    def code(self, raw: str) -> None:
        """A line of C: a declaration ends at a top-level `;`, a function definition at the
        `}` closing its body."""
        start = 0
        for m in _SCAN.finditer(raw):
            tok = m.group()
            end = None
            if tok == "(":
                self.paren += 1
            elif tok == ")":
                self.paren -= 1
            elif tok == "{":
                if self.depth == 0 and self.paren == 0:
                    head = strip_for_parser("".join(self.buf) + raw[start:m.start()]).rstrip()
                    self.funcdef = head.endswith(")")
                self.depth += 1
            elif tok == "}":
                self.depth -= 1
                if self.depth == 0 and self.funcdef:
                    end = m.end()
            elif tok == ";" and self.depth == 0 and self.paren == 0:
                end = m.end()
            if end is not None:   # one source line per chunk line: lines[k] maps line k
                self.buf.append(raw[start:end])
                self.lines.append((self.file, self.line))
                start = end
                self.flush()
        rest = raw[start:]
        if self.buf or rest.strip():
            self.buf.append(rest + "\n")
            self.lines.append((self.file, self.line))


def strip_for_parser(text: str) -> str:
    """The same declaration without the GNU syntax pycparser cannot read; newlines kept."""
    out: list[str] = []
    pos = 0
    for m in _STRIP_RE.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()])
        if m.group(1):
            i, depth = m.end(), 0
            while i < len(text):
                c = text[i]
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                elif c == '"':
                    i += 1
                    while i < len(text) and text[i] != '"':
                        i += 2 if text[i] == "\\" else 1
                i += 1
            out.append(" " + "\n" * text.count("\n", m.start(), i + 1))
            pos = i + 1
        else:
            out.append(" " + _REPLACE.get(m.group(2), "") + " ")
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# pycparser needs to know these as type names; their definitions do not matter for indexing.
_PRELUDE = ("typedef void *__builtin_va_list; typedef long __int128_t; "
            "typedef unsigned long __uint128_t;\n")


@dataclass
class Parsed:
    pre: Preprocessed
    nodes: list[list[c_ast.Node]]     # per chunk, the AST nodes it declares


def parse(pre: Preprocessed, tc: Toolchain | None = None) -> Parsed:
    """Parse every chunk with pycparser; errors name the header's file:line and a fix."""
    from pycparser import c_parser  # only a cold include needs the parser: import it then
    texts = [strip_for_parser(_prototype(ch.text) if ch.is_funcdef else ch.text)
             for ch in pre.chunks]
    text, starts = _join(texts)
    try:
        ast = c_parser.CParser().parse(text, "<unit>")
    except c_parser.ParseError as e:
        raise _parse_error(str(e), pre, texts, starts, tc) from None
    nodes: list[list] = [[] for _ in pre.chunks]
    for node in ast.ext:
        ln = node.coord.line if node.coord else 0
        i = bisect.bisect_right(starts, ln) - 1
        if i >= 0:
            nodes[i].append(node)
    return Parsed(pre=pre, nodes=nodes)


def _join(texts: list[str]) -> tuple[str, list[int]]:
    """The parser's input, and the line each chunk starts on."""
    parts, starts = [_PRELUDE], []
    lineno = _PRELUDE.count("\n") + 1
    for body in texts:
        starts.append(lineno)
        parts.append(body + "\n")
        lineno += body.count("\n") + 1
    return "".join(parts), starts


def _prototype(text: str) -> str:
    """A function definition's declaration: the body becomes ';' (LuaJIT needs no bodies)."""
    depth = 0
    for m in _SCAN.finditer(text):
        tok = m.group()
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif tok == "{" and depth == 0:
            return text[:m.start()].rstrip() + ";"
    return text


_KEYWORDS = set("""void char short int long float double signed unsigned _Bool _Complex const
volatile restrict struct union enum typedef extern static inline register auto _Noreturn _Alignas
_Atomic _Thread_local sizeof""".split())


def _parses(texts: list[str]) -> c_ast.FileAST | None:
    from pycparser import c_parser
    try:
        return c_parser.CParser().parse(_join(texts)[0], "<unit>")
    except c_parser.ParseError:
        return None


def _parse_error(msg: str, pre: Preprocessed, texts: list[str], starts: list[int],
                 tc: Toolchain | None) -> UserError:
    from pycparser import c_ast
    m = re.match(r"<unit>:(\d+)(?::\d+)?: (.*)$", msg, re.S)
    if m:
        i = max(bisect.bisect_right(starts, int(m.group(1))) - 1, 0)
        what = m.group(2).strip()
    else:
        # no line in the message: the first chunk whose prefix stops parsing is the one
        lo, hi = 0, len(texts)
        while lo < hi:
            mid = (lo + hi) // 2
            if _parses(texts[:mid + 1]) is None:
                hi = mid
            else:
                lo = mid + 1
        i, what = min(lo, len(texts) - 1), msg.split(": ", 1)[-1]
    ch = pre.chunks[i]
    prefix = _parses(texts[:i])
    typedefs = {n.name for n in prefix.ext if isinstance(n, c_ast.Typedef)} if prefix else set()
    tokens = re.findall(r"[A-Za-z_]\w*|\S", ch.text)
    culprit = ""
    for j, w in enumerate(tokens[:-1]):
        # an unknown word in a type's place: followed by a declarator
        if (w[0].isalpha() or w[0] == "_") and w not in _KEYWORDS and w not in typedefs and (
                tokens[j + 1] == "*" or re.match(r"[A-Za-z_]", tokens[j + 1])):
            culprit = w
            break
    if not culprit:   # e.g. a macro call the headers never defined: DEFINE_TYPE(x);
        words = [w for w in tokens if re.match(r"[A-Za-z_]", w) and w not in _KEYWORDS
                 and w not in typedefs]
        culprit = words[0] if words else re.sub(r"^before: ", "", what)
    at = ch.text.find(culprit) if culprit else -1
    file, line = ch.where(ch.text.count("\n", 0, at) if at > 0 else 0)
    construct = " ".join(ch.text.split())
    if len(construct) > 90:
        construct = construct[:87] + "..."
    fix = _FIXES.get(culprit)
    if fix:
        hint = f"define={{\"{fix}\"}} (-D'{fix}' on the command line) usually fixes this"
    elif culprit.startswith("__"):
        hint = f"'{culprit}' is a compiler extension: define={{\"{culprit}=\"}} removes it"
    else:
        hint = (f"'{culprit}' is not a type or macro known at this point: include the header "
                "that defines it first, or define the macro that selects it")
    return UserError(f"cannot parse '{construct}' near '{culprit}' ({what})",
                     where=f"{_short(file, tc)}:{line}", hint=hint)
