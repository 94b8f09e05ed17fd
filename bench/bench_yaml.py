"""YAML front end (issue 4): compile + evaluate a config of 1,000 keys.

The config is what an operator writes for a fleet: a shared block behind an anchor, images that
merge it (`<<: *common`) and add their own program, arguments, ports, environment and files,
comments throughout; 1,000 mapping keys in all (counted by the script). Cases, measured
alternately in one run (median of REPEAT, p10-p90):

  yaml      `yaml_front.load_config` end to end: read, parse (libyaml), compile to Lua, lay out
            the text, evaluate it through `lua_front.load_recipe` (fresh sandboxed LuaJIT,
            export, validation into the model) - the target
  baseline  the same file with `yaml.safe_load` (libyaml, merge keys resolved by PyYAML) +
            `settings.make_image` per image, no Lua: what reading and validating cost alone
  lua       the compiled Lua text through `lua_front.load_recipe` alone (what a hand-written
            recipe of the same images costs)
  ops       recipes/ops/config.json with a program (`-c config.json server`): the fixed cost

The yaml case is also split into stages. The yaml, lua and baseline cases must give equal
models (checked).

Run: .venv/bin/python bench/bench_yaml.py  (prints a Markdown section for BENCHMARKS.md)
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lupa
import yaml
from benchlib import cpu, summary, time_cases

from engitor.lua.runtime import Runtime
from engitor.recipe import lua_emit, lua_front, settings, yaml_front, yaml_lower
from engitor.recipe.yaml_doc import Document

KEYS = 1000
REPEAT = 30
TARGET = 0.150
ROOT = Path(__file__).resolve().parents[1]
PER_IMAGE = """\
  # Site {i}: its own port and name.
  site-{i}:
    <<: *common
    program: web/server
    args: [-port, {port}, -root, /www, -name, site-{i}]
    ports: ["{port}:{port}"]   # host:guest
    env: {{SITE: site-{i}, SHARD: "{shard}"}}
    files: [conf/site-{i}.conf]
"""
HEAD = """\
# A fleet of sites behind one anchor.
x-common: &common
  memory: 128M
  cpus: 1
  map: {"web/www/*": /www}
  kernel_args: [quiet]
  nameservers: [10.0.2.3]
  env: {MODE: prod}

images:
"""


def fleet() -> tuple[str, int]:
    """The config text with exactly KEYS mapping keys, and its number of images."""
    per_image = count_keys(HEAD + PER_IMAGE.format(i=0, port=0, shard=0)) - count_keys(HEAD)
    n = (KEYS - count_keys(HEAD)) // per_image
    text = HEAD + "".join(PER_IMAGE.format(i=i, port=10000 + i, shard=i % 7)
                          for i in range(1, n + 1))
    assert count_keys(text) == KEYS, "the image template no longer divides the key count"
    return text, n


def count_keys(text: str) -> int:
    doc = Document(text, "count")
    seen, todo, count = set(), [doc.root], 0
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            count += len(node.value)
            todo += [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return count


def baseline(path: Path) -> tuple:
    data = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    return tuple(settings.make_image(name, table, where=str(path), base_dir=path.parent)
                 for name, table in data["images"].items())


def stages(path: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    doc = Document.read(path)
    t1 = time.perf_counter()
    survey = doc.survey()
    program = yaml_lower.ValueCompiler(doc, survey, doc.comments(survey)).program(path.stem)
    t2 = time.perf_counter()
    output = lua_emit.render(program)
    t3 = time.perf_counter()
    yaml_front.evaluate(yaml_lower.Compiled(path, str(path), program, output))
    t4 = time.perf_counter()
    return {"parse (libyaml, nodes with marks)": t1 - t0,
            "compile (checks, anchors, comments)": t2 - t1, "lay out the Lua text": t3 - t2,
            "evaluate (lua_front.load_recipe)": t4 - t3}


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="engitor-bench-yaml-"))
    text, images = fleet()
    path = folder / "fleet.yaml"
    path.write_text(text)
    lua_path = folder / "fleet.lua"
    compiled = yaml_front.compile_config(path)
    lua_path.write_text(compiled.lua)
    ops_dir = ROOT / "recipes" / "ops"

    models = {"yaml": yaml_front.load_config(path).images,
              "lua": lua_front.load_recipe(lua_path).images, "baseline": baseline(path)}
    assert len(models["yaml"]) == images
    assert models["yaml"] == models["lua"] == models["baseline"], "the cases differ"

    cases = {"yaml": lambda: yaml_front.load_config(path), "baseline": lambda: baseline(path),
             "lua": lambda: lua_front.load_recipe(lua_path),
             "ops": lambda: yaml_front.load_with_program(ops_dir / "config.json", "server",
                                                         None)}
    times, parts = time_cases(cases, REPEAT, lambda: stages(path))

    med = {k: statistics.median(v) for k, v in times.items()}
    load = os.getloadavg()[0]
    out = [
        "## YAML front end",
        "",
        f"Measured {datetime.date.today().isoformat()} on {cpu()} ({os.cpu_count()} cores, "
        f"load average {load:.2f} at the end), Python {platform.python_version()}, PyYAML "
        f"{yaml.__version__} with libyaml, lupa {lupa.__version__} "
        f"({Runtime().lua.lua_implementation}); `bench/bench_yaml.py`, median of {REPEAT} runs "
        "per case, alternating, p10-p90 in brackets.",
        "",
        f"Compiling and evaluating a YAML config of {KEYS:,} keys: {images} images merging a "
        f"shared block (`<<: *common`), with comments ({len(text) // 1024} KB of YAML, "
        f"{len(compiled.lua) // 1024} KB of generated Lua). `load_config` end to end: read, "
        "parse, compile to Lua, lay the text out, evaluate it through the Lua front end (fresh "
        "sandboxed LuaJIT, export, validation into the model). Target: ≤ 150 ms.",
        "",
        "| case | time | vs. baseline |",
        "| --- | --- | --- |",
        f"| YAML → Lua → model (`yaml_front.load_config`) | {summary(times['yaml'])} | "
        f"{med['yaml'] / med['baseline']:.2f}× |",
        f"| baseline: `yaml.safe_load` (libyaml) + `make_image`, no Lua | "
        f"{summary(times['baseline'])} | 1.00× |",
        f"| the generated Lua alone (`lua_front.load_recipe`) | {summary(times['lua'])} | "
        f"{med['lua'] / med['baseline']:.2f}× |",
        f"| an ops config.json (recipes/ops, `-c config.json server`) | {summary(times['ops'])} "
        "| |",
        "",
        "Where the YAML case's time goes:",
        "",
        "| stage | median |",
        "| --- | --- |",
        *[f"| {stage} | {statistics.median(v) * 1000:.1f} ms |" for stage, v in parts.items()],
        "",
        f"Verdict: {med['yaml'] * 1000:.0f} ms for {KEYS:,} keys, "
        + ("within" if med["yaml"] <= TARGET else "OVER") + " the 150 ms target. The three "
        "cases yield equal models (checked by the script).",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
