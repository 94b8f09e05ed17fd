"""Runtime packages (issue 7): image size against Debian's Installed-Size, cold and warm builds.

For each runtime recipe in recipes/packages/:
  sizes    Debian's Installed-Size summed over the packages that go in (apt's own figure,
           from each .deb), the package files kept in the image after the drop rules, the
           initramfs (zstd) and the whole image (kernel + initramfs).
  cold     an empty engitor home (the kernel cache shared; nothing of the runtime cached):
           resolve with apt, download, unpack, merge the root, build the image. Stages timed
           separately, end to end is their sum; median of COLD runs.
  baseline in the same session, what any approach pays for the same packages: one
           `apt-get --download-only install` onto an empty status into an empty archive
           folder, then `dpkg-deb -x` of every .deb into one tree.
  warm     the packages cached: `pipeline.build` of a new image (other args, so the
           initramfs is assembled again), and of the unchanged image (found in the store).

Run: .venv/bin/python bench/bench_packages.py [NAME ...]  (prints a Markdown section)
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import cpu

from engitor import packages
from engitor.image import kernel, pipeline
from engitor.packages import apt, cache, recipes
from engitor.recipe.model import MiB
from engitor.recipe.settings import make_image

COLD = 3
WARM = 5
ORDER = ("python3", "node", "ruby", "java", "erlang", "php", "nginx")


def fresh_home(root: Path, kernels: Path) -> Path:
    home = Path(tempfile.mkdtemp(dir=root, prefix="home-"))
    (home / "kernels").symlink_to(kernels)
    os.environ["ENGITOR_HOME"] = str(home)
    return home


def image_for(recipe: recipes.PackageRecipe, info: cache.Root, args: tuple[str, ...] = ()):
    memory = packages.min_memory(recipe, info)
    return make_image(f"bench-{recipe.name}", {"package": recipe.name, "args": list(args),
                                               "memory": f"{memory // MiB}M"})


def cold(recipe: recipes.PackageRecipe) -> dict[str, float]:
    """The stages prepare() runs when nothing is cached, then the image build."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    debs, skipped = apt.resolve(recipe.debs, recipe.skip)
    t["resolve"] = time.perf_counter() - start
    mark = time.perf_counter()
    paths = apt.download(debs)
    t["download"] = time.perf_counter() - mark
    mark = time.perf_counter()
    unpacked = packages.unpack_all(paths)
    units = [unpacked[d] for d in debs]
    t["unpack"] = time.perf_counter() - mark
    mark = time.perf_counter()
    cache.write_resolution(recipe.name, recipe.apt_key(), units, skipped)
    info = cache.merge(units, recipe.rules)
    t["merge"] = time.perf_counter() - mark
    mark = time.perf_counter()
    pipeline.build(image_for(recipe, info))
    t["image"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return t


def baseline(recipe: recipes.PackageRecipe, folder: Path) -> tuple[float, int]:
    """apt-get --download-only into an empty folder, dpkg-deb -x of each: no engitor.
    Returns the time and the Installed-Size of everything apt fetched (the whole closure, what
    `apt install` onto an empty system would put on disk)."""
    archives = folder / "archives"
    (archives / "partial").mkdir(parents=True)
    status = folder / "status"
    status.write_text("")
    tree = folder / "tree"
    tree.mkdir()
    # apt's cache files in memory: never the host's own /var/cache/apt.
    opts = ["-o", f"Dir::State::status={status}", "-o", f"Dir::Cache::archives={archives}",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]
    start = time.perf_counter()
    subprocess.run(["apt-get", *opts, "--download-only", "--no-install-recommends", "-y",
                    "install", *recipe.debs], check=True, capture_output=True)
    for deb in sorted(archives.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    took = time.perf_counter() - start
    whole = sum(int(apt.deb_fields(deb)["Installed-Size"] or 0) * 1024
                for deb in archives.glob("*.deb"))
    return took, whole


def warm(recipe: recipes.PackageRecipe, info: cache.Root) -> tuple[list[float], list[float]]:
    new, same = [], []
    for i in range(WARM):
        image = image_for(recipe, info, ("--bench", str(i), str(time.time_ns())))
        mark = time.perf_counter()
        pipeline.build(image)
        new.append(time.perf_counter() - mark)
    image = image_for(recipe, info)
    pipeline.build(image)
    for _ in range(WARM):
        mark = time.perf_counter()
        pipeline.build(image)
        same.append(time.perf_counter() - mark)
    return new, same


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main(names: list[str]) -> int:
    kernels = kernel.kernels_dir()
    kernel.get()
    work = Path(tempfile.mkdtemp(prefix="engitor-bench-pkg-"))
    rows = []
    stage_rows = []
    try:
        for name in names or ORDER:
            recipe = recipes.find(name)
            colds = []
            for _ in range(COLD):
                fresh_home(work, kernels)
                colds.append(cold(recipe))
            base_runs = [baseline(recipe, Path(tempfile.mkdtemp(dir=work))) for _ in range(COLD)]
            base = [t for t, _ in base_runs]
            whole = base_runs[0][1]
            st = packages.status(recipe)
            units, info = st["units"], st["root"]
            installed = sum(u.installed_size for u in units)
            new, same = warm(recipe, info)
            stored = pipeline.build(image_for(recipe, info))
            initrd = stored.initrd.stat().st_size
            main_debs = ", ".join(str(u.deb) for u in packages.units_of_interest(recipe, units))
            rows.append((name, main_debs, len(units), len(st["resolution"]["skipped"]),
                         whole, installed, info.bytes, initrd, stored.size(),
                         med([c["total"] for c in colds]), med(base), med(new), med(same)))
            stage_rows.append((name, {k: med([c[k] for c in colds]) for k in colds[0]}))
            print(f"{name}: done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    out = [
        "## Runtime packages",
        "",
        "Script: `bench/bench_packages.py` (issue 7); the tables are one run of it.",
        "",
        "**Method.** Per runtime recipe: *apt install* is Debian's Installed-Size summed over "
        "everything apt fetches for the runtime onto an empty system (the baseline's download); "
        "*installed* the same over the packages that go into the image (the ones only an "
        "installed system needs, and what only they depend on, left out); *kept* the "
        "package files in the image after the drop rules (documentation, manuals, locales, "
        "headers, static libraries, init-system files, and the recipe's own); *initramfs* the "
        "zstd-compressed archive; *image* kernel plus initramfs. *Cold*: an empty engitor home "
        "(only the kernel cache shared), resolve with apt, download, unpack, merge the root, "
        f"build the image; median of {COLD}. *Baseline*, same session: a bare `apt-get "
        "--download-only install` onto an empty status plus `dpkg-deb -x` of every .deb, "
        f"median of {COLD}. *Warm*: packages cached, a new image assembled (median of {WARM}); "
        f"*unchanged*: the same image again, found in the store (median of {WARM}).",
        "",
        f"**Machine.** {cpu()}, {os.cpu_count()} cores; Debian 12; Python "
        f"{platform.python_version()}; Debian's archive through deb.debian.org (the mirror here "
        f"is fast: ~100-200 MB/s). Shared with other sessions' builds and VMs: load average "
        f"{load:.2f} at the end of the run.",
        "",
        f"**Date.** {datetime.date.today().isoformat()}.",
        "",
        "| runtime | Debian version | packages (left out) | apt install | installed | kept "
        "| kept/installed | kept/apt install | initramfs | image | initramfs/installed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, ver, n, skipped, whole, installed, kept, initrd, image, *_rest) in rows:
        out.append(f"| {name} | {ver} | {n} ({skipped}) | {whole / MiB:.1f} MiB | "
                   f"{installed / MiB:.1f} MiB | {kept / MiB:.1f} MiB | {kept / installed:.0%} | "
                   f"{kept / whole:.0%} | {initrd / MiB:.1f} MiB | {image / MiB:.1f} MiB | "
                   f"{initrd / installed:.0%} |")
    out += ["", "| runtime | cold build | baseline (apt + dpkg-deb) | cold/baseline | "
                "warm build (new image) | warm, unchanged | cold/warm |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for (name, *_s, cold_t, base_t, new_t, same_t) in rows:
        out.append(f"| {name} | {cold_t:.2f} s | {base_t:.2f} s | {cold_t / base_t:.2f}× | "
                   f"{new_t:.2f} s | {same_t:.2f} s | {cold_t / new_t:.1f}× |")
    out += ["", "Cold build by stage (median seconds):", "",
            "| runtime | resolve (apt) | download | unpack | merge | image |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, st in stage_rows:
        out.append(f"| {name} | {st['resolve']:.2f} | {st['download']:.2f} | "
                   f"{st['unpack']:.2f} | {st['merge']:.2f} | {st['image']:.2f} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
