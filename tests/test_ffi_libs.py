"""The C bridge against real libraries, from a real script scope (engitor.lua.runtime).

zlib (crc32, compress/uncompress agreeing with Python's zlib), libc (getpid, qsort with a Lua
comparator, struct stat and stat(), errno, out-parameters, strings), sqlite3 (an in-memory
database end to end) and expat (XML parsed with Lua callbacks, compared with Python's expat).
"""

from __future__ import annotations

import os
import sqlite3
import xml.parsers.expat
import zlib

import pytest

from engitor.errors import UserError
from engitor.lua.api import as_bytes


@pytest.fixture()
def lua(rt):
    env = rt.script_env()

    def run(code: str, *args):
        fn = rt.compile(code, env, "test.lua")
        return rt.call(fn, *args)
    return run


# -- zlib -----------------------------------------------------------------------------------

ZLIB = 'local z = c.include("zlib.h", {lib = "z"})\n'


@pytest.mark.parametrize("data", [b"", b"hello world", bytes(range(256)) * 3, b"\0\0x\0"])
def test_zlib_crc32_and_adler32_agree_with_python(lua, data):
    crc, adler = lua(ZLIB + "local s = ... return tonumber(z.crc32(0, s, #s)), "
                     "tonumber(z.adler32(1, s, #s))", data)
    assert crc == zlib.crc32(data)
    assert adler == zlib.adler32(data)


def test_zlib_compress_round_trips_with_python(lua):
    data = b"engitor " * 500 + bytes(range(256))
    packed, rc = lua(ZLIB + """
        local src = ...
        local bound = z.compressBound(#src)
        local dest = z.new("Bytef[?]", bound)
        local len = z.new("uLongf[1]", bound)          -- an out-parameter
        local rc = z.compress2(dest, len, src, #src, z.Z_BEST_COMPRESSION)
        return z.string(dest, len[0]), rc
    """, data)
    assert rc == 0
    packed = as_bytes(packed)   # Lua strings arrive as str (UTF-8, surrogateescape)
    assert zlib.decompress(packed) == data
    assert len(packed) < len(data) // 5

    theirs = zlib.compress(data, 6)
    back, rc = lua(ZLIB + """
        local packed, size = ...
        local out = z.new("Bytef[?]", size)
        local len = z.new("uLongf[1]", size)
        local rc = z.uncompress(out, len, packed, #packed)
        return z.string(out, len[0]), rc
    """, theirs, len(data))
    assert rc == 0 and as_bytes(back) == data


def test_zlib_streaming_through_the_function_behind_a_macro(lua):
    data = os.urandom(3000) + b"a" * 5000
    out = lua(ZLIB + """
        local src = ...
        local strm = z.new("z_stream")
        -- deflateInit is a macro; what it expands to is callable
        assert(z.deflateInit_(strm, z.Z_DEFAULT_COMPRESSION, z.ZLIB_VERSION,
                              z.sizeof("z_stream")) == z.Z_OK)
        local buf = z.new("unsigned char[?]", 65536)
        strm.next_in = z.cast("Bytef *", src)
        strm.avail_in = #src
        strm.next_out, strm.avail_out = buf, 65536
        assert(z.deflate(strm, z.Z_FINISH) == z.Z_STREAM_END)
        local n = tonumber(strm.total_out)
        z.deflateEnd(strm)
        return z.string(buf, n)
    """, data)
    assert zlib.decompress(as_bytes(out[0])) == data


def test_zlib_constants_and_types(lua):
    ok, ver, null, size, deflated = lua(ZLIB + "return z.Z_OK, z.ZLIB_VERSION, z.Z_NULL, "
                                        "z.sizeof('z_stream'), z.Z_DEFLATED")
    assert (ok, null, deflated) == (0, 0, 8)
    assert ver == zlib.ZLIB_VERSION
    assert size == 112   # x86-64: 14 fields, pointers and longs


def test_calling_a_function_like_macro_is_a_clear_error(lua):
    with pytest.raises(UserError, match=r"deflateInit is a function-like macro.*deflateInit_"):
        lua(ZLIB + "local strm = z.new('z_stream') z.deflateInit(strm, 1)")


def test_wrong_argument_type_is_a_lua_error_from_the_ffi(lua):
    with pytest.raises(UserError, match=r"bad argument #2 .*cannot convert 'table' to 'const unsigned char \*'"):
        lua(ZLIB + "return z.crc32(0, {}, 3)")


