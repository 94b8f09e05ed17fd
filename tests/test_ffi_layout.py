"""Layout probes: for every struct and union of the tested namespaces, LuaJIT's sizeof, alignof
and the offsetof of each field agree with the C compiler (a generated C probe, compiled and run).

The probe is compiled with the compiler's own view of the headers (no engitor defines), so a
layout that differs because of anything engitor did to the text would show here.
"""

from __future__ import annotations

import subprocess

import pytest

from engitor.ffi import request, unit

NAMESPACES = {
    "zlib": (["zlib.h"], "z"),
    "libc": (["stdio.h", "stdlib.h", "string.h", "unistd.h", "errno.h", "sys/stat.h", "time.h",
              "sys/epoll.h", "sys/socket.h", "netinet/in.h", "signal.h", "dirent.h", "pthread.h",
              "sys/utsname.h", "poll.h", "sys/time.h", "sys/resource.h", "math.h"], None),
    "sqlite3": (["sqlite3.h"], "sqlite3"),
    "expat": (["expat.h"], "expat"),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGITOR_HOME", str(tmp_path_factory.mktemp("home")))
        yield


def aggregates(u: dict) -> list[tuple[str, list[str]]]:
    """(C type name, probe-able field names) of every complete struct and union of the unit."""
    out = []
    for name, t in sorted(u["types"].items()):
        is_tagged = t["kind"] in ("struct", "union")
        if not (is_tagged or t.get("aggregate")) or not t.get("complete") or not t.get("fields"):
            continue
        # bit-fields have no offsetof in C; members of anonymous members are probed by name
        fields = [f[0] for f in t["fields"] if f[0] and f[2] is None]
        out.append((name, fields))
    return out


def c_probe(headers: list[str], aggs, tmp_path) -> dict[str, int]:
    lines = [f"#include <{h}>" for h in headers] + [
        "#include <stdio.h>", "#include <stddef.h>", "int main(void) {"]
    for name, fields in aggs:
        lines.append(f'printf("%s\\t%zu\\n", "{name}", sizeof({name}));')
        lines.append(f'printf("%s align\\t%zu\\n", "{name}", _Alignof({name}));')
        for f in fields:
            lines.append(f'printf("%s.%s\\t%zu\\n", "{name}", "{f}", offsetof({name}, {f}));')
    lines.append("return 0; }")
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "probe"
    subprocess.run(["cc", "-o", str(exe), str(src)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, value = line.split("\t")
        values[key] = int(value)
    return values


def lua_probe(headers: list[str], lib, aggs) -> dict[str, int]:
    from lupa import luajit21

    from engitor.lua.api import c as c_api

    lua = luajit21.LuaRuntime(register_eval=False, register_builtins=False,
                              unpack_returned_tuples=True)
    env = lua.table()
    c_api.install(lua, env)
    probe = lua.eval("""function(c, headers, lib, names, fields)
        local ffi = require "ffi"
        local ns = c.include(headers, {lib = lib})
        local out = {}
        for i, name in ipairs(names) do
          out[name] = ffi.sizeof(name)
          out[name .. " align"] = ffi.alignof(name)
          for _, f in ipairs(fields[i]) do out[name .. "." .. f] = ffi.offsetof(name, f) end
        end
        return out
    end""")
    result = probe(env["c"], lua.table_from(headers), lib, lua.table_from([a[0] for a in aggs]),
                   lua.table_from([lua.table_from(a[1]) for a in aggs]))
    return dict(result.items())


@pytest.mark.parametrize("ns", sorted(NAMESPACES))
def test_struct_layouts_agree_with_the_c_compiler(ns, home, tmp_path):
    headers, lib = NAMESPACES[ns]
    u = unit(request(headers))
    aggs = aggregates(u)
    assert len(aggs) >= {"zlib": 3, "libc": 40, "sqlite3": 10, "expat": 5}[ns]
    want = c_probe(headers, aggs, tmp_path)
    got = lua_probe(headers, lib, aggs)
    assert len(want) > len(aggs) * 2
    diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not diff, f"LuaJIT (left) and cc (right) disagree: {diff}"


def test_packed_struct_keeps_its_layout(home):
    # glibc declares struct epoll_event packed on x86-64: without the attribute it would be 16
    u = unit(request(["sys/epoll.h"]))
    got = lua_probe(["sys/epoll.h"], None, [("struct epoll_event", ["events", "data"])])
    assert got["struct epoll_event"] == 12 and got["struct epoll_event.data"] == 4
    assert "struct epoll_event" in u["types"]


def test_pragma_pack_reaches_luajit_in_order(home, tmp_path):
    h = tmp_path / "pk.h"
    h.write_text("#pragma pack(push, 1)\n"
                 "struct packed_pair { char c; int i; };\n"
                 "#pragma pack(pop)\n"
                 "struct normal_pair { char c; int i; };\n"
                 "struct mixed {\n  char a;\n#pragma pack(push, 2)\n  int b;\n#pragma pack(pop)\n};\n"
                 "#pragma pack(2)\n"
                 "struct two { char c; long l; };\n"
                 "#pragma pack()\n"
                 "struct after { char c; long l; };\n")
    names = ["struct packed_pair", "struct normal_pair", "struct mixed", "struct two",
             "struct after"]
    aggs = [(n, list(fields)) for n, fields in
            zip(names, [["c", "i"], ["c", "i"], ["a", "b"], ["c", "l"], ["c", "l"]], strict=True)]
    src = tmp_path / "probe.c"
    src.write_text(f'#include <stdio.h>\n#include <stddef.h>\n#include "{h}"\nint main(void) {{\n'
                   + "".join(f'printf("%s\\t%zu\\n", "{n}", sizeof({n}));\n'
                             + "".join(f'printf("%s.%s\\t%zu\\n", "{n}", "{f}", offsetof({n}, {f}));\n'
                                       for f in fs) for n, fs in aggs)
                   + "return 0; }\n")
    subprocess.run(["cc", "-o", str(tmp_path / "probe"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True)
    want = {k: int(v) for k, v in (line.split("\t") for line in out.stdout.splitlines())}
    got = lua_probe([str(h)], None, aggs)
    assert want["struct packed_pair"] == 5 and want["struct after"] == 16
    assert {k: got[k] for k in want} == want
