"""Would constant folding on pycparser's AST do engitor/ffi/macros.py's job? (issue 12)

For each header set, every object-like #define is expanded as model.py does, then evaluated
twice: by macros.evaluate (the module's own expression parser) and by `fold` below, a walk over
pycparser's expression nodes that reuses macros.py's C rules (literals, unary, binary, ?:,
casts). pycparser gets its best case: one unit holding every body our parser accepted, each
typedef declared once (a body it cannot parse would fail the whole unit). Prints how many
constants each finds, how many values agree, and the time of each.

Run: .venv/bin/python bench/compare_macro_fold.py
"""

from __future__ import annotations

import math
import os
import tempfile
import time

from pycparser import c_ast, c_parser

os.environ.setdefault("ENGITOR_HOME", tempfile.mkdtemp(prefix="engitor-bench-fold-"))

# ENGITOR_HOME first: the C bridge cache goes there
from engitor import ffi
from engitor.ffi import cparse, model
from engitor.ffi import macros as mx

HEADER_SETS = (["zlib.h"], ["curl/curl.h"], ["sqlite3.h"], ["libvirt/libvirt.h"],
               ["stdio.h", "stdlib.h", "math.h", "stdint.h", "limits.h", "float.h", "fcntl.h"],
               ["openssl/ssl.h"])


def literal(node: c_ast.Constant) -> mx.Value:
    t, v = node.type, node.value
    if t == "string":
        return mx.Str(mx.unescape(v[v.index('"') + 1:-1]))
    if t == "char":
        raw = mx.unescape(v[v.index("'") + 1:-1])
        if len(raw) == 1:
            return mx.Int(raw[0] - 256 if raw[0] > 127 else raw[0])
        return mx.wrap(int.from_bytes(raw, "big"), 32, False)
    if t in ("float", "double", "long double"):
        digits = v.rstrip("fFlL")
        return mx.Float(float.fromhex(digits) if v[:2].lower() == "0x" else float(digits))
    return mx._int_literal(v)


def cast(node: c_ast.Cast, value: mx.Value, typeinfo: mx.TypeInfo) -> mx.Value:
    t = node.to_type.type
    ptr = isinstance(t, c_ast.PtrDecl)
    while isinstance(t, c_ast.PtrDecl):
        t = t.type
    words = t.type.names if isinstance(t.type, c_ast.IdentifierType) else []
    text = " ".join(t.quals + words) + ("*" if ptr else "")
    if ptr:
        info: tuple | None = ("ptr",)
    elif len(words) == 1 and words[0] not in mx._TYPE_WORDS:
        info = typeinfo(words[0])
    else:
        info = mx.base_type(words)
    return mx.cast(text, info, value)


def fold(node: c_ast.Node, consts: dict[str, mx.Value], typeinfo: mx.TypeInfo) -> mx.Value:
    def go(n: c_ast.Node) -> mx.Value:
        return fold(n, consts, typeinfo)
    if isinstance(node, c_ast.Constant):
        return literal(node)
    if isinstance(node, c_ast.ID):
        if node.name in consts:
            return consts[node.name]
        raise mx.NotConstant(node.name)
    if isinstance(node, c_ast.UnaryOp) and node.op in ("-", "+", "~", "!"):
        return mx.unary(node.op, go(node.expr))
    if isinstance(node, c_ast.BinaryOp):
        return mx.binary(node.op, go(node.left), go(node.right))
    if isinstance(node, c_ast.TernaryOp):
        return mx._ternary(go(node.cond), go(node.iftrue), go(node.iffalse))
    if isinstance(node, c_ast.Cast):
        return cast(node, go(node.expr), typeinfo)
    raise mx.NotConstant(type(node).__name__)


def same(a: mx.Value | None, b: mx.Value | None) -> bool:
    if isinstance(a, mx.Float) and isinstance(b, mx.Float):
        return a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))
    return a == b


def compare(headers: list[str]) -> None:
    req, tc = ffi.request(headers), cparse.toolchain()
    pre = cparse.preprocess(req, tc)
    unit = model.build(cparse.parse(pre, tc), req, tc, pre.builtins)
    defs = {**pre.builtins, **pre.macros}
    objects = {n: d.body for n, d in defs.items() if d.params is None}
    functions = {n for n, d in defs.items() if d.params is not None}
    typedefs = [n for n, t in unit["types"].items() if t["kind"] == "typedef"]

    def typeinfo(name: str) -> tuple | None:
        return ("int", 32, False) if name in typedefs else None
    consts: dict[str, mx.Value] = {n: mx.Int(e["value"]) for n, e in unit["enums"].items()
                                   if "value" in e}
    work = []
    for name, d in pre.macros.items():
        if d.params is None and d.body:
            try:
                work.append(mx.expand(mx.tokenize(d.body), objects, functions,
                                      frozenset([name])))
            except (mx.NeedsPreprocessor, mx.NotConstant, RecursionError):
                pass

    t0 = time.perf_counter()
    ours: list[mx.Value | None] = []
    for toks in work:
        try:
            ours.append(mx.evaluate(toks, consts, typeinfo))
        except (mx.NotConstant, RecursionError, IndexError):
            ours.append(None)
    t1 = time.perf_counter()
    accepted = [w for w, v in zip(work, ours, strict=True) if v is not None]
    text = "".join(f"typedef int {t};" for t in typedefs) + "".join(
        f"\nint __v{i} = ({' '.join(t for _, t in w)});" for i, w in enumerate(accepted))
    inits = iter(d.init for d in c_parser.CParser().parse(text).ext[len(typedefs):])
    theirs: list[mx.Value | None] = []
    for v in ours:
        if v is None:
            theirs.append(None)
            continue
        try:
            theirs.append(fold(next(inits), consts, typeinfo))
        except mx.NotConstant:
            theirs.append(None)
    t2 = time.perf_counter()
    agree = sum(same(a, b) for a, b in zip(ours, theirs, strict=True))
    print(f"| {' '.join(headers)} | {len(work)} | {sum(v is not None for v in ours)} | "
          f"{sum(v is not None for v in theirs)} | {agree} | {1000 * (t1 - t0):.1f} ms | "
          f"{1000 * (t2 - t1):.1f} ms |")


def main() -> None:
    print("| headers | object-like macros | constants (ours) | constants (AST fold) | "
          "values agreeing | macros.evaluate | pycparser parse + fold |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for headers in HEADER_SETS:
        compare(headers)


if __name__ == "__main__":
    main()
