"""`engitor kernel build`: a kernel compiled from Debian's source package, as a recipe says.

A kernel recipe, recipes/kernels/NAME.lua, returns a table (see recipes/kernels/README.md):

    return {
      description = "…",
      source = "linux-source-6.1",    -- the Debian package holding the source tarball
      config = "engitor-min.config",  -- the fragment, beside the recipe (--config replaces it)
      build = function(k) … end,      -- script scope: sh, fs (the build folder), log, and k
    }

A recipe may take another's source and build function and add fragments to its own:
`base = "minimal", config = {"engitor-min.config", "smp.config"}` (a later fragment's value of
an option wins, as merge_config.sh has it). `patches = {"x.patch"}` (unified diffs beside the
recipe, `patch -p1`) are applied, in order, to a copy of the source kept for that set of patches.

`build(k)` configures and compiles out of tree (make O=) from a cached unpacking of the source
(pristine, or with the recipe's patches), and returns the paths of its bzImage, vmlinux and
.config. `k` carries what it works on (k.source, k.out, k.fragment — the recipe's fragments as
one, each option once —, k.jobs) and what needs engitor: `k.make(target…)` runs make with the
values that make builds reproducible and shows a summary instead of make's 20,000 lines;
`k.check_config()` checks that every option of the fragment took effect.

The result goes to the kernel cache (engitor/image/kernel.py) as NAME_VERSION_KEY, KEY hashing
the source version, the recipe, its patches and the fragment; the name is pinned to it there, so
`--kernel NAME` finds it. Everything is written into a temporary folder first and renamed into
place: a failed or interrupted build leaves nothing in the cache.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor import RECIPES_DIR, cpio, home
from engitor.errors import UserError, did_you_mean
from engitor.image import kconfig, kernel
from engitor.image.ksource import Source, installed_source, patched_source, prepare_source

SHIPPED_DIR = RECIPES_DIR / "kernels"
BUILD_FORMAT = 1  # bump when the way kernels are built changes what comes out
TOOLS = ("make", "gcc", "flex", "bison", "bc", "perl", "patch")  # patch: a recipe's patches
HEADERS = {"libelf-dev": "/usr/include/libelf.h", "libssl-dev": "/usr/include/openssl/ssl.h"}
BUILD_DEPS = "build-essential flex bison bc libelf-dev libssl-dev"
LAST_LINES = 20
PROGRESS_EVERY = 15.0  # seconds between summary lines while make compiles
STEP = re.compile(r"^  [A-Z][A-Z0-9_-]* ")  # kbuild's short lines: "  CC      kernel/fork.o"

Log = Callable[[str], None]


# -- recipes ----------------------------------------------------------------------------------


def recipe_names() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.lua"))}


def find_recipe(spec: str) -> Path:
    """A kernel recipe by name (recipes/kernels/NAME.lua) or by path."""
    if spec.endswith(".lua") or "/" in spec:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"kernel recipe {spec}: no such file", hint="check the path")
        return path.resolve()
    known = recipe_names()
    if spec not in known:
        hint = did_you_mean(spec, known) or "known: " + ", ".join(sorted(known))
        raise UserError(f"unknown kernel recipe {spec!r}",
                        hint=f"{hint}; or give the path of a recipe file")
    return known[spec]


RECIPE_FIELDS = ("description", "source", "config", "build", "base", "patches")


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    description: str
    source: str       # Debian package name
    fragments: tuple[Path, ...]  # merged in order: a later one's value of an option wins
    build: Any        # the Lua function
    base_text: str = ""  # the recipe it takes source and build from (`base`), if any
    patches: tuple[Path, ...] = ()  # applied to the source in order, before configuring

    def fragments_text(self) -> str:
        return "".join(f.read_text() for f in self.fragments)

    def patches_text(self) -> str:
        # surrogateescape: a patch may carry bytes that are not UTF-8 (an author's name)
        return "".join(p.read_text(errors="surrogateescape") for p in self.patches)


def _fields(rt: Any, env: Any, path: Path) -> dict[str, Any]:
    display = str(path)
    results = rt.eval(path.read_text(), env, display)
    table = results[0] if results else None
    where = f"{display}:1"
    if not (table is not None and hasattr(table, "items")):
        raise UserError("a kernel recipe returns a table {source = …, config = …, build = …}",
                        where=where)
    fields = {str(k): v for k, v in table.items()}
    for key in fields:
        if key not in RECIPE_FIELDS:
            raise UserError(f"unknown field {key!r} in kernel recipe",
                            hint=did_you_mean(key, RECIPE_FIELDS)
                            or "the fields are " + ", ".join(RECIPE_FIELDS), where=where)
    if "patches" in fields:
        fields["patches"] = [str(path.parent / name)
                             for name in _names(fields["patches"], "patches", where)]
    base = fields.get("base")
    if base is None:
        return fields
    if not isinstance(base, str) or base == path.stem:
        raise UserError("base names another kernel recipe", hint='base = "minimal"', where=where)
    base_path = find_recipe(base)
    inherited = _fields(rt, env, base_path)
    return {**{k: v for k, v in inherited.items() if k != "base"}, **fields,
            "base_text": inherited.get("base_text", "") + base_path.read_text()}


def _names(value: Any, field: str, where: str) -> list[str]:
    """A list of file names: {"a.patch", "b.patch"} (a Lua sequence)."""
    names = [v for _, v in sorted(value.items())] if hasattr(value, "items") else None
    if names is None or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"kernel recipe's {field} is not a list of file names",
                        hint=f'{field} = {{"NAME.patch"}} (files beside the recipe)', where=where)
    return names


def _configs(config: Any, where: str) -> list[str]:
    """config = "a.config" or {"a.config", "b.config"}."""
    names = [config] if isinstance(config, str) else \
        [v for _, v in sorted(config.items())] if hasattr(config, "items") else []
    if not names or not all(isinstance(n, str) and n for n in names):
        raise UserError("kernel recipe has no config fragment",
                        hint='config = "NAME.config" (or a list of them) beside the recipe, '
                             "or --config FILE", where=where)
    return names


def load_recipe(rt: Any, env: Any, path: Path, fragment: Path | None) -> Recipe:
    from engitor.lua.api import is_function

    fields = _fields(rt, env, path)
    where = f"{path}:1"
    source, config = fields.get("source"), fields.get("config")
    if not isinstance(source, str) or not source:
        raise UserError("kernel recipe has no source",
                        hint='source = "linux-source-6.1" (a Debian package)', where=where)
    if not is_function(fields.get("build")):
        raise UserError("kernel recipe has no build function", hint="build = function(k) … end",
                        where=where)
    fragments = [fragment] if fragment is not None else \
        [path.parent / name for name in _configs(config, where)]
    for f in fragments:
        if not f.is_file():
            raise UserError(f"config fragment {f}: no such file", hint="check the path",
                            where=where if f.parent == path.parent else None)
    patches = [Path(p) for p in fields.get("patches", ())]
    for p in patches:
        if not p.is_file():
            raise UserError(f"kernel patch {p}: no such file",
                            hint="patches name unified diffs beside the recipe", where=where)
    return Recipe(path.stem, path, str(fields.get("description") or ""), source,
                  tuple(f.resolve() for f in fragments), fields["build"],
                  fields.get("base_text", ""), tuple(p.resolve() for p in patches))


# -- the tools --------------------------------------------------------------------------------


def check_tools() -> None:
    missing = [t for t in TOOLS if not shutil.which(t)]
    missing += [pkg for pkg, header in HEADERS.items() if not Path(header).is_file()]
    if missing:
        raise UserError(f"building a kernel needs {', '.join(missing)}, which "
                        f"{'is' if len(missing) == 1 else 'are'} not installed",
                        hint=f"apt-get install {BUILD_DEPS}")


# -- make, summarized -------------------------------------------------------------------------


def reproducible_env() -> dict[str, str]:
    """What kbuild would otherwise take from the clock, the user and the host."""
    stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(cpio.source_date_epoch()))
    return {"KBUILD_BUILD_TIMESTAMP": stamp, "KBUILD_BUILD_USER": "engitor",
            "KBUILD_BUILD_HOST": "engitor", "KBUILD_BUILD_VERSION": "1", "LC_ALL": "C",
            "TZ": "UTC"}


class Make:
    """Runs make out of tree, writing its whole output to a log and showing a summary."""

    def __init__(self, source: Source, out: Path, jobs: int, log: Log, make_log: Path,
                 kept_log: Path):
        self.source, self.out, self.jobs, self.log = source, out, jobs, log
        self.make_log, self.kept_log = make_log, kept_log  # the build folder goes; kept_log stays

    def argv(self, targets: list[str]) -> list[str]:
        return ["make", "-C", str(self.source.tree), f"O={self.out}", f"-j{self.jobs}", *targets]

    def __call__(self, *targets: str) -> None:
        argv = self.argv(list(targets))
        what = "make " + " ".join(targets)
        last: collections.deque[str] = collections.deque(maxlen=LAST_LINES)
        began = shown = time.monotonic()
        compiled = 0
        with self.make_log.open("a") as record:
            record.write(f"$ {' '.join(argv)}\n")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace",
                                    env={**os.environ, **reproducible_env()})
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    record.write(line)
                    last.append(line.rstrip("\n"))
                    if STEP.match(line):
                        compiled += 1
                        if time.monotonic() - shown >= PROGRESS_EVERY:
                            shown = time.monotonic()
                            self.log(f"{what}: {compiled} steps, {shown - began:.0f} s "
                                     f"(now {' '.join(line.split())})")
                code = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if code != 0:
            home.atomic_write(self.kept_log, self.make_log.read_bytes())
            sys.stderr.write(f"--- the last lines of make's output (all of it: {self.kept_log})\n")
            sys.stderr.write("".join(f"  {line}\n" for line in last))
            sys.stderr.flush()
            raise UserError(f"kernel build failed: {what} exited with {code}",
                            hint="make's last lines are above")
        if compiled:
            self.log(f"{what}: done, {compiled} steps in {time.monotonic() - began:.0f} s")


def wanted(fragments: tuple[Path, ...]) -> dict[str, tuple[kconfig.Option, Path]]:
    """Each option the fragments set, with the fragment that has the last word on it."""
    out: dict[str, tuple[kconfig.Option, Path]] = {}
    for fragment in fragments:
        for option in kconfig.parse(fragment.read_text()):
            out.pop(option.name, None)  # re-inserted: the merged order follows the last word
            out[option.name] = (option, fragment)
    return out


def merged_fragment(fragments: tuple[Path, ...]) -> str:
    """The fragments as one, each option once, as the recipe's make sees them (k.fragment)."""
    lines = [f"# CONFIG_{o.name} is not set" if o.value == "n" else f"CONFIG_{o.name}={o.value}"
             for o, _ in wanted(fragments).values()]
    return "\n".join(lines) + "\n"


