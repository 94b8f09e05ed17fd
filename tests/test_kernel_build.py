"""`engitor kernel build`: the minimal kernel from Debian's linux-source, its place in the kernel
cache, and each bad input answered with one line, exit 2 and nothing half-written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from support import engitor

from engitor import ROOT
from engitor.image import kconfig, kernel

# The first test to ask for the minimal kernel builds it when the cache lacks it (minutes).
pytestmark = pytest.mark.timeout(1800)

SHIPPED_FRAGMENT = ROOT / "recipes" / "kernels" / "engitor-min.config"


def cache_state() -> tuple[list[str], str]:
    """What a failed build must leave as it was: the kernel cache's entries and the pins."""
    kdir = kernel.kernels_dir()
    names = kdir / "names.json"
    return sorted(os.listdir(kdir)), names.read_text() if names.exists() else ""


def one_error_line(stderr: str) -> str:
    ours = [line for line in stderr.splitlines() if line.startswith("engitor:")
            and not line.startswith("engitor: kernel: ")]
    assert len(ours) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == ours[0], stderr  # the last word is engitor's
    return ours[0]


def test_minimal_kernel_is_cached_listed_and_found_again(minimal_kernel: kernel.Kernel):
    assert minimal_kernel.package == "minimal"
    assert minimal_kernel.vmlinuz.is_file() and minimal_kernel.vmlinux.is_file()
    assert hashlib.sha256(minimal_kernel.vmlinuz.read_bytes()).hexdigest() == minimal_kernel.sha256
    # every option of the fragment took effect
    config = kconfig.values(minimal_kernel.config.read_text())
    for opt in kconfig.parse(SHIPPED_FRAGMENT.read_text()):
        assert config.get(opt.name, "n") == opt.value, opt
    t = minimal_kernel.traits()
    assert not t.modules and t.pvh and t.io_apic
    assert t.size < 4 * 2**20
    listed = engitor("kernel", "list", check=True).stdout
    assert any(line.split()[0] == "minimal" and minimal_kernel.sha256[:16] in line
               for line in listed.splitlines()), listed
    again = engitor("kernel", "build", check=True)
    assert "kernel minimal is up to date" in again.stderr
    assert minimal_kernel.sha256[:16] in again.stdout


def test_unknown_fragment_option_is_named_before_anything_is_compiled(minimal_kernel,
                                                                      tmp_path: Path):
    fragment = tmp_path / "bad.config"
    fragment.write_text(SHIPPED_FRAGMENT.read_text() + "CONFIG_VIRTIO_NETT=y\n")
    line_no = len(fragment.read_text().splitlines())
    before = cache_state()
    proc = engitor("kernel", "build", "--config", str(fragment), "--name", "test-bad-option")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert f"{fragment}:{line_no}: CONFIG_VIRTIO_NETT is not an option" in line
    assert "did you mean 'VIRTIO_NET'" in line
    assert cache_state() == before


def test_source_package_that_apt_cannot_fetch(tmp_path: Path):
    (tmp_path / "k.config").write_text("CONFIG_64BIT=y\n")
    recipe = tmp_path / "nosource.lua"
    recipe.write_text('return {source = "linux-source-0.0", config = "k.config",\n'
                      '        build = function(k) end}\n')
    before = cache_state()
    proc = engitor("kernel", "build", str(recipe))
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "kernel source package linux-source-0.0 is not installed and apt cannot fetch it" in line
    assert "hint: apt-get install linux-source-0.0" in line
    assert cache_state() == before


def test_failing_make_shows_its_last_lines_then_one_line_of_ours(minimal_kernel, tmp_path: Path):
    (tmp_path / "k.config").write_text("CONFIG_64BIT=y\n")
    recipe = tmp_path / "broken.lua"
    recipe.write_text('return {source = "linux-source-6.1", config = "k.config",\n'
                      '  build = function(k)\n'
                      '    k.make("engitor-no-such-target")\n'
                      '  end}\n')
    before = cache_state()
    proc = engitor("kernel", "build", str(recipe))
    assert proc.returncode == 2, proc.stderr
    assert "--- the last lines of make's output" in proc.stderr
    # a real failure: the target needs a configured tree, and the recipe configured none
    assert '*** Configuration file ".config" not found!' in proc.stderr
    assert "__sub-make] Error 2" in proc.stderr
    line = one_error_line(proc.stderr)
    assert f"{recipe}:3: kernel build failed: make engitor-no-such-target exited with 2" in line
    assert cache_state() == before
    assert not list(kernel.kernels_dir().glob(".*.tmp"))


