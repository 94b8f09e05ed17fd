"""Keep/drop rules of runtime packages: the glob language and the defaults."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engitor.packages.rules import DEFAULT_DROP, Rules, compile_glob


@pytest.mark.parametrize("pattern, path, matches", [
    ("/usr/share/doc/**", "/usr/share/doc", True),
    ("/usr/share/doc/**", "/usr/share/doc/python3/copyright", True),
    ("/usr/share/doc/**", "/usr/share/docs/x", False),
    ("/usr/share/doc/**", "/usr/share/doc-base/x", False),
    ("**/*.a", "/usr/lib/x86_64-linux-gnu/libz.a", True),
    ("**/*.a", "/libz.a", True),
    ("**/*.a", "/usr/lib/libz.so.1", False),
    ("**/*.a", "/usr/lib/x.a/y", False),
    ("/usr/lib/*/pkgconfig/**", "/usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc", True),
    ("/usr/lib/*/pkgconfig/**", "/usr/lib/a/b/pkgconfig/zlib.pc", False),
    ("/usr/lib/jvm/*/lib/server/classes_nocoops.jsa",
     "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/classes_nocoops.jsa", True),
    ("/etc/rc?.d/**", "/etc/rc2.d/S01nginx", True),
    ("/etc/rc?.d/**", "/etc/rc.d/x", False),
    ("**/man/man[1-9]/**", "/usr/lib/erlang/man/man3/lists.3.gz", True),
    ("**/man/man[1-9]/**", "/usr/lib/erlang/man/mann/x", False),
    ("**/man/man[!0-9]/**", "/usr/lib/erlang/man/mann/x", True),
    ("/usr/lib/python3.11/**/test/**", "/usr/lib/python3.11/test/x.py", True),
    ("/usr/lib/python3.11/**/test/**", "/usr/lib/python3.11/a/b/test/x.py", True),
    ("/a+b/(c).txt", "/a+b/(c).txt", True),
    ("/a+b/(c).txt", "/aab/(c).txt", False),
])
def test_glob_semantics(pattern, path, matches):
    assert bool(compile_glob(pattern).match(path)) is matches


def test_unclosed_class_is_an_error():
    with pytest.raises(ValueError, match="closing"):
        compile_glob("/usr/[abc")


@given(st.text(alphabet="ab/.-_+()x", min_size=1, max_size=20))
def test_a_pattern_without_wildcards_matches_only_itself(text):
    path = "/" + text
    rx = compile_glob(path)
    assert rx.match(path)
    assert not rx.match(path + "x")
    if "." in path or "+" in path:  # literal, not regular-expression syntax
        assert not rx.match(path.replace(".", "a").replace("+", "b"))


def test_defaults_drop_docs_manuals_locales_headers_static_libraries():
    rules = Rules.make()
    for path in ("/usr/share/doc/libc6/copyright", "/usr/share/man/man1/python3.1.gz",
                 "/usr/share/locale/de/LC_MESSAGES/libc.mo", "/usr/include/zlib.h",
                 "/usr/lib/x86_64-linux-gnu/libc_nonshared.a", "/etc/init.d/nginx",
                 "/lib/systemd/system/nginx.service", "/usr/share/lintian/overrides/x",
                 "/usr/lib/jvm/java-17-openjdk-amd64/man/man1/java.1.gz"):
        assert rules.dropped(path), path
    for path in ("/usr/bin/python3.11", "/usr/lib/python3.11/http/server.py",
                 "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/etc/nginx/mime.types",
                 "/usr/share/zoneinfo/UTC", "/usr/lib/python3.11/locale.py",
                 "/usr/share/nodejs/acorn/dist/acorn.js"):
        assert not rules.dropped(path), path


def test_keep_wins_over_every_drop():
    rules = Rules.make(keep=("/usr/share/doc/keepme/**",), drop=("/opt/**",))
    assert rules.dropped("/usr/share/doc/other/README")
    assert not rules.dropped("/usr/share/doc/keepme/README")
    assert rules.dropped("/opt/x")
    assert rules.may_keep_below("/usr/share/doc")
    assert rules.may_keep_below("/usr/share/doc/keepme")
    assert not rules.may_keep_below("/usr/share/man")


def test_without_defaults_only_the_recipes_drops_apply():
    rules = Rules.make(drop=("/x/**",), defaults=False)
    assert rules.drop == ("/x/**",)
    assert not rules.dropped("/usr/share/doc/a")
    assert Rules.make(drop=("/x/**",)).drop == (*DEFAULT_DROP, "/x/**")