def check_known(source: Source, fragments: tuple[Path, ...]) -> None:
    """Every option of the fragments is one the source declares."""
    known = source.symbols()
    unknown = [(o, f) for f in fragments for o in kconfig.parse(f.read_text())
               if o.name not in known]
    if unknown:
        option, fragment = unknown[0]
        bad = kconfig.Mismatch(option, None, known=False)
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UserError(bad.describe() + more,
                        hint=did_you_mean(bad.option.name, known) or
                        f"options are named as in {source.package}'s Kconfig files",
                        where=f"{fragment}:{bad.option.line}")


def check_config(source: Source, fragments: tuple[Path, ...], out: Path) -> None:
    """Every option of the fragments as asked in the final .config, or one error naming one."""
    config_file = out / ".config"
    if not config_file.is_file():
        raise UserError(f"no .config in {out}", hint="run k.make(\"tinyconfig\") or another "
                                                      "config target before k.check_config()")
    asked = wanted(fragments)
    known = source.symbols()
    bad = kconfig.check([o for o, _ in asked.values()],
                        kconfig.values(config_file.read_text()), known)
    if not bad:
        return
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    if first.known:
        hint = ("set what it depends on too (its 'depends on' lines in the source's Kconfig "
                "files; 'make menuconfig' shows them)")
    else:
        hint = did_you_mean(first.option.name, known) or \
            f"options are named as in {source.package}'s Kconfig files"
    raise UserError(first.describe() + more, hint=hint,
                    where=f"{asked[first.option.name][1]}:{first.option.line}")