def test_unknown_name_suggests_the_right_one(lua):
    with pytest.raises(UserError, match=r"zlib.h declares no 'crc23'.*did you mean 'crc32'"):
        lua(ZLIB + "return z.crc23")


def test_library_not_found_says_what_was_tried(lua):
    with pytest.raises(UserError, match=r"library 'nosuchlib' not found \(tried 'nosuchlib' "
                                        r"through the dynamic loader.*hint"):
        lua('c.include("zlib.h", {lib = "nosuchlib"})')


def test_a_library_by_path_and_by_versioned_name(lua):
    import glob
    path = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libz.so.1*"))[0]
    a, b = lua('local s = "abc" local p = ... '
               'local z1 = c.include("zlib.h", {lib = p}) '
               'local z2 = c.include("zlib.h", {lib = "libz.so.1"}) '
               'return tonumber(z1.crc32(0, s, 3)), tonumber(z2.crc32(0, s, 3))', path)
    assert a == b == zlib.crc32(b"abc")


def test_unknown_option_is_rejected_with_a_hint(lua):
    with pytest.raises(UserError, match=r"unknown c.include option 'lbi'.*did you mean 'lib'"):
        lua('c.include("zlib.h", {lbi = "z"})')


# -- libc -----------------------------------------------------------------------------------

LIBC = 'local C = c.include{"stdio.h", "stdlib.h", "string.h", "unistd.h", "sys/stat.h", "errno.h"}\n'


def test_libc_getpid(lua):
    assert lua(LIBC + "return C.getpid()")[0] == os.getpid()


def test_libc_qsort_with_a_lua_comparator(lua):
    values = [5, -3, 99, 0, 42, 7, -100, 13]
    got = lua(LIBC + """
        local values = ...
        local n = #values
        local arr = C.new("int[?]", n)
        for i = 1, n do arr[i - 1] = values[i] end
        local calls = 0
        local cmp = C.cast("int (*)(const void *, const void *)", function(a, b)
          calls = calls + 1
          local x, y = C.cast("const int *", a)[0], C.cast("const int *", b)[0]
          return x < y and -1 or (x > y and 1 or 0)
        end)
        C.qsort(arr, n, C.sizeof("int"), cmp)
        cmp:free()
        local out = {}
        for i = 0, n - 1 do out[#out + 1] = arr[i] end
        assert(calls > 0)
        return out
    """, rt_table(values))
    assert list(got[0].values()) == sorted(values)


def rt_table(values):
    """Pass a list through the runtime's converter (the sandbox hands Lua plain tables)."""
    return _Listed(values)


class _Listed(list):
    pass


@pytest.fixture(autouse=True)
def _convert_lists(monkeypatch, rt):
    # the runtime's call() passes arguments as they are; turn test lists into Lua tables
    from engitor.lua.api import to_lua
    original = rt.call

    def call(fn, *args, **kw):
        return original(fn, *[to_lua(rt.lua, list(a)) if isinstance(a, _Listed) else a
                              for a in args], **kw)
    monkeypatch.setattr(rt, "call", call)


def test_libc_struct_stat_and_stat_on_a_file(lua, tmp_path):
    f = tmp_path / "file.bin"
    f.write_bytes(b"x" * 12345)
    size, mode, ino, nlink, sz = lua(LIBC + """
        local st = C.new("struct stat")
        assert(C.stat(..., st) == 0)
        return tonumber(st.st_size), st.st_mode, tonumber(st.st_ino), tonumber(st.st_nlink),
               C.sizeof("struct stat")
    """, str(f))
    real = os.stat(f)
    assert (size, mode, ino, nlink) == (real.st_size, real.st_mode, real.st_ino, real.st_nlink)
    assert sz == 144


def test_libc_errno_after_a_failed_call(lua):
    rc, err, enoent = lua(LIBC + """
        local st = C.new("struct stat")
        local rc = C.stat("/nonexistent/engitor", st)
        return rc, C.errno(), C.ENOENT
    """)
    assert (rc, err, enoent) == (-1, 2, 2)


