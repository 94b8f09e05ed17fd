"""Kernel configs and traits: parsing, checking a fragment against a final .config, reading
a kernel's sizes and capabilities; the runner's choices from them."""

import dataclasses
from pathlib import Path

from engitor.image import kconfig
from engitor.kernel_traits import KernelTraits
from engitor.recipe.model import Accel, Start
from engitor.vm import qemu, runner

FRAGMENT = """# a comment
CONFIG_ACPI=y
# CONFIG_MODULES is not set
CONFIG_PHYSICAL_START=0x200000
CONFIG_INPUT_EVDEV=y
CONFIG_NO_SUCH_THING=y
"""

FINAL = """#
# Automatically generated file; DO NOT EDIT.
CONFIG_ACPI=y
CONFIG_PHYSICAL_START=0x200000
# CONFIG_INPUT_EVDEV is not set
CONFIG_SMP=y
CONFIG_NR_CPUS=4
"""


def test_parse_reads_set_and_unset_options_with_their_lines():
    opts = kconfig.parse(FRAGMENT)
    assert [(o.name, o.value, o.line) for o in opts] == [
        ("ACPI", "y", 2), ("MODULES", "n", 3), ("PHYSICAL_START", "0x200000", 4),
        ("INPUT_EVDEV", "y", 5), ("NO_SUCH_THING", "y", 6)]


def test_check_names_unknown_and_unstuck_options_and_accepts_absent_unset_ones():
    known = {"ACPI", "MODULES", "PHYSICAL_START", "INPUT_EVDEV", "SMP", "NR_CPUS"}
    bad = kconfig.check(kconfig.parse(FRAGMENT), kconfig.values(FINAL), known)
    assert [(m.option.name, m.got, m.known) for m in bad] == [
        ("INPUT_EVDEV", "n", True), ("NO_SUCH_THING", None, False)]
    assert bad[0].describe() == ("CONFIG_INPUT_EVDEV did not take effect (asked =y, the config "
                                 "has it not set: its dependencies are not met)")
    assert bad[1].describe() == "CONFIG_NO_SUCH_THING is not an option of this kernel source"


def test_declared_symbols_reads_config_and_menuconfig_entries(tmp_path: Path):
    (tmp_path / "drivers").mkdir()
    (tmp_path / "Kconfig").write_text('config ACPI\n\tbool "ACPI"\nmenuconfig NETDEVICES\n')
    (tmp_path / "drivers" / "Kconfig.x").write_text("  config VIRTIO_NET\n# config NOT_ME\n")
    assert kconfig.declared_symbols(tmp_path) == {"ACPI", "NETDEVICES", "VIRTIO_NET"}


def test_traits_of_debians_kernel_from_its_own_config(kernel_pkg):
    t = kernel_pkg.traits()
    assert t.modules and t.smp and t.io_apic
    assert not t.pvh  # its .deb ships only the bzImage
    assert t.size == kernel_pkg.vmlinuz.stat().st_size
    # the decompressed kernel needs far more memory than the file's size
    assert t.init_size > t.size


def test_bzimage_init_size_is_zero_for_a_file_that_is_not_a_bzimage(tmp_path: Path):
    f = tmp_path / "x"
    f.write_bytes(b"\0" * 4096)
    assert kconfig.bzimage_init_size(f) == 0
    assert not kconfig.has_pvh_note(f)


def test_traits_round_trip_through_json_and_default_to_debians():
    t = KernelTraits(modules=False, smp=False, max_cpus=1, pvh=True, size=3, init_size=9,
                     vmlinux_size=7)
    assert KernelTraits.from_json(t.to_json()) == t
    assert KernelTraits.from_json({"modules": False, "from_the_future": 1}) == \
        KernelTraits(modules=False)
    assert KernelTraits.from_json(None) == KernelTraits()
    assert t.loaded_size == 7 and KernelTraits(size=5).loaded_size == 5


def test_runner_tunes_a_single_cpu_kernel_and_leaves_debians_alone():
    small = KernelTraits(modules=False, smp=False, max_cpus=1, io_apic=True, pvh=True)
    assert runner.kernel_tuning(small, 1, Accel.TCG) == ((), False)  # noapictimer: never
    assert runner.kernel_tuning(KernelTraits(), 1, Accel.TCG) == ((), True)
    assert small.usable_cpus(4) == 1
    assert KernelTraits(smp=True, max_cpus=2).usable_cpus(4) == 2


def test_the_apic_timer_rate_is_given_under_tcg_to_a_kernel_that_takes_it():
    patched = KernelTraits(modules=False, io_apic=True, hz=100, lapic_timer_period=True)
    # QEMU's emulated APIC timer counts at 1 GHz: 10,000,000 a jiffy at HZ=100
    assert runner.kernel_tuning(patched, 1, Accel.TCG) == (("lapic_timer_period=10000000",), False)
    assert runner.kernel_tuning(dataclasses.replace(patched, hz=250), 1, Accel.TCG)[0] == \
        ("lapic_timer_period=4000000",)
    # KVM: the host kernel's APIC rate is not assumed; a kernel without the patch is never given it
    assert runner.kernel_tuning(patched, 1, Accel.KVM) == ((), False)
    unpatched = dataclasses.replace(patched, lapic_timer_period=False)
    assert runner.kernel_tuning(unpatched, 1, Accel.TCG) == ((), False)
    assert runner.kernel_tuning(dataclasses.replace(patched, hz=0), 1, Accel.TCG) == ((), False)


def test_traits_read_the_tick_rate_and_the_apic_timer_option(tmp_path: Path):
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"\0" * 4096)
    t = kconfig.traits({"HZ": "100", "X86_LAPIC_TIMER_PERIOD": "y"}, bz)
    assert (t.hz, t.lapic_timer_period) == (100, True)
    assert (kconfig.traits({}, bz).hz, kconfig.traits({}, bz).lapic_timer_period) == (0, False)


def test_qemu_argv_turns_the_pic_off_on_request(tmp_path: Path):
    spec = qemu.VMSpec(kernel=tmp_path / "vmlinux", initrd=tmp_path / "initrd", cmdline="quiet",
                       console=tmp_path / "console", accel=Accel.TCG, pic=False)
    argv = qemu.argv(spec)
    assert argv[argv.index("-M") + 1] == "microvm,accel=tcg,rtc=on,pic=off"
    assert argv[argv.index("-kernel") + 1] == str(tmp_path / "vmlinux")


def test_tcg_translation_cache_follows_guest_memory(tmp_path: Path):
    MiB = 2**20
    assert [runner.tcg_tb_size(m * MiB) for m in (24, 128, 256, 768, 4096)] == [16, 32, 64, 192, 256]
    # a restored VM translates only what runs after the save
    assert [runner.tcg_tb_size(m * MiB, Start.SNAPSHOT) for m in (24, 32, 64, 128)] == [8, 8, 16, 32]
    spec = qemu.VMSpec(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="quiet",
                       console=tmp_path / "c", accel=Accel.TCG, tb_size=16)
    argv = qemu.argv(spec)
    assert argv[argv.index("-M") + 1] == "microvm,rtc=on"
    assert argv[argv.index("-accel") + 1] == "tcg,tb-size=16"