# -- the build --------------------------------------------------------------------------------


def input_key(recipe: Recipe, source: Source) -> str:
    return hashlib.sha256(json.dumps([
        BUILD_FORMAT, source.package, source.version, recipe.path.read_text() + recipe.base_text,
        recipe.fragments_text(), reproducible_env()]
        + ([recipe.patches_text()] if recipe.patches else [])).encode()).hexdigest()


def build(spec: str = "minimal", *, fragment: Path | None = None, name: str | None = None,
          jobs: int | None = None, force: bool = False, log: Log = lambda _: None
          ) -> kernel.Kernel:
    """Build the kernel a recipe describes (or find it built) and pin `name` to it."""
    from engitor.lua.runtime import Runtime

    path = find_recipe(spec)
    rt = Runtime(base_dir=path.parent, time_limit=None, memory_limit=None)
    env = rt.script_env(fs_root=path.parent)
    recipe = load_recipe(rt, env, path, fragment)
    name = name or recipe.name
    source = installed_source(recipe.source)
    found = None
    if source is not None and not force:
        found = kernel.load_entry(_entry(recipe, source))
    if found is None:
        check_tools()
        source = patched_source(prepare_source(recipe.source, log), recipe.patches, log)
        check_known(source, recipe.fragments)  # before minutes of work, not after
        entry = _entry(recipe, source)
        key = input_key(recipe, source)
        with tempfile.TemporaryDirectory(prefix="engitor-kbuild-") as tmp:
            outputs = _run_recipe(rt, env, recipe, source, Path(tmp), jobs or os.cpu_count() or 1,
                                  log)
            if entry.is_dir():  # --force over a cached build: a check that it is reproducible
                log(compare_with_cached(entry, outputs, name))
            else:
                _store(entry, recipe, source, key, outputs)
        found = kernel.load_entry(entry)
        assert found is not None
        log(f"built kernel {name}: {found.release}, bzImage "
            f"{found.vmlinuz.stat().st_size / 2**20:.2f} MiB")
    else:
        log(f"kernel {name} is up to date ({found.root.name})")
    kernel.pin(name, found)
    return found