def test_libc_strings_and_out_parameters(lua):
    n, rest, length, formatted = lua(LIBC + """
        local endp = C.new("char *[1]")
        local n = C.strtol("12345xyz", endp, 10)
        local buf = C.new("char[64]")
        C.snprintf(buf, 64, "%d-%s-%.1f", C.new("int", 42), "ok", 2.5)
        return tonumber(n), C.string(endp[0]), tonumber(C.strlen("hello")), C.string(buf)
    """)
    assert (n, rest, length, formatted) == (12345, "xyz", 5, "42-ok-2.5")


def test_libc_constants_and_aliases(lua):
    eof, seek_end, bufsiz, stdout_ok = lua(LIBC + "return C.EOF, C.SEEK_END, C.BUFSIZ, "
                                           "C.stdout ~= nil")
    assert (eof, seek_end, bufsiz, stdout_ok) == (-1, 2, 8192, True)


def test_many_includes_in_one_state_do_not_redefine(lua):
    # zlib.h, stdio.h and sys/stat.h share glibc's types: each include skips what is in
    n = lua("""
        local a = c.include("zlib.h", {lib = "z"})
        local b = c.include{"stdio.h", "sys/types.h"}
        local s = c.include("sys/stat.h")
        local again = c.include("zlib.h", {lib = "z"})
        local e = c.include("sys/epoll.h")
        return a.sizeof("struct stat") + s.sizeof("off_t") + again.Z_OK + e.sizeof("struct epoll_event")
    """)
    assert n[0] == 144 + 8 + 0 + 12   # epoll_event stays packed: attributes reach LuaJIT


def test_static_inline_functions_are_reported(lua):
    with pytest.raises(UserError, match=r"__bswap_16 is a static inline function"):
        lua('local C = c.include("stdlib.h") return C.__bswap_16(1)')


def test_cdef_escape_hatch(lua):
    assert lua('c.cdef("int abs(int);") return c.C.abs(-7)')[0] == 7
    with pytest.raises(UserError, match=r"c.cdef: .*"):
        lua('c.cdef("int int int;")')


# -- sqlite3 --------------------------------------------------------------------------------

def test_sqlite3_in_memory_database(lua):
    rows = [("ada", 1.5), ("grace", 3.0), ("linus", 4.5), ("ünïcode", -2.25)]
    got, version, count = lua("""
        local sq = c.include("sqlite3.h", {lib = "sqlite3"})
        local db = sq.new("sqlite3 *[1]")
        assert(sq.sqlite3_open(":memory:", db) == sq.SQLITE_OK)
        db = db[0]
        local function check(rc, want)
          if rc ~= (want or sq.SQLITE_OK) then error(sq.string(sq.sqlite3_errmsg(db))) end
        end
        local err = sq.new("char *[1]")
        check(sq.sqlite3_exec(db, "create table t(id integer primary key, name text, score real)",
                              nil, nil, err))
        local stmt = sq.new("sqlite3_stmt *[1]")
        check(sq.sqlite3_prepare_v2(db, "insert into t(name, score) values (?, ?)", -1, stmt, nil))
        for _, row in ipairs(...) do
          check(sq.sqlite3_bind_text(stmt[0], 1, row[1], #row[1], sq.SQLITE_TRANSIENT))
          check(sq.sqlite3_bind_double(stmt[0], 2, row[2]))
          check(sq.sqlite3_step(stmt[0]), sq.SQLITE_DONE)
          check(sq.sqlite3_reset(stmt[0]))
        end
        check(sq.sqlite3_finalize(stmt[0]))
        check(sq.sqlite3_prepare_v2(db, "select id, name, score from t order by id", -1, stmt, nil))
        local out = {}
        while sq.sqlite3_step(stmt[0]) == sq.SQLITE_ROW do
          out[#out + 1] = {sq.sqlite3_column_int(stmt[0], 0),
                           sq.string(sq.sqlite3_column_text(stmt[0], 1)),
                           sq.sqlite3_column_double(stmt[0], 2)}
        end
        check(sq.sqlite3_finalize(stmt[0]))
        -- sqlite3_exec with a Lua callback
        local count = 0
        local cb = sq.cast("int (*)(void *, int, char **, char **)", function(_, n, values)
          count = count + tonumber(sq.string(values[0]))
          return 0
        end)
        check(sq.sqlite3_exec(db, "select count(*) from t", cb, nil, err))
        cb:free()
        check(sq.sqlite3_close(db))
        return out, sq.string(sq.sqlite3_libversion()), count
    """, _Listed([_Listed(r) for r in rows]))
    got = [tuple(r.values()) for r in got.values()]
    assert got == [(i + 1, name, score) for i, (name, score) in enumerate(rows)]
    assert version == sqlite3.sqlite_version
    assert count == len(rows)


