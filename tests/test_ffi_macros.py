"""Macro constants: expansion and C-accurate evaluation, checked against the real C compiler."""

from __future__ import annotations

import random
import subprocess

import pytest

from engitor.ffi import macros as mx

TYPES = {"uLong": ("int", 64, True), "u8": ("int", 8, True), "fp": ("ptr",), "dbl": ("float",)}


def ev(text: str, consts=None):
    return mx.evaluate(mx.tokenize(text), consts or {}, TYPES.get)


@pytest.mark.parametrize("text, value, bits, unsigned", [
    ("0xFFFFFFFF", 4294967295, 32, True),
    ("2147483648", 2147483648, 64, False),       # decimal literals never become unsigned int
    ("-1U", 4294967295, 32, True),
    ("1 << 31", -2147483648, 32, False),
    ("~0UL", 2**64 - 1, 64, True),
    ("(uLong)-1", 2**64 - 1, 64, True),
    ("(u8)300", 44, 8, True),
    ("-7 / 2", -3, 32, False),                   # C truncates toward zero
    ("-7 % 2", -1, 32, False),
    ("1 ? 2 : 3U", 2, 32, True),                 # the usual arithmetic conversions
    ("-1 < 0U", 0, 32, False),                   # ... which make -1 huge here
    ("'A' + '\\n'", 75, 32, False),
    ("'\\xff'", -1, 32, False),                  # char is signed on x86-64
    ("(1 + 2) * 3 - 4 / 2", 7, 32, False),
    ("0x7fffffffffffffffLL", 2**63 - 1, 64, False),
])
def test_integer_rules(text, value, bits, unsigned):
    assert ev(text) == mx.Int(value, bits, unsigned)


def test_strings_floats_and_pointers():
    assert ev('"a\\tb" "c\\101"') == mx.Str(b"a\tbcA")
    assert ev("3.5f * 2") == mx.Float(7.0)
    assert ev("(dbl)1 / 4") == mx.Float(0.25)
    assert ev("__builtin_huge_val ()").value == float("inf")
    assert ev("((fp)-1)") == mx.Ptr("fp", -1)


def test_names_that_are_not_constants():
    with pytest.raises(mx.NotConstant):
        ev("errno + 1")
    with pytest.raises(mx.NotConstant):
        ev("sizeof(int)")
    with pytest.raises(mx.NotConstant):
        ev("1 / 0")
    assert ev("A | B", {"A": mx.Int(1), "B": mx.Int(4)}) == mx.Int(5)


def test_expansion_follows_the_preprocessor():
    objects = {"A": "(B | 2)", "B": "1", "SELF": "SELF + 1", "F_USER": "F(3)"}
    toks = mx.expand(mx.tokenize("A"), objects, {"F"})
    assert ev(" ".join(t for _, t in toks)) == mx.Int(3)
    # a macro never expands inside itself
    assert [t for _, t in mx.expand(mx.tokenize("SELF"), objects, set())] == ["SELF", "+", "1"]
    with pytest.raises(mx.NeedsPreprocessor):
        mx.expand(mx.tokenize("F_USER"), objects, {"F"})


def random_expr(rng: random.Random, depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.3:
        lit = rng.choice(["0", "1", "7", "255", "0x7fffffff", "0xffffffff", "2147483648",
                          "4294967295U", "1L", "-1", "3UL", "'a'", "100000LL"])
        return lit
    op = rng.choice(["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "==", "&&", "||",
                     "?:", "neg", "~", "!", "cast"])
    a, b = random_expr(rng, depth + 1), random_expr(rng, depth + 1)
    if op in ("/", "%"):
        return f"(({a}) {op} (({b}) | 1))"
    if op in ("<<", ">>"):
        return f"(({a}) {op} (({b}) & 15))"
    if op == "?:":
        return f"(({a}) ? ({b}) : ({random_expr(rng, depth + 1)}))"
    if op in ("neg", "~", "!"):
        return f"({ {'neg': '-', '~': '~', '!': '!'}[op]}({a}))"
    if op == "cast":
        return "((" + rng.choice(["unsigned char", "short", "unsigned", "long",
                                   "unsigned long long"]) + f")({a}))"
    return f"(({a}) {op} ({b}))"


def test_random_constant_expressions_agree_with_the_c_compiler(tmp_path):
    rng = random.Random(20240605)
    exprs = [random_expr(rng) for _ in range(400)]
    # cc evaluates each as a constant and tells its type by sizeof and signedness
    lines = ["#include <stdio.h>", "int main(void) {"]
    for e in exprs:
        lines.append(f"printf(\"%d %d %lld %llu\\n\", (int)sizeof({e}), ({e}) < 0 ? 1 : 0, "
                     f"(long long)({e}), (unsigned long long)({e}));")
    lines.append("return 0; }")
    (tmp_path / "e.c").write_text("\n".join(lines))
    subprocess.run(["cc", "-w", "-o", str(tmp_path / "e"), str(tmp_path / "e.c")], check=True)
    out = subprocess.run([str(tmp_path / "e")], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    for e, line in zip(exprs, out, strict=True):
        size, negative, signed_value, _ = line.split()
        got = ev(e)
        assert isinstance(got, mx.Int), e
        assert max(got.bits, 8) // 8 == int(size), e
        assert got.value == int(signed_value) if negative == "1" or not got.unsigned else \
            got.value == int(signed_value) % (1 << got.bits), e
