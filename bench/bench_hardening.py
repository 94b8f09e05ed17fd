"""What the input hardening costs: describing recipes in a forked child (the CPU limit that stops
a long C call), counting converted bytes, the symlink checks of a build. Before and after in
one run: the baseline tree (a git commit, checked out to a temporary worktree) and this tree
are measured alternately, each in its own Python process, so drift in the machine's load hits
both alike.

Cases (each process times them in-process, median of REPEAT):
  small      load_recipe(recipes/web.lua): one small recipe, the fixed cost
  loop       load_recipe of a recipe declaring 1,000 images through a loop
  hooked     load_recipe of a recipe with a hook, then calling the hook once
  build      a full build of a small dynamically linked program with a `dirs` tree of 200 files
             (warm kernel and compile caches, a fresh image store each time)
And in this tree only: the fork itself, `Runtime` + eval in-process against `isolate.describe`
of the same empty recipe.

Run: .venv/bin/python bench/bench_hardening.py [BASELINE_COMMIT]   (default 5ea6f69)
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import ROOT, cpu, summary

REPEAT = 10
ROUNDS = 2  # processes per tree, alternating
BASELINE = "5ea6f69"

WORKER = r'''
import json, os, shutil, statistics, sys, tempfile, time
from pathlib import Path
root, repeat, program = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
from engitor.recipe.lua_front import load_recipe
from engitor.image import pipeline
# The script scope's APIs, imported once a process in either tree (in the child, after): here
# before timing, so that the hook case measures the call, not the first import.
import engitor.lua.api.fs, engitor.lua.api.log, engitor.lua.api.sh, engitor.lua.api.c
from engitor.recipe.settings import make_image
work = Path(tempfile.mkdtemp())
loop = work / "loop.lua"
loop.write_text("""local common = { program = "./server", memory = "128M", env = { MODE = "prod" } }
for i = 1, 1000 do image("web-" .. i) (merge(common, { args = { "-port", 10000 + i }, ports = { 10000 + i } })) end
""")
hooked = work / "hooked.lua"
hooked.write_text('image "h" { program = "./server", before_build = function(ctx) return {ctx.name} end }\n')
app = work / "app"
(app / "site").mkdir(parents=True)
for i in range(200):
    (app / "site" / f"page{i}.html").write_text("x" * i)
shutil.copy(program, app / "exit3")
real_home = Path(os.environ.get("ENGITOR_HOME") or Path.home() / ".engitor")
def build():
    h = Path(tempfile.mkdtemp(dir=work))
    (h / "kernels").symlink_to(real_home / "kernels")
    (h / "cache").symlink_to(real_home / "cache")
    os.environ["ENGITOR_HOME"] = str(h)
    pipeline.build(make_image("app", {"program": "./exit3", "dirs": ["site"]}, base_dir=app))
def hook():
    (image,) = load_recipe(hooked).images
    image.hooks["before_build"].call({"name": "h"})
cases = {"small": lambda: load_recipe(root / "recipes/web.lua"), "loop": lambda: load_recipe(loop),
         "hooked": hook, "build": build}
for fn in cases.values():
    fn()
times = {k: [] for k in cases}
for _ in range(repeat):
    for name, fn in cases.items():
        t = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t)
try:
    from engitor.lua import isolate
    from engitor.lua.runtime import Runtime
    empty = work / "empty.lua"
    empty.write_text('image "e" { program = "./x" }\n')
    def inproc():
        rt = Runtime(base_dir=work); env = rt.description_env()
        rt.eval(empty.read_text(), env, "empty.lua", time_limit=3.0); rt.export(env)
    def forked():
        isolate.describe(empty, empty.read_text(), "empty.lua", time_limit=3.0,
                         memory_limit=256 * 2**20).close()
    for name, fn in (("describe in-process", inproc), ("describe in a child", forked)):
        fn()
        times[name] = []
        for _ in range(repeat * 2):
            t = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t)
except ImportError:
    pass
shutil.rmtree(work, ignore_errors=True)
print(json.dumps(times))
'''


def worktree(commit: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="engitor-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), commit],
                   check=True, capture_output=True)
    return path


def program(folder: Path) -> Path:
    src = folder / "exit3.c"
    src.write_text("int main(void) { return 3; }\n")
    subprocess.run(["cc", "-O2", "-o", str(folder / "exit3"), str(src)], check=True)
    return folder / "exit3"


def main() -> None:
    baseline = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    old = worktree(baseline)
    tmp = Path(tempfile.mkdtemp())
    exe = program(tmp)
    trees = {"before": old, "after": ROOT}
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    try:
        for _ in range(ROUNDS):
            for label, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                out = subprocess.run([sys.executable, "-c", WORKER, str(tree), str(REPEAT), str(exe)],
                                     env=env, check=True, capture_output=True, text=True, cwd=tree)
                for case, values in json.loads(out.stdout).items():
                    samples[label].setdefault(case, []).extend(values)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    report(samples, baseline)


def report(samples: dict[str, dict[str, list[float]]], baseline: str) -> None:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    print(f"Measured {datetime.date.today()} on {cpu()} ({os.cpu_count()} CPUs, shared), "
          f"`bench/bench_hardening.py`: {ROUNDS} processes a tree, alternating, {REPEAT} rounds "
          f"each; before = {baseline}, after = {head}.\n")
    print("| case | before | after | after / before |\n|---|---|---|---|")
    for case in samples["before"]:
        b, a = samples["before"][case], samples["after"][case]
        ratio = statistics.median(a) / statistics.median(b)
        print(f"| {case} | {summary(b)} | {summary(a)} | {ratio:.2f}× |")
    extra = [c for c in samples["after"] if c not in samples["before"]]
    for case in extra:
        print(f"| {case} | | {summary(samples['after'][case])} | |")


if __name__ == "__main__":
    main()
