"""inspect, diff and prune on a store of 1,000 images (BENCHMARKS.md, "Store").

The store is synthesised from one real build, cheaply: the example web server is built once
with the pipeline; each variant is that image's initramfs with one page changed and one page
added (re-archived with engitor's cpio writer, compressed at its zstd level, indexed as the
pipeline indexes files) and stored with `store.put`, then tagged, so NAMES names get BUILDS
builds each and real logs. Every variant is a bootable image with a kernel hard link, like a
built one. The home is a temporary folder sharing only the kernel cache with the real home.

Timed in-process (the CLI adds Python's start-up, measured once separately):
  inspect   index.describe(NAME)          baseline: the same with the index read from the
                                          initramfs (what an image without one costs)
  diff      two builds of a name          baseline: both indexes read from the initramfs
  prune     the plan over 1,000 images    then the real prune of the untagged ones, against
            (dry run)                     `shutil.rmtree` of the same folders (the floor)

    .venv/bin/python bench/bench_store.py [--images 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, cpu, summary


def synthesise(n: int, names: int, programs: Path) -> tuple[float, list[str]]:
    """A store of n images; returns the seconds it took and the names."""
    import zstandard

    from engitor import cpio, store
    from engitor.image import pipeline
    from engitor.recipe.settings import make_image

    site = programs / "site"
    (site / "www").mkdir(parents=True, exist_ok=True)
    (site / "www" / "index.html").write_text("base\n")
    base = pipeline.build(make_image("base", {
        "program": str(programs / "server"), "dirs": ["www"], "ports": [8080],
        "args": ["-port", "8080", "-root", "/www"]}, base_dir=site))
    manifest = base.manifest
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(base.initrd.read_bytes())
    entries = {}
    for path, mode, data in cpio.read_archive(raw):
        if stat.S_ISREG(mode):
            entries[path] = cpio.Entry.file(path, data=data, mode=stat.S_IMODE(mode))
        elif stat.S_ISLNK(mode):
            entries[path] = cpio.Entry.symlink(path, data.decode())
        elif stat.S_ISDIR(mode):
            entries[path] = cpio.Entry.directory(path, stat.S_IMODE(mode))
        elif stat.S_ISCHR(mode):
            entries[path] = cpio.Entry.chardev(path, 5, 1)
    kernel = base.kernel
    kernel_sha = manifest["kernel"]["sha256"]
    began = time.perf_counter()
    all_names = [f"app{i:03d}" for i in range(names)]
    for i in range(n):
        name = all_names[i % names]
        variant = dict(entries)
        for path, text in (("/www/index.html", f"build {i}\n"),
                           (f"/www/page{i}.html", "x" * (100 + i))):
            variant[path] = cpio.Entry.file(path, data=text.encode(), mode=0o644)
        initrd = cpio.compress(cpio.archive(variant))
        files = [f for f in manifest["files"] if f["path"] != "/www/index.html"]
        for path in ("/www/index.html", f"/www/page{i}.html"):
            body = variant[path].contents()
            files.append({"path": path, "size": len(body), "mode": "644",
                          "sha256": hashlib.sha256(body).hexdigest(), "kind": "files"})
        m = {**manifest, "name": name, "files": sorted(files, key=lambda f: f["path"])}
        m.pop("id"), m.pop("created"), m.pop("initrd")
        image, _ = store.put(kernel=kernel, kernel_sha=kernel_sha, initrd=initrd,
                             cmdline=base.cmdline, manifest=m)
        store.tag(name, image)
    return time.perf_counter() - began, all_names


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm: imports, page cache
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--names", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    from engitor import home as home_mod

    real = home_mod.home()
    with tempfile.TemporaryDirectory(prefix="engitor-bench-store-") as tmp:
        h = Path(tmp) / "home"
        h.mkdir()
        (h / "kernels").symlink_to(real / "kernels")
        (h / "cache").symlink_to(real / "cache")
        os.environ["ENGITOR_HOME"] = str(h)
        programs = Path(tmp) / "programs"
        programs.mkdir()
        subprocess.run(["cc", "-O2", "-o", str(programs / "server"),
                        str(ROOT / "recipes/web/server.c")], check=True)
        took, names = synthesise(args.images, args.names, programs)
        report(args, took, names, h)


def report(args: argparse.Namespace, took: float, names: list[str], h: Path) -> None:
    from engitor import store
    from engitor.catalog import diff, history, index, prune

    name = names[len(names) // 2]
    image = store.resolve(name)
    older = history.pick(name, "~1")
    print(f"machine: {cpu()}, {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    count = len(store.listing())
    du = sum(f.stat().st_size for f in (h / "images").rglob("*") if f.is_file()
             and f.stat().st_nlink == 1)
    print(f"store: {count} images, {len(names)} names, synthesised in {took:.1f} s "
          f"({took / args.images * 1000:.1f} ms an image), {du / 2**20:.0f} MiB not shared")
    r = args.repeat

    def inspect_index():
        index.describe(store.resolve(name))

    def inspect_cpio():
        img = store.resolve(name)
        index.from_initrd(img)
        index.describe(img)

    def diff_index():
        diff.files(index.files(older), index.files(image))

    def diff_cpio():
        diff.files(index.from_initrd(older), index.from_initrd(image))

    def plan():
        prune.make_plan(running=set(), keep=0)

    rows = {
        "inspect NAME (manifest index)": timed(inspect_index, r),
        "inspect NAME (index from initramfs; baseline)": timed(inspect_cpio, r),
        "diff NAME~1 NAME (manifest index)": timed(diff_index, r),
        "diff NAME~1 NAME (from initramfs; baseline)": timed(diff_cpio, r),
        "prune --dry-run --keep 0 (plan over the store)": timed(plan, max(3, r // 4)),
    }
    for label, samples in rows.items():
        print(f"{label:<52} {summary(samples)}")
    cli = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engitor", "inspect", name, "--json"],
                       check=True, capture_output=True)
        cli.append(time.perf_counter() - t)
    print(f"{'engitor inspect NAME --json (CLI, new process)':<52} {summary(cli)}")
    history_cli = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engitor", "history", name],
                       check=True, capture_output=True)
        history_cli.append(time.perf_counter() - t)
    print(f"{'engitor history NAME (CLI, 10 builds)':<52} {summary(history_cli)}")

    # Removal: half of the untagged images by plain rmtree (the floor: the file system's own
    # cost of freeing them), the other half by prune in-process, then the CLI on what is left.
    untagged = prune.make_plan(running=set(), keep=0).images
    t = time.perf_counter()
    for img in untagged[::2]:
        shutil.rmtree(img.path)
    floor = (time.perf_counter() - t) / len(untagged[::2])
    t = time.perf_counter()
    the_plan = prune.make_plan(running=set(), keep=0)
    planned = time.perf_counter() - t
    t = time.perf_counter()
    prune.execute(the_plan)
    executed = time.perf_counter() - t
    n = len(the_plan.images)
    print(f"prune --keep 0 in-process: plan {planned:.2f} s, removal of {n} images "
          f"{executed:.2f} s = {executed / n * 1000:.1f} ms an image; plain rmtree "
          f"{floor * 1000:.1f} ms an image ({executed / n / floor:.2f}x); "
          f"{the_plan.bytes / 2**20:.0f} MiB freed")
    again = []
    for _ in range(5):  # the CLI with nothing to remove: start-up and the plan
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engitor", "prune", "--keep", "0"],
                       check=True, capture_output=True)
        again.append(time.perf_counter() - t)
    print(f"{'engitor prune --keep 0 (CLI, nothing left to remove)':<52} {summary(again)}")
    print(json.dumps({"left": len(store.listing())}))


if __name__ == "__main__":
    main()