# -- expat ----------------------------------------------------------------------------------

XML = """<?xml version="1.0"?>
<catalog kind="books"><book id="1" lang="en">C &amp; Lua</book><book id="2"/>
<note>ünïcode text</note></catalog>"""


def python_events(text: str) -> list[tuple]:
    events: list[tuple] = []
    p = xml.parsers.expat.ParserCreate()
    p.StartElementHandler = lambda name, attrs: events.append(
        ("start", name, tuple(sorted(attrs.items()))))
    p.EndElementHandler = lambda name: events.append(("end", name))
    p.CharacterDataHandler = lambda data: events.append(("text", data))
    p.Parse(text, True)
    return events


def test_expat_parses_with_lua_callbacks_like_python(lua):
    got = lua("""
        local x = c.include("expat.h", {lib = "expat"})
        local events = {}
        local p = x.XML_ParserCreate(nil)
        local start = x.cast("XML_StartElementHandler", function(_, name, atts)
          local a, i = {}, 0
          while atts[i] ~= nil do a[#a + 1] = {x.string(atts[i]), x.string(atts[i + 1])}; i = i + 2 end
          table.sort(a, function(l, r) return l[1] < r[1] end)
          events[#events + 1] = {"start", x.string(name), a}
        end)
        local stop = x.cast("XML_EndElementHandler", function(_, name)
          events[#events + 1] = {"end", x.string(name)}
        end)
        local text = x.cast("XML_CharacterDataHandler", function(_, s, len)
          events[#events + 1] = {"text", x.string(s, len)}
        end)
        x.XML_SetElementHandler(p, start, stop)
        x.XML_SetCharacterDataHandler(p, text)
        local doc = ...
        if x.XML_Parse(p, doc, #doc, 1) ~= x.XML_STATUS_OK then
          error(x.string(x.XML_ErrorString(x.XML_GetErrorCode(p))))
        end
        x.XML_ParserFree(p)
        start:free() stop:free() text:free()
        return events
    """, XML)[0]
    events = []
    for e in got.values():
        e = list(e.values())
        if e[0] == "start":
            e[2] = tuple(tuple(kv.values()) for kv in e[2].values())
        events.append(tuple(e))
    assert events == python_events(XML)


def test_expat_enum_constants_and_version(lua):
    ok, err, major = lua("""
        local x = c.include("expat.h", {lib = "expat"})
        local v = x.XML_ExpatVersionInfo()
        return x.XML_STATUS_OK, x.XML_ERROR_SYNTAX, v.major
    """)
    assert (ok, err) == (1, 2)
    assert major == xml.parsers.expat.version_info[0]


def test_declarations_luajit_cannot_read_are_skipped_and_explained(lua, tmp_path):
    h = tmp_path / "odd.h"
    h.write_text("typedef short before_t;\n"
                 "int before(void);\n"
                 "_Static_assert(sizeof(int) == 4, \"int is 4 bytes\");\n"
                 "extern _Atomic int counter;\n"
                 "struct odd { int a; };\n"
                 "static inline int twice(int x) { return 2 * x; }\n"
                 "int after(int);\n")
    size, before, after = lua("""
        local ns = c.include(...)
        return ns.sizeof("struct odd"), ns.sizeof("before_t"),
               select(2, pcall(function() return ns.after end))
    """, str(h))
    # LuaJIT rolls back a failed cdef whole: what came before the refused line is declared again
    assert (size, before) == (4, 2) and "does not export it" in after
    assert "odd.h:4" in lua("return c.info(c.include(...)).unavailable[1]", str(h))[0]
    with pytest.raises(UserError, match=r"counter could not be declared to LuaJIT: .*_Atomic.*"
                                        r"odd.h:4"):
        lua("return c.include(...).counter", str(h))
    with pytest.raises(UserError, match=r"twice is a static inline function"):
        lua("return c.include(...).twice(2)", str(h))


def test_info_describes_a_namespace_for_help_and_completion(lua):
    funcs, size, const, macro = lua("""
        local info = c.info(c.include("zlib.h", {lib = "z"}))
        return info.functions.crc32, info.types.z_stream, info.constants.Z_BEST_SPEED,
               info.macros.deflateInit
    """)
    assert funcs.startswith("uLong crc32(uLong crc, const Bytef *buf, uInt len)")
    assert (size, const) == (112, 1)
    assert macro.startswith("deflateInit(strm, level) deflateInit_(")


