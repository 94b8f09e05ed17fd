"""Stage 2 of the C bridge: what a header set declares, as plain data.

From the pycparser AST of every chunk this builds a unit: functions with signatures, variables,
types (structs and unions with their fields, enums, typedefs), enum constants and macros with
their evaluated values, each with its header file:line. Entries marked `api` are the header's
own interface: what the requested headers (and their private bits/ parts) declare, minus the
implementation's reserved names, plus every type those declarations use, transitively. The rest
of the unit stays reachable by name but out of listings. The unit is JSON-able: it is what the
cache stores.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from pycparser import c_ast, c_generator

from engitor.ffi import macros as mx
from engitor.ffi.cparse import Parsed, Request, Toolchain, _prototype, _short

_gen = c_generator.CGenerator()


# LuaJIT's C parser reads 32-bit constants with at most a U suffix; `1UL << 3` stops it.
_LONG_SUFFIX = re.compile(r"(?<![\w.])(0[xX][0-9a-fA-F]+|\d+)([uU]?)[lL]{1,2}([uU]?)(?![\w.])")


def luajit_literals(text: str) -> str:
    """Integer literals without L/LL suffixes. Used only where every value fits 32 bits (the
    model checks the enum's evaluated constants), so nothing changes meaning."""
    return _LONG_SUFFIX.sub(lambda m: m.group(1) + ("U" if m.group(2) or m.group(3) else ""),
                            text)


def reserved(name: str) -> bool:
    """C reserves these for the implementation: never part of a library's API listing."""
    return name.startswith("__") or (len(name) > 1 and name[0] == "_" and name[1].isupper())


def _render(node: c_ast.Node) -> str:
    text = _gen.visit(node)
    return re.sub(r"^(extern )+", "", " ".join(text.split()))


class _Scan(c_ast.NodeVisitor):
    """One walk of a declaration: the type names and tags it mentions, and the structs, unions
    and enums it defines or names (outermost first). Nothing inside a function body counts."""

    def __init__(self, typedefs: set[str]):
        self.typedefs = typedefs
        self.found: set[str] = set()
        self.aggs: list[Any] = []

    def visit_IdentifierType(self, node):
        for n in node.names:
            if n in self.typedefs:
                self.found.add(n)

    def _tagged(self, kind, node):
        if node.name:
            self.found.add(f"{kind} {node.name}")
        self.aggs.append(node)
        self.generic_visit(node)

    def visit_Struct(self, node):
        self._tagged("struct", node)

    def visit_Union(self, node):
        self._tagged("union", node)

    def visit_Enum(self, node):
        self._tagged("enum", node)

    def visit_FuncDef(self, node):
        self.visit(node.decl)


class _Builder:
    def __init__(self, parsed: Parsed, tc: Toolchain | None, include_dirs: tuple[str, ...] = ()):
        self.parsed, self.tc, self.include_dirs = parsed, tc, include_dirs
        self.functions: dict[str, dict] = {}
        self.variables: dict[str, dict] = {}
        self.types: dict[str, dict] = {}
        self.enums: dict[str, dict] = {}
        self.macros: dict[str, dict] = {}
        self.chunks: list[dict] = []
        self.uses: dict[tuple[str, str], set[str]] = {}   # (table, name) -> type keys used
        self.typedef_nodes: dict[str, c_ast.Node] = {}
        self.enum_values: dict[str, mx.Value] = {}

    def short(self, path: str) -> str:
        return _short(path, self.tc, self.include_dirs)

    def where(self, chunk) -> dict:
        return {"file": self.short(chunk.file), "line": chunk.line}

    def add(self, table: str, name: str, entry: dict, chunk, uses: set[str]) -> None:
        store = getattr(self, table)
        if name in store and store[name].get("complete", True) and not entry.get("complete", True):
            return   # a forward declaration never replaces the definition
        entry.update(self.where(chunk))
        entry["api"] = bool(chunk.own and not reserved(name.split()[-1]))
        store[name] = entry
        self.uses[(table, name)] = uses

    # -- declarations -------------------------------------------------------------------------
    def run(self) -> None:
        typedef_names = {n.name for ns in self.parsed.nodes for n in ns
                         if isinstance(n, c_ast.Typedef)}
        for chunk, nodes in zip(self.parsed.pre.chunks, self.parsed.nodes, strict=True):
            tags: list[str] = []
            consts: list[str] = []
            for node in nodes:
                scan = _Scan(typedef_names)
                scan.visit(node)
                self.declare(node, chunk, scan, tags, consts)
            if nodes and all(isinstance(n, c_ast.StaticAssert) for n in nodes):
                continue   # declares nothing, and LuaJIT cannot read it
            text = chunk.text
            if chunk.is_funcdef:
                text = _prototype(text)
            if _LONG_SUFFIX.search(text) and all(
                    -(1 << 31) <= self.enums.get(k, {}).get("value", 1 << 40) < (1 << 32)
                    for k in consts):
                text = luajit_literals(text)
            entry = {"text": text, "file": self.short(chunk.file), "line": chunk.line}
            if tags:
                entry["tags"] = tags
            if consts:
                entry["consts"] = consts
            if chunk.pragma:
                entry["pragma"] = True
            typedefs = [n.name for n in nodes if isinstance(n, c_ast.Typedef)]
            if typedefs:
                entry["typedefs"] = typedefs
            self.chunks.append(entry)

    def declare(self, node, chunk, scan: _Scan, tags, consts) -> None:
        uses = scan.found
        # only definitions (with a body) and declarations of named tags matter
        for agg in (a for a in scan.aggs if a.name or (
                a.values if isinstance(a, c_ast.Enum) else a.decls) is not None):
            key = f"{_kind(agg)} {agg.name}" if agg.name else None
            body = agg.values if isinstance(agg, c_ast.Enum) else agg.decls
            if isinstance(agg, c_ast.Enum):
                self.enum(agg, key, chunk, consts)
            if key:
                if body is not None:
                    tags.append(key)   # LuaJIT refuses to see this definition twice
                self.add("types", key, self.aggregate(agg), chunk, uses)
        if isinstance(node, c_ast.Typedef):
            self.typedef_nodes[node.name] = node.type
            entry = {"kind": "typedef", "to": _type_text(node.type)}
            inner = node.type.type if isinstance(node.type, c_ast.TypeDecl) else None
            if isinstance(inner, c_ast.Struct | c_ast.Union) and inner.decls is not None:
                entry.update(self.aggregate(inner))
                entry["kind"] = "typedef"
                entry["aggregate"] = _kind(inner)
            self.add("types", node.name, entry, chunk, uses)
        elif isinstance(node, c_ast.FuncDef):
            self.function(node.decl, chunk, uses, inline=True)
        elif isinstance(node, c_ast.Decl) and node.name:
            if isinstance(node.type, c_ast.FuncDecl):
                inline = "static" in node.storage or "inline" in node.funcspec
                self.function(node, chunk, uses, inline=inline)
            elif "typedef" not in node.storage:
                self.add("variables", node.name, {"type": _render(node)}, chunk, uses)

    def function(self, decl, chunk, uses, inline: bool) -> None:
        entry: dict[str, Any] = {"sig": _render(decl)}
        if inline:
            entry["inline"] = True
        if self.passes_long_double(decl.type):
            entry["nocall"] = "it passes a long double (or _Float128) by value, which LuaJIT cannot"
        self.add("functions", decl.name, entry, chunk, uses)

    def aggregate(self, agg) -> dict:
        kind = _kind(agg)
        if isinstance(agg, c_ast.Enum):
            return {"kind": "enum", "complete": agg.values is not None}
        if agg.decls is None:
            return {"kind": kind, "complete": False}
        return {"kind": kind, "complete": True, "fields": _fields(agg)}

    def enum(self, agg, key, chunk, consts) -> None:
        if agg.values is None:
            return
        nxt = mx.Int(0)
        for e in agg.values.enumerators:
            value: mx.Value | None = nxt
            if e.value is not None:
                try:
                    value = mx.evaluate(mx.tokenize(_gen.visit(e.value)), self.enum_values,
                                        self.typeinfo)
                except (mx.NotConstant, RecursionError):
                    value = None
            entry = {"enum": key}
            if isinstance(value, mx.Int):
                entry["value"] = value.value
                self.enum_values[e.name] = mx.Int(value.value)
                nxt = mx.Int(value.value + 1)
            consts.append(e.name)
            self.add("enums", e.name, entry, chunk, set())

    # -- types --------------------------------------------------------------------------------
    def resolve(self, node):
        seen = 0
        while (isinstance(node, c_ast.TypeDecl) and isinstance(node.type, c_ast.IdentifierType)
               and len(node.type.names) == 1 and node.type.names[0] in self.typedef_nodes
               and seen < 50):
            node, seen = self.typedef_nodes[node.type.names[0]], seen + 1
        return node

    def typeinfo(self, name: str) -> tuple | None:
        if name not in self.typedef_nodes:
            return None
        node = self.resolve(self.typedef_nodes[name])
        if isinstance(node, c_ast.PtrDecl | c_ast.ArrayDecl):
            return ("ptr",)
        if isinstance(node, c_ast.TypeDecl):
            if isinstance(node.type, c_ast.IdentifierType):
                return mx.base_type(node.type.names)
            if isinstance(node.type, c_ast.Enum):
                return ("int", 32, True)
        return None

    def passes_long_double(self, fdecl: c_ast.FuncDecl) -> bool:
        types = [fdecl.type] + [p.type for p in (fdecl.args.params if fdecl.args else [])
                                if isinstance(p, c_ast.Decl | c_ast.Typename)]
        for t in types:
            t = self.resolve(t)
            if (isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.IdentifierType)
                    and "long" in t.type.names and "double" in t.type.names):
                return True
        return False

    # -- the interface ------------------------------------------------------------------------
    def close_api(self) -> None:
        """Types used by API entries are API too, transitively."""
        todo = []
        for table in ("functions", "variables", "types"):
            todo += [(table, n) for n, e in getattr(self, table).items() if e["api"]]
        seen = set(todo)
        while todo:
            item = todo.pop()
            for used in self.uses.get(item, ()):
                nxt = ("types", used)
                if used in self.types and nxt not in seen:
                    seen.add(nxt)
                    self.types[used]["api"] = True
                    todo.append(nxt)
        for e in self.enums.values():
            if e.get("enum") in self.types and self.types[e["enum"]]["api"]:
                e["api"] = True

    # -- macros -------------------------------------------------------------------------------
    def evaluate_macros(self, req: Request, tc: Toolchain, builtins: dict) -> None:
        pre = self.parsed.pre
        objects = {n: d.body for n, d in builtins.items() if d.params is None}
        functions = {n for n, d in builtins.items() if d.params is not None}
        objects.update({n: d.body for n, d in pre.macros.items() if d.params is None})
        functions |= {n for n, d in pre.macros.items() if d.params is not None}
        pending: list[str] = []
        for name, d in pre.macros.items():
            entry = {"file": self.short(d.file), "line": d.line,
                     "api": bool(d.own and not reserved(name)), "body": d.body}
            self.macros[name] = entry
            if d.params is not None:
                entry.update(kind="function", params=list(d.params))
                continue
            if not d.body:
                entry["kind"] = "flag"
                continue
            try:
                toks = mx.expand(mx.tokenize(d.body), objects, functions, frozenset([name]))
            except mx.NeedsPreprocessor:
                # worth a compiler run only for names a user may ask for
                if reserved(name):
                    entry["kind"] = "expr"
                else:
                    pending.append(name)
                continue
            except (mx.NotConstant, RecursionError):
                entry["kind"] = "expr"
                continue
            self.classify(entry, toks)
        if pending:
            expanded = mx.expand_with_cc(pending, req.source(), req.argv(tc))
            for name in pending:
                entry = self.macros[name]
                try:
                    self.classify(entry, mx.tokenize(expanded[name]))
                except (KeyError, mx.NotConstant):
                    entry["kind"] = "expr"

    def classify(self, entry: dict, toks) -> None:
        inner = toks
        while len(inner) >= 3 and inner[0][1] == "(" and inner[-1][1] == ")":
            inner = inner[1:-1]
        if len(inner) == 1 and inner[0][0] == "id":
            target = inner[0][1]
            if target in self.functions or target in self.variables:
                entry.update(kind="alias", value=target)
                return
            if target in self.types:
                entry.update(kind="type", value=target)
                return
        try:
            v = mx.evaluate(toks, self.enum_values, self.typeinfo)
        except (mx.NotConstant, RecursionError, IndexError):
            entry.update(kind="expr", expansion=" ".join(t for _, t in toks))
            return
        if isinstance(v, mx.Int):
            entry.update(kind="int", value=v.value, bits=v.bits, unsigned=v.unsigned)
        elif isinstance(v, mx.Float):
            entry.update(kind="float", value=v.value if math.isfinite(v.value) else repr(v.value))
        elif isinstance(v, mx.Str):
            entry.update(kind="string", value=v.value.decode("latin-1"))
        elif isinstance(v, mx.Ptr):
            entry.update(kind="cast", ctype=v.ctype, value=v.value)


