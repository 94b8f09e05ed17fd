"""QEMU command lines are pure data: checked here without running QEMU."""

from pathlib import Path

from engitor.recipe.model import Accel, MiB, Port, Proto
from engitor.recipe.settings import parse_port
from engitor.vm import qemu


def spec(**kw):
    base = {"kernel": Path("/k/vmlinuz"), "initrd": Path("/k/initrd"), "cmdline": "console=ttyS0 quiet",
                "console": Path("/run/x/console.log")}
    return qemu.VMSpec(**{**base, **kw})


def opt(argv, flag):
    """Every value given to `flag`, in order."""
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_tcg_machine_and_boot():
    argv = qemu.argv(spec(memory=128 * MiB, cpus=2), qemu="qemu")
    assert argv[0] == "qemu"
    assert opt(argv, "-M") == ["microvm,accel=tcg,rtc=on"]
    assert opt(argv, "-cpu") == ["max,-erms"]  # every feature TCG has but byte-wise rep movs
    assert opt(argv, "-m") == ["128M"]
    assert opt(argv, "-smp") == ["2"]
    assert opt(argv, "-kernel") == ["/k/vmlinuz"]
    assert opt(argv, "-initrd") == ["/k/initrd"]
    assert opt(argv, "-append") == ["console=ttyS0 quiet"]
    for flag in ("-nodefaults", "-no-user-config", "-nographic", "-no-reboot"):
        assert flag in argv
    assert opt(argv, "-chardev") == ["file,id=con0,path=/run/x/console.log"]
    assert opt(argv, "-serial") == ["chardev:con0"]


def test_kvm_uses_host_cpu():
    argv = qemu.argv(spec(accel=Accel.KVM))
    assert opt(argv, "-M") == ["microvm,accel=kvm,rtc=on"]
    assert opt(argv, "-cpu") == ["host"]


def test_host_cmdline_appended_after_image_cmdline():
    argv = qemu.argv(spec(host_cmdline=("tsc_early_khz=2596122",)))
    assert opt(argv, "-append") == ["console=ttyS0 quiet tsc_early_khz=2596122"]


def test_devices_virtio_mmio_net_and_rng():
    argv = qemu.argv(spec())
    assert opt(argv, "-device") == ["virtio-net-device,netdev=n0", "virtio-rng-device,rng=rng0"]
    assert opt(argv, "-netdev") == ["user,id=n0"]


def test_port_forwards_loopback_by_default():
    ports = (Port(8080, 8080), Port(9000, 80), Port(5353, 53, Proto.UDP),
             Port(8443, 443, bind="0.0.0.0"))
    argv = qemu.argv(spec(ports=ports))
    assert opt(argv, "-netdev") == [
        "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:8080,hostfwd=tcp:127.0.0.1:9000-:80,"
        "hostfwd=udp:127.0.0.1:5353-:53,hostfwd=tcp:0.0.0.0:8443-:443"]


def test_port_specs_from_all_spellings_become_the_same_forward():
    assert qemu.hostfwd(parse_port("8080:80")) == qemu.hostfwd(parse_port("8080-80")) == \
        "hostfwd=tcp:127.0.0.1:8080-:80"
    assert qemu.hostfwd(parse_port(8080)) == "hostfwd=tcp:127.0.0.1:8080-:8080"
    assert qemu.hostfwd(parse_port("53/udp")) == "hostfwd=udp:127.0.0.1:53-:53"


def test_qmp_and_pidfile():
    argv = qemu.argv(spec(qmp=Path("/r/qmp.sock"), pidfile=Path("/r/qemu.pid")))
    assert opt(argv, "-qmp") == ["unix:/r/qmp.sock,server=on,wait=off"]
    assert opt(argv, "-pidfile") == ["/r/qemu.pid"]
    assert "-qmp" not in qemu.argv(spec())


def test_sandbox_on_by_default_and_off_on_request():
    argv = qemu.argv(spec())
    assert opt(argv, "-sandbox") == [
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    assert "-sandbox" not in qemu.argv(spec(sandbox=False))


def test_console_and_qmp_as_inherited_descriptors():
    argv = qemu.argv(spec(console_fd=5, qmp=Path("/r/qmp.sock"), qmp_fd=6))
    assert opt(argv, "-add-fd") == ["fd=5,set=1"]
    assert "file,id=con0,path=/dev/fdset/1" in opt(argv, "-chardev")
    assert "socket,id=qmp0,fd=6,server=on,wait=off" in opt(argv, "-chardev")
    assert opt(argv, "-mon") == ["chardev=qmp0,mode=control"]
    assert "-qmp" not in argv  # the socket is engitor's, bound before QEMU starts