def test_describe_gives_the_shell_names_for_completion(rt):
    from engitor.lua.api import c as c_api
    env = rt.script_env()
    ns = rt.eval('return c.include("sqlite3.h", {lib = "sqlite3"})', env, "shell")[0]
    names = c_api.describe(rt.lua, ns)
    assert names["sqlite3_open"].startswith("int sqlite3_open(const char *filename, sqlite3 **ppDb)")
    assert names["SQLITE_OK"] == "0" and names["sqlite3_stmt"] == "type"
    assert names["SQLITE_TRANSIENT"] == "(sqlite3_destructor_type)-1"
    assert c_api.describe(rt.lua, rt.lua.table()) is None


def test_long_suffixed_constants_reach_luajit_when_they_fit(lua, tmp_path):
    h = tmp_path / "flags.h"
    h.write_text("enum flags { FLAG_A = 1UL << 3, FLAG_B = 0x10ULL };\n"
                 "enum wide { BIG = 1ULL << 40 };\n"
                 "struct w { char a[2UL]; };\n")
    a, b, size, enum_a, big = lua("""
        local ns = c.include(...)
        local ffi_a = ns.C.FLAG_A            -- declared to LuaJIT itself
        return ns.FLAG_A, ns.FLAG_B, ns.sizeof("struct w"), ffi_a, ns.BIG
    """, str(h))
    assert (a, b, size, enum_a) == (8, 16, 2, 8)
    assert big == 2**40   # LuaJIT cannot hold it; the evaluated value still answers


def test_include_dirs_defines_and_library_dirs_from_lua(lua, tmp_path):
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "cfg.h").write_text("#ifdef WIDE\ntypedef long num;\n#else\ntypedef int num;\n#endif\n"
                               "#define LEVEL (BASE + 1)\n")
    sizes = lua("""
        local d = ...
        local plain = c.include("cfg.h", {incdir = d, define = {BASE = 1}})
        local wide = c.include{"cfg.h", incdir = {d}, define = {"WIDE", "BASE=41"}}
        return plain.sizeof(plain.num), plain.LEVEL, wide.LEVEL,
               select(2, pcall(function() return wide.num end))
    """, str(inc))
    assert sizes[:3] == (4, 2, 42)
    # the second `num` cannot join the first in one state's C namespace: said, not hidden
    assert "already has a different typedef num (cfg.h:4: typedef int num;)" in sizes[3]
    found = lua('return tostring(c.load("z", {"/nonexistent"}) ~= nil)')
    assert found == ("true",)
    # a directory the user names comes first: a copy of libz there is the one loaded
    import glob
    import shutil
    own = tmp_path / "lib"
    own.mkdir()
    shutil.copy(sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libz.so.1.*"))[0], own / "libz.so")
    text = lua('return c.info(c.include("zlib.h", {lib = "z", libdir = ...})).libraries[1]',
               str(own))
    assert text == ("libz.so",)


def test_no_python_object_reaches_lua(rt):
    """Everything c and sh hand to Lua is a Lua value (lupa would unwrap a Python object)."""
    from lupa import luajit21
    env = rt.script_env()
    values = rt.eval("""
        local out = {}
        local function walk(t, depth)
          for k, v in pairs(t) do
            out[#out + 1] = v
            if type(v) == "table" and depth < 2 then walk(v, depth + 1) end
          end
        end
        local z = c.include("zlib.h", {lib = "z"})
        walk(c, 0) walk(sh, 0) walk(c.info(z), 0)
        out[#out + 1] = z.crc32 out[#out + 1] = z.Z_OK out[#out + 1] = z.deflateInit
        out[#out + 1] = getmetatable(z)
        walk(getmetatable(z), 0)
        out[#out + 1] = select(2, pcall(c.include, "nope.h"))
        out[#out + 1] = sh.echo("x")
        return out
    """, env, "probe.lua")[0]
    kinds = set()
    for v in values.values():
        kind = luajit21.lua_type(v)
        assert kind is not None or isinstance(v, str | bytes | int | float | bool), type(v)
        kinds.add(kind or type(v).__name__)
    assert {"function", "table", "str"} <= kinds