def _type_text(t) -> str:
    """A type as C text, naming aggregates by tag instead of spelling out their bodies."""
    inner = t
    while isinstance(inner, c_ast.PtrDecl | c_ast.ArrayDecl | c_ast.FuncDecl):
        inner = inner.type
    agg = inner.type if isinstance(inner, c_ast.TypeDecl) else None
    if not isinstance(agg, c_ast.Struct | c_ast.Union | c_ast.Enum):
        return _render(c_ast.Typename(None, [], None, t))
    shallow = copy.copy(agg)
    shallow.name = agg.name or "{...}"
    if isinstance(agg, c_ast.Enum):
        shallow.values = None
    else:
        shallow.decls = None
    inner.type = shallow
    try:
        return _render(c_ast.Typename(None, [], None, t))
    finally:
        inner.type = agg


def _kind(agg) -> str:
    return {c_ast.Struct: "struct", c_ast.Union: "union", c_ast.Enum: "enum"}[type(agg)]


def _fields(agg) -> list[list]:
    """[name, declaration, bit width] per field; members of anonymous members are flattened."""
    out = []
    for d in agg.decls or ():
        if not isinstance(d, c_ast.Decl):   # a #pragma between fields
            continue
        bits = None
        if d.bitsize is not None:
            try:
                bits = mx.evaluate(mx.tokenize(_gen.visit(d.bitsize)), {}, lambda n: None).value
            except mx.NotConstant:
                bits = -1
        t = d.type.type if isinstance(d.type, c_ast.TypeDecl) else None
        if d.name is None and isinstance(t, c_ast.Struct | c_ast.Union) and t.decls:
            out += [[n, decl, b, True] for n, decl, b, *_ in _fields(t)]
            continue
        out.append([d.name, _render(d), bits, False])
    return out


def build(parsed: Parsed, req: Request, tc: Toolchain, builtins: dict) -> dict:
    b = _Builder(parsed, tc, req.include_dirs)
    b.run()
    b.close_api()
    b.evaluate_macros(req, tc, builtins)
    return {
        "headers": list(req.headers),
        "paths": list(parsed.pre.header_paths),
        "chunks": b.chunks,
        "functions": b.functions,
        "variables": b.variables,
        "types": b.types,
        "enums": b.enums,
        "macros": b.macros,
    }
