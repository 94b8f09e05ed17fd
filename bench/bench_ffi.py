"""C bridge benchmarks (issue 5), all in one run so the ratios compare like with like.

1. Calls of a trivial C function (libc's abs, and zlib's crc32 on an empty buffer): from Lua
   through a c.include namespace (LuaJIT FFI, JIT on), from Python through cffi (ABI mode,
   dlopen) and through ctypes. Each is a loop of N calls timed as a whole; median of repeats.
2. c.include of zlib.h, stdio.h and sqlite3.h into a fresh LuaJIT state: cold (no cache entry
   for the request; the compiler probe is cached, as after any first use), warm (cache entry
   valid: a cache read, compile of the data chunk, ffi.cdef), and again in the same state
   (everything already declared). Cold is also split into its stages.

Run: .venv/bin/python bench/bench_ffi.py  (prints a Markdown section for BENCHMARKS.md)
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["ENGITOR_HOME"] = tempfile.mkdtemp(prefix="engitor-bench-")

import cffi
from lupa import luajit21

import engitor.ffi as F
from engitor.ffi import cache, cparse, emit, model
from engitor.lua.api import c as c_api


def samples(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn, repeat: int) -> float:
    return statistics.median(samples(fn, repeat))


def new_state():
    lua = luajit21.LuaRuntime(register_eval=False, register_builtins=False,
                              unpack_returned_tuples=True)
    env = lua.table()
    c_api.install(lua, env)
    return lua, env


def bench_calls() -> list[tuple[str, float]]:
    rows = []
    lua, env = new_state()
    loop = lua.eval("""function(c, n, which)
        local C = c.include("stdlib.h")
        local z = c.include("zlib.h", {lib = "z"})
        local abs, crc32 = C.abs, z.crc32
        local acc = 0
        if which == "abs" then
          for i = 1, n do acc = acc + abs(-i) end
        elseif which == "crc32" then
          for i = 1, n do acc = acc + crc32(0, nil, 0) end
        else
          for i = 1, n do acc = acc + i end
        end
        return acc
    end""")
    n_lua = 50_000_000
    loop(env["c"], 1000, "abs")   # warm the trace
    empty = median_time(lambda: loop(env["c"], n_lua, "none"), 5) / n_lua
    for which in ("abs", "crc32"):
        t = median_time(lambda w=which: loop(env["c"], n_lua, w), 5) / n_lua
        rows.append((f"Lua → {which} (LuaJIT FFI via c.include)", t))
    rows.append(("Lua empty loop (for reference)", empty))

    ffi = cffi.FFI()
    ffi.cdef("int abs(int); unsigned long crc32(unsigned long, const unsigned char *, unsigned);")
    libc, libz = ffi.dlopen(None), ffi.dlopen("z")
    n_py = 1_000_000

    def py_loop(f, *args):
        def run():
            for _ in range(n_py):
                f(*args)
        return run
    rows.append(("Python → abs (cffi, ABI mode)", median_time(py_loop(libc.abs, -3), 5) / n_py))
    rows.append(("Python → crc32 (cffi, ABI mode)",
                 median_time(py_loop(libz.crc32, 0, ffi.NULL, 0), 5) / n_py))
    cabs = ctypes.CDLL(None).abs
    cabs.argtypes, cabs.restype = [ctypes.c_int], ctypes.c_int
    ccrc = ctypes.CDLL("libz.so.1").crc32
    ccrc.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_uint]
    ccrc.restype = ctypes.c_ulong
    rows.append(("Python → abs (ctypes)", median_time(py_loop(cabs, -3), 5) / n_py))
    rows.append(("Python → crc32 (ctypes)", median_time(py_loop(ccrc, 0, None, 0), 5) / n_py))
    return rows


def drop_entries() -> None:
    for p in cache.root().iterdir():
        if not p.name.startswith("cc-"):
            p.unlink()


def bench_include(header: str, lib: str | None) -> dict[str, float]:
    include = """function(c, h, lib) return c.include(h, {lib = lib}) end"""
    out = {}

    def fresh():
        lua, env = new_state()
        lua.eval(include)(env["c"], header, lib)

    def cold():
        drop_entries()
        fresh()
    cold_times = samples(cold, 9)
    out["cold"], out["cold min"] = statistics.median(cold_times), min(cold_times)

    def warm_first():   # as in a new process: the entry is validated from its manifest
        F._checked.clear()
        fresh()
    out["warm"] = median_time(warm_first, 21)
    out["warm same process"] = median_time(fresh, 21)
    lua, env = new_state()
    fn = lua.eval(include)
    fn(env["c"], header, lib)
    out["again"] = median_time(lambda: fn(env["c"], header, lib), 21)

    # cold, by stage
    tc = cparse.toolchain()
    req = F.request(header)
    stages = {"preprocess": [], "parse": [], "model": [], "emit": []}
    for _ in range(5):
        gc.collect()   # start each like the cold include does: no earlier ASTs alive
        t0 = time.perf_counter()
        pre = cparse.preprocess(req, tc)
        t1 = time.perf_counter()
        parsed = cparse.parse(pre, tc)
        t2 = time.perf_counter()
        u = model.build(parsed, req, tc, pre.builtins)
        t3 = time.perf_counter()
        emit.lua_data(u)
        t4 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[k].append(v)
        del pre, parsed, u
    out.update({k: statistics.median(v) for k, v in stages.items()})
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import lupa
    import pycparser
    return (f"{cpu}, {os.cpu_count()} cores; {platform.platform()}; Python "
            f"{platform.python_version()}; lupa {lupa.__version__} "
            f"({luajit21.LuaRuntime().eval('jit.version')}); "
            f"pycparser {pycparser.__version__}; cffi {cffi.__version__}; "
            f"{cparse.toolchain().version}")


def main() -> int:
    calls = bench_calls()
    lua_abs = calls[0][1]
    cffi_abs = next(t for name, t in calls if name.startswith("Python → abs (cffi"))
    includes = {h: bench_include(h, lib) for h, lib in
                (("zlib.h", "z"), ("stdio.h", None), ("sqlite3.h", "sqlite3"))}
    ms = 1e3
    print(f"Date: {time.strftime('%Y-%m-%d')}. Machine: {machine()}.\n")
    print("| call | ns/call | calls/s |")
    print("|---|---:|---:|")
    for name, t in calls:
        print(f"| {name} | {t * 1e9:.2f} | {1 / t:,.0f} |")
    print(f"\nLuaJIT FFI abs vs cffi abs: {cffi_abs / lua_abs:.0f}× faster.\n")
    print("| c.include | cold ms (median / min) | warm ms, first in a process | warm ms, "
          "same process | again, same state ms | cold stages: cpp+split / pycparser / "
          "model+macros / emit ms |")
    print("|---|---:|---:|---:|---:|---|")
    for h, r in includes.items():
        print(f"| {h} | {r['cold'] * ms:.1f} / {r['cold min'] * ms:.1f} | {r['warm'] * ms:.2f} | "
              f"{r['warm same process'] * ms:.2f} | {r['again'] * ms:.2f} | "
              f"{r['preprocess'] * ms:.1f} / {r['parse'] * ms:.1f} / {r['model'] * ms:.1f} / "
              f"{r['emit'] * ms:.1f} |")
    print(f"\nload average during the run: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