def test_unknown_kernel_names(tmp_path: Path):
    proc = engitor("kernel", "build", "minimall")
    assert proc.returncode == 2
    assert "unknown kernel recipe 'minimall'" in one_error_line(proc.stderr)
    assert "did you mean 'minimal'" in proc.stderr
    proc = engitor("run", "--kernel", "no-such-kernel", "/bin/true", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown kernel 'no-such-kernel'" in one_error_line(proc.stderr)


def test_minimal_kernel_not_built_here_says_how_to_build_it(tmp_path: Path):
    proc = engitor("run", "--kernel", "minimal", "/bin/true", cwd=tmp_path,
                   env={"ENGITOR_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "kernel minimal is not built on this machine" in line
    assert "engitor kernel build minimal" in line


@pytest.mark.slow
def test_two_builds_are_identical(minimal_kernel):
    """A second full build (minutes) of the cached kernel: `--force` compares its bytes."""
    from engitor.image import kbuild

    said: list[str] = []
    again = kbuild.build("minimal", force=True, log=said.append)
    assert again.root == minimal_kernel.root
    assert "rebuilt kernel minimal: bzImage and vmlinux identical to the cached build" in said


def test_a_recipe_on_a_base_takes_its_build_and_merges_fragments_in_order():
    """minimal-smp.lua: minimal's source and build, smp.config's values over the fragment's."""
    from engitor.image import kbuild
    from engitor.lua.runtime import Runtime

    path = kbuild.find_recipe("minimal-smp")
    rt = Runtime(base_dir=path.parent, time_limit=None, memory_limit=None)
    env = rt.script_env(fs_root=path.parent)
    smp = kbuild.load_recipe(rt, env, path, None)
    base = kbuild.load_recipe(rt, env, kbuild.find_recipe("minimal"), None)
    assert smp.source == base.source and smp.description == "minimal + SMP (up to 8 CPUs)"
    assert [f.name for f in smp.fragments] == ["engitor-min.config", "smp.config"]
    assert smp.base_text == base.path.read_text()  # its build function is part of its key
    assert smp.patches == base.patches  # taken from the base, found beside the base's recipe
    merged = kbuild.merged_fragment(smp.fragments).splitlines()
    assert "CONFIG_SMP=y" in merged and "# CONFIG_SMP is not set" not in merged
    assert merged.count("CONFIG_ACPI_PROCESSOR=y") == 1
    asked = kbuild.wanted(smp.fragments)
    assert asked["SMP"][1].name == "smp.config" and asked["MODULES"][1].name == "engitor-min.config"
    # a single fragment merges to itself: minimal's key and build are what they were
    assert kbuild.wanted(base.fragments).keys() == \
        {o.name for o in kconfig.parse(SHIPPED_FRAGMENT.read_text())}


def test_patches_go_to_a_copy_of_the_source_and_the_pristine_tree_stays(minimal_kernel):
    """minimal.lua's patches (lapic_timer_period=, fewer virtio console buffers) are in the
    tree its build used, not in the unpacked source other recipes build from; the options they
    add are ones the copy declares, and the built kernel has them."""
    from engitor.image import kbuild, ksource

    pristine = ksource.installed_source("linux-source-6.1")
    assert pristine is not None
    recipe = _load(kbuild.find_recipe("minimal"))
    assert [p.name for p in recipe.patches] == ["lapic-timer-period.patch",
                                                "virtio-console-rx-buffers.patch"]
    patched = ksource.patched_source(pristine, recipe.patches, log=lambda _: None)  # kept: found
    assert patched.tree != pristine.tree and patched.version == pristine.version
    apic = Path("arch/x86/kernel/apic/apic.c")
    assert 'early_param("lapic_timer_period"' in (patched.tree / apic).read_text()
    assert "lapic_timer_period\"" not in (pristine.tree / apic).read_text()
    assert (patched.tree / apic).stat().st_ino != (pristine.tree / apic).stat().st_ino
    # files no patch touches are shared with the pristine tree, not copied
    assert (patched.tree / "Makefile").stat().st_ino == (pristine.tree / "Makefile").stat().st_ino
    assert "X86_LAPIC_TIMER_PERIOD" in patched.symbols()
    assert "X86_LAPIC_TIMER_PERIOD" not in pristine.symbols()
    assert minimal_kernel.traits().lapic_timer_period and minimal_kernel.traits().hz == 100
    console = Path("drivers/char/virtio_console.c")
    assert "rx_buffers_enough" in (patched.tree / console).read_text()
    assert "rx_buffers_enough" not in (pristine.tree / console).read_text()
    assert "VIRTIO_CONSOLE_RX_BUFFERS" in patched.symbols()


def test_a_patch_that_does_not_apply_is_named_and_leaves_nothing(minimal_kernel, tmp_path: Path):
    from engitor.image import ksource

    (tmp_path / "k.config").write_text("CONFIG_64BIT=y\n")
    (tmp_path / "stale.patch").write_text(
        "--- a/arch/x86/kernel/apic/apic.c\n+++ b/arch/x86/kernel/apic/apic.c\n"
        "@@ -1,3 +1,3 @@\n-no such line\n+a new line\n context\n context\n")
    recipe = tmp_path / "stale.lua"
    recipe.write_text('return {source = "linux-source-6.1", config = "k.config",\n'
                      '        patches = {"stale.patch"}, build = function(k) end}\n')
    sources = sorted(os.listdir(ksource.source_dir()))
    before = cache_state()
    proc = engitor("kernel", "build", str(recipe))
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert f"{tmp_path / 'stale.patch'}:1: kernel patch stale.patch does not apply to " \
        "linux-source-6.1" in line
    assert "Hunk #1 FAILED" in line and "hint: make the patch against this source" in line
    assert cache_state() == before
    assert sorted(os.listdir(ksource.source_dir())) == sources  # no half-patched tree
    (tmp_path / "stale.patch").unlink()
    proc = engitor("kernel", "build", str(recipe))
    assert proc.returncode == 2
    assert f"kernel patch {tmp_path / 'stale.patch'}: no such file" in one_error_line(proc.stderr)


def test_patches_that_are_not_a_list_of_files(tmp_path: Path):
    (tmp_path / "k.config").write_text("CONFIG_64BIT=y\n")
    recipe = tmp_path / "onepatch.lua"
    recipe.write_text('return {source = "linux-source-6.1", config = "k.config",\n'
                      '        patches = "x.patch", build = function(k) end}\n')
    before = cache_state()
    proc = engitor("kernel", "build", str(recipe))
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert f"{recipe}:1: kernel recipe's patches is not a list of file names" in line
    assert 'hint: patches = {"NAME.patch"}' in line
    assert cache_state() == before


def test_patched_files_are_read_from_the_diff():
    from engitor.image import ksource

    diff = ("--- a/arch/x86/Kconfig\t2026-01-01\n+++ b/arch/x86/Kconfig\t2026-01-01\n@@ -1 +1 @@\n"
            "--- /dev/null\n+++ b/drivers/new.c\n@@ -0,0 +1 @@\n+int x;\n"
            "--- a/gone.c\n+++ /dev/null\n")
    assert ksource.patched_files(diff) == ["arch/x86/Kconfig", "drivers/new.c"]


def test_a_patched_copy_shares_what_no_patch_writes(tmp_path: Path):
    """On a small tree: the patched file is a file of its own, the rest are the pristine tree's
    hard links, and a patch whose text is not UTF-8 (a Latin-1 name in its header) applies."""
    from engitor.image import ksource

    tree = tmp_path / "src_1.0"
    (tree / "lib").mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n")
    (tree / "lib" / "a.c").write_text("int a = 1;\nint b = 2;\n")
    patch = tmp_path / "a.patch"
    patch.write_bytes("From: Ren\xe9\n".encode("latin-1") +
                      b"--- a/lib/a.c\n+++ b/lib/a.c\n@@ -1,2 +1,2 @@\n-int a = 1;\n+int a = 3;\n"
                      b" int b = 2;\n")
    pristine = ksource.Source("src", "1.0", tree)
    said: list[str] = []
    patched = ksource.patched_source(pristine, (patch,), said.append)
    assert said == ["applying 1 patch to src 1.0"]
    assert (patched.tree / "lib" / "a.c").read_text() == "int a = 3;\nint b = 2;\n"
    assert (tree / "lib" / "a.c").read_text() == "int a = 1;\nint b = 2;\n"
    assert (patched.tree / "Makefile").stat().st_ino == (tree / "Makefile").stat().st_ino
    assert ksource.patched_source(pristine, (patch,), said.append) == patched  # kept: found
    assert len(said) == 1


def _load(path: Path):
    from engitor.image import kbuild
    from engitor.lua.runtime import Runtime

    rt = Runtime(base_dir=path.parent, time_limit=None, memory_limit=None)
    return kbuild.load_recipe(rt, rt.script_env(fs_root=path.parent), path, None)


def test_an_image_on_the_minimal_kernel_is_not_exported_as_a_disk(minimal_kernel, programs: Path,
                                                                  tmp_path: Path):
    """Exported disks boot on PC machines and clouds (virtio-pci, drivers as modules): the
    microvm-only kernel is refused in one line that says which kernel to build with."""
    out = tmp_path / "x.raw"
    proc = engitor("export", "--kernel", "minimal", "-f", "raw", "-o", str(out),
                   str(programs / "exit3"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)  # said before building, so the only line
    assert "image's kernel minimal is built for engitor's microvm" in line
    assert "Debian's kernel, the default" in line
    assert not out.exists()