def _entry(recipe: Recipe, source: Source) -> Path:
    """Named by what decides the kernel, not by the name it is selected by: a name is a pin."""
    return kernel.kernels_dir() / \
        f"{recipe.name}_{source.version}_{input_key(recipe, source)[:16]}"


def _run_recipe(rt: Any, env: Any, recipe: Recipe, source: Source, work: Path, jobs: int,
                log: Log) -> dict[str, Path]:
    from engitor.lua.api import expose, to_python

    out = work / "out"
    out.mkdir()
    make_log = work / "make.log"
    raised: list[UserError] = []

    def keep(fn: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            try:
                fn(*args)
            except UserError as e:
                raised.append(e)
                raise
        return call

    fragment = work / "fragment.config"
    fragment.write_text(merged_fragment(recipe.fragments))
    k = rt.lua.table_from({"source": str(source.tree), "out": str(out),
                           "fragment": str(fragment), "jobs": jobs,
                           "version": source.version})
    kept_log = home.subdir("cache") / "kernel-logs" / f"{recipe.name}.log"
    k.make = expose(rt.lua, keep(Make(source, out, jobs, log, make_log, kept_log)))
    k.check_config = expose(rt.lua, keep(lambda: check_config(source, recipe.fragments, out)))
    rt.script_env(work, env=env, label=f"kernel {recipe.name}")
    try:
        results = rt.call(recipe.build, k, chunk=str(recipe.path))
    except UserError as e:
        if raised:  # ours, reported as we made it (its hint intact), at the recipe's line
            raise raised[-1].located(e.where) if e.where and not raised[-1].where \
                else raised[-1] from None
        raise
    made = to_python(results[0]) if results else None
    if not isinstance(made, dict):
        raise UserError("the recipe's build function returns no table of its outputs",
                        hint="return {bzimage = …, vmlinux = …, config = …}",
                        where=rt.where_of(recipe.build))
    paths: dict[str, Path] = {}
    for what in ("bzimage", "vmlinux", "config"):
        value = made.get(what)
        if not isinstance(value, str) or not Path(value).is_file():
            raise UserError(f"the recipe's build returned no {what} file ({value!r})",
                            hint="return {bzimage = …, vmlinux = …, config = …}",
                            where=rt.where_of(recipe.build))
        paths[what] = Path(value)
    release_file = out / "include" / "config" / "kernel.release"
    paths["release"] = release_file
    return paths


def compare_with_cached(entry: Path, outputs: dict[str, Path], name: str) -> str:
    """What a forced rebuild says: whether its bzImage and vmlinux are the cached build's bytes
    (the cached one is kept either way: it is what images were built with)."""
    cached = kernel.load_entry(entry)
    assert cached is not None
    differ = [what for what, new, old in (("bzImage", outputs["bzimage"], cached.vmlinuz),
                                          ("vmlinux", outputs["vmlinux"], cached.vmlinux))
              if _sha256(new) != _sha256(old)]
    if not differ:
        return f"rebuilt kernel {name}: bzImage and vmlinux identical to the cached build"
    return (f"rebuilt kernel {name} differs from the cached build ({', '.join(differ)}): the "
            "build is not reproducible here; the cached one is kept")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _store(entry: Path, recipe: Recipe, source: Source, key: str,
           outputs: dict[str, Path]) -> None:
    release = outputs["release"].read_text().strip() if outputs["release"].is_file() else \
        source.version.split("-")[0]
    with home.atomic_dir(entry) as tmp:
        boot = tmp / "boot"
        boot.mkdir()
        shutil.copyfile(outputs["bzimage"], boot / f"vmlinuz-{release}")
        shutil.copyfile(outputs["vmlinux"], boot / f"vmlinux-{release}")
        shutil.copyfile(outputs["config"], boot / f"config-{release}")
        (tmp / "fragment.config").write_text(recipe.fragments_text())
        bz = (boot / f"vmlinuz-{release}").read_bytes()
        meta = {"package": recipe.name, "version": source.version,
                "sha256": hashlib.sha256(bz).hexdigest(), "release": release,
                "built": {"recipe": str(recipe.path), "source": source.package,
                          "fragments": [str(f) for f in recipe.fragments], "key": key,
                          "config_sha256": hashlib.sha256(
                              outputs["config"].read_bytes()).hexdigest()}}
        (tmp / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
