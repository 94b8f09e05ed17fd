"""Lua recipe evaluation (issue 3): a recipe declaring 1,000 images through a loop.

Cases, measured alternately in one run (median of REPEAT, with p10-p90):
  loop     recipe.lua with a `for` loop declaring 1,000 images from a shared table (the target)
  literal  the same 1,000 images written out, one `image "…" { … }` each
  python   baseline: the same 1,000 images as JSON, json.loads + settings.make_image, no Lua
           (what validation into the model costs by itself)
  small    recipes/web.lua: the fixed cost of one small recipe
Each Lua case is `load_recipe` end to end: a fresh sandboxed LuaJIT runtime, the description
scope (JIT off, count hook for the time limit) in a forked child, export to Python, validation;
the stages are measured in-process. The loop case is
also split into those stages. All three 1,000-image cases must yield equal models.

Run: .venv/bin/python bench/bench_recipe.py  (prints a Markdown section for BENCHMARKS.md)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lupa
from benchlib import cpu, summary, time_cases

from engitor.lua import isolate
from engitor.lua.runtime import DEFAULT_TIME_LIMIT, Runtime
from engitor.recipe import lua_front, settings
from engitor.recipe.lua_front import load_recipe

N = 1000
REPEAT = 30
ROOT = Path(__file__).resolve().parents[1]

LOOP = f"""
local common = {{ program = "./server", memory = "128M", env = {{ MODE = "prod" }} }}
for i = 1, {N} do
  local port = 10000 + i
  image("web-" .. i) (merge(common, {{
    args = {{ "-port", port, "-name", "web-" .. i }},
    ports = {{ port }},
  }}))
end
"""


def literal() -> str:
    return "".join(
        f'image "web-{i}" {{\n  program = "./server", memory = "128M", env = {{ MODE = "prod" }},\n'
        f'  args = {{ "-port", {10000 + i}, "-name", "web-{i}" }},\n  ports = {{ {10000 + i} }},\n}}\n'
        for i in range(1, N + 1))


def as_json() -> str:
    return json.dumps([{"name": f"web-{i}", "program": "./server", "memory": "128M",
                        "env": {"MODE": "prod"}, "args": ["-port", 10000 + i, "-name", f"web-{i}"],
                        "ports": [10000 + i]} for i in range(1, N + 1)])


def python_baseline(text: str, base: Path) -> tuple:
    return tuple(settings.make_image(d.pop("name"), d, where="bench.json", base_dir=base)
                 for d in json.loads(text))


def stages(path: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    rt = Runtime(base_dir=path.parent)
    env = rt.description_env()
    t1 = time.perf_counter()
    rt.eval(path.read_text(), env, str(path), time_limit=DEFAULT_TIME_LIMIT)
    t2 = time.perf_counter()
    decls = rt.declarations(env)
    t3 = time.perf_counter()
    described = isolate.Described(decls, rt.sources, [], None)  # as the child's reply gives it
    for d in decls:
        lua_front._image(described, d, path.parent)
    t4 = time.perf_counter()
    return {"runtime and sandbox": t1 - t0, "description scope (Lua)": t2 - t1,
            "export to Python": t3 - t2, "validation into the model": t4 - t3}


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="engitor-bench-recipe-"))
    loop, lit = folder / "loop.lua", folder / "literal.lua"
    loop.write_text(LOOP)
    lit.write_text(literal())
    js = as_json()
    small = ROOT / "recipes" / "web.lua"

    models = {"loop": load_recipe(loop).images, "literal": load_recipe(lit).images,
              "python": python_baseline(js, folder)}
    assert len(models["loop"]) == N
    assert models["loop"] == models["literal"] == models["python"], "the cases differ"

    cases = {"loop": lambda: load_recipe(loop), "literal": lambda: load_recipe(lit),
             "python": lambda: python_baseline(js, folder), "small": lambda: load_recipe(small)}
    times, parts = time_cases(cases, REPEAT, lambda: stages(loop))

    med = {k: statistics.median(v) for k, v in times.items()}
    out = [
        "## Lua recipes",
        "",
        f"Measured {datetime.date.today().isoformat()} on {cpu()} ({os.cpu_count()} cores), "
        f"Python {platform.python_version()}, lupa {lupa.__version__} "
        f"({Runtime().lua.lua_implementation}); `bench/bench_recipe.py`, median of {REPEAT} "
        "runs per case, alternating, p10-p90 in brackets.",
        "",
        f"Evaluating a recipe that declares {N:,} images through a loop (`load_recipe` end to "
        "end: a fresh sandboxed LuaJIT runtime, the description scope with the JIT off and the "
        "time-limit hook on, export to Python, validation into the model). Target: ≤ 100 ms.",
        "",
        "| case | time | vs. Python baseline |",
        "| --- | --- | --- |",
        f"| loop: {N:,} images from a `for` loop | {summary(times['loop'])} | "
        f"{med['loop'] / med['python']:.2f}× |",
        f"| literal: the same {N:,} images written out ({lit.stat().st_size // 1024} KB) | "
        f"{summary(times['literal'])} | {med['literal'] / med['python']:.2f}× |",
        f"| baseline: the same {N:,} images as JSON, `json.loads` + `make_image`, no Lua | "
        f"{summary(times['python'])} | 1.00× |",
        f"| one small recipe (recipes/web.lua) | {summary(times['small'])} | |",
        "",
        "Where the loop case's time goes:",
        "",
        "| stage | median |",
        "| --- | --- |",
        *[f"| {stage} | {statistics.median(v) * 1000:.1f} ms |" for stage, v in parts.items()],
        "",
        f"Verdict: {med['loop'] * 1000:.0f} ms for {N:,} images, "
        + ("within" if med["loop"] <= 0.1 else "OVER") + " the 100 ms target. The three "
        f"{N:,}-image cases yield equal models (checked by the script).",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
