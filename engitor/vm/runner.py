"""Running an image: pick the accelerator, start QEMU, stream the console, return the fate.

`launch()` starts a VM (foreground or detached) and returns its `Instance`; `follow()` streams
its console until the program ends, enforcing the boot watchdog, and turns what the guest init
reported into an `Outcome` whose `exit_status` is what `engitor run` exits with.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engitor import store
from engitor.errors import UserError
from engitor.kernel_traits import KernelTraits
from engitor.proc import exit_words
from engitor.recipe.model import Accel, Image, MiB, Start
from engitor.vm import accel as accel_mod
from engitor.vm import host, initrd, limits, qemu, ready, snapshot, volumes
from engitor.vm.instance import (
    Instance,
    Meta,
    ProgramOutput,
    Status,
    check_ports_free,
    qmp_socket,
    run_dir,
    start,
    unique_name,
)

EXIT_VM_FAILED = 125  # engitor's own failure to run the program (as docker run uses it)
LAST_LINES = 10


@dataclass
class Outcome:
    status: Status
    reason: str  # exited | signaled | panic | watchdog | vm-died | stopped
    message: str = ""
    last_lines: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        if self.reason == "stopped" and (self.status.graceful_stop or not self.status.finished):
            return 0 if self.status.graceful_stop else EXIT_VM_FAILED
        if self.status.code is not None:
            return self.status.code
        if self.status.signal is not None:
            return 128 + self.status.signal
        return EXIT_VM_FAILED


def host_cmdline(tools: host.Tools) -> tuple[str, ...]:
    """Kernel arguments that depend on this host, added at run time (not part of the image).

    ENGITOR_TSC_KHZ overrides the measured TSC frequency; 0 passes none (to reproduce the
    calibration hang this avoids, as bench/boot_stress.py --no-tsc does).
    """
    override = os.environ.get("ENGITOR_TSC_KHZ")
    khz = int(override) if override and override.isdigit() else host.tsc_khz(tools)
    # Under TCG the guest's TSC is the host's constant one; the kernel's clocksource watchdog,
    # comparing it with emulated timer ticks that arrive late, would otherwise mark it unstable
    # and fall back to jiffies (4 ms resolution for the program's clocks).
    return (f"tsc_early_khz={khz}", "tsc=reliable") if khz else ()


def kernel_tuning(traits: KernelTraits, cpus: int, accel: Accel) -> tuple[tuple[str, ...], bool]:
    """(kernel arguments, keep the 8259 PIC) for a kernel with these traits.

    pic=off (microvm) suits a kernel that routes interrupts through the IO-APIC (measured
    faster in bench/bench_kernel.py). Under TCG a kernel that takes lapic_timer_period= is
    given the emulated APIC timer's count per jiffy, and skips the 100 ms loop that would
    measure it (KVM guests mostly have a TSC-deadline timer, which needs no calibration; their
    APIC rate is the host kernel's to choose, so it is not assumed). `noapictimer`, the other
    way to skip that loop, leaves the PIT as the tick, and microvm's ACPI tables route no IRQ0 to
    it: a sleep never returns (recipes/kernels/README.md).
    """
    del cpus  # the same for any CPU count today; kept for the SMP kernel to come
    args: tuple[str, ...] = ()
    if accel is Accel.TCG and traits.lapic_timer_period and traits.hz:
        args = (f"lapic_timer_period={qemu.TCG_APIC_TIMER_HZ // traits.hz}",)
    return args, not (traits.io_apic and not traits.modules)


def tcg_tb_size(memory: int, start: Start = Start.BOOT) -> int:
    """MiB of TCG translation cache for a guest of `memory` bytes: a quarter of it, 16-256
    (8-256 for a snapshot start).

    QEMU's default lets the cache grow to 1 GiB, and an idle VM's host memory is mostly its
    guest RAM plus the translated code it ever ran; a guest given little memory runs little code
    (the web server on the minimal kernel: bench/bench_kernel.py). When the cache fills, QEMU
    flushes and translates again: slower, never wrong. A restored VM translates only what runs
    after the save, so a small one gets a smaller cache: 16 idle web servers of 32 MiB restored
    with 8 MiB held 61 MiB each (RSS) and all served in 4.8 s, with 16 MiB 67 MiB and 3.9 s
    (bench/bench_snapshot.py).
    """
    least = 8 if start is Start.SNAPSHOT else 16
    return max(least, min(256, memory // MiB // 4))


def launch(stored: store.StoredImage, image: Image, *, detached: bool = False,
           name: str | None = None, log: Callable[[str], None] = lambda _: None,
           owner: int | None = None, tools: host.Tools) -> Instance:
    """Start a VM for a built image; `image` supplies the run settings (ports, memory, …);
    `tools` the image-stage parts the host probes need (engitor.image.hosttools)."""
    check_ports_free(image.ports)  # again: ports may have been taken while the image was built
    limits.before_boot(image, stored.kernel, stored.manifest, qemu.find_qemu())
    choice = accel_mod.choose(image.accel, stored.kernel, tools)
    log(choice.line())
    with volumes.attached(image.volumes, stored.initrd, image.base_dir, log) as disks:
        return _start(stored, image, choice, disks, detached=detached, name=name, owner=owner,
                      log=log, tools=tools)


def _start(stored: store.StoredImage, image: Image, choice: accel_mod.Choice,
           disks: list[volumes.Attached], *, detached: bool, name: str | None,
           owner: int | None, log: Callable[[str], None], tools: host.Tools) -> Instance:
    vm_name = unique_name(name or image.name)
    directory = run_dir() / vm_name
    directory.mkdir(parents=True)
    traits = stored.kernel_traits
    tuning, pic = kernel_tuning(traits, image.cpus, choice.accel)
    if traits.usable_cpus(image.cpus) < image.cpus:
        log(f"the kernel uses {traits.usable_cpus(image.cpus)} of the {image.cpus} CPUs "
            f"(built for {'one' if not traits.smp else traits.max_cpus}"
            + ("; engitor kernel build minimal-smp, then --kernel minimal-smp, for more)"
               if not traits.smp else ")"))
    spec = qemu.VMSpec(
        kernel=stored.vmlinux if traits.pvh and stored.vmlinux else stored.kernel,
        initrd=initrd.for_boot(stored, image.memory, choice.accel, log), cmdline=stored.cmdline,
        console=directory / "console.log", memory=image.memory, cpus=image.cpus,
        accel=choice.accel, ports=image.ports, qmp=qmp_socket(directory), name=vm_name,
        host_cmdline=tuning + (host_cmdline(tools) if choice.accel is Accel.TCG else ()),
        pic=pic,
        tb_size=tcg_tb_size(image.memory, image.start) if choice.accel is Accel.TCG else None,
        disks=tuple((d.path, d.mount.serial) for d in disks),
        channel=directory / "report.log",
    )
    meta = Meta(name=vm_name, image=stored.id, image_name=image.name, pid=0,
                owner=None if detached else (owner or os.getpid()), started=time.time(),
                accel=choice.accel.value, ports=[str(p) for p in image.ports],
                argv=stored.manifest.get("argv", []), stop_timeout=image.stop_timeout,
                boot_timeout=image.boot_timeout, volumes=[d.describe() for d in disks])
    locks = tuple(d.fd for d in disks)
    if image.start is Start.SNAPSHOT:
        return _snapshot_start(stored, spec, meta, detached=detached, log=log, locks=locks)
    return start(spec, meta, directory, detached=detached, keep_fds=locks)


def _snapshot_start(stored: store.StoredImage, spec: qemu.VMSpec, meta: Meta, *,
                    detached: bool, log: Callable[[str], None],
                    locks: tuple[int, ...]) -> Instance:
    """Restore the VM saved for these settings; without a save, boot, save and restore
    (vm/snapshot.py). A save that no longer restores is made again. `locks`: the volume
    locks each QEMU holds for its life."""
    spec = snapshot.with_hold(spec)
    state = snapshot.state_path(stored.snapshots, spec, qemu.find_qemu())
    held = functools.partial(_held, spec, state, meta, detached=detached, log=log, locks=locks)
    if state.is_file():
        try:
            return held()[0]
        except snapshot.Unfit as err:
            state.unlink(missing_ok=True)
            log(f"the saved VM did not resume ({err}); booting to save it again")
    inst, saved = held()
    if not saved:
        return inst  # it runs on as booted
    try:
        return held()[0]
    except snapshot.Unfit as err:
        state.unlink(missing_ok=True)
        raise UserError(f"the VM saved just now did not resume: {err}",
                        hint="start it with --start boot") from None


def _held(spec: qemu.VMSpec, state: Path, meta: Meta, *, detached: bool,
          log: Callable[[str], None], locks: tuple[int, ...]) -> tuple[Instance, bool]:
    """QEMU started with the hold port (and the save, when `state` exists), let go or saved:
    the instance, and whether it was saved (and so has ended, its folder gone)."""
    directory = spec.console.parent
    directory.mkdir(parents=True, exist_ok=True)
    with snapshot.prepared(spec, state) as (given, hold, fds):
        inst = start(given, meta, directory, detached=detached, keep_fds=fds + locks)
    try:
        saved = snapshot.release(inst, hold, log)
    except snapshot.Unfit:
        inst.kill()
        inst.remove()
        raise
    if saved:
        inst.remove()
    return inst, saved


def wait_started(inst: Instance) -> None:
    """Return once the guest's init has started the program (its start line on the console);
    if QEMU or the guest fails first, remove the instance and raise QEMU's own words."""
    began = time.monotonic()
    while not inst.status.started:
        inst.poll_console()
        if inst.status.started:
            break
        if not inst.alive():
            outcome = _outcome(inst, None)
            inst.remove()
            raise UserError(f"VM {inst.name} failed to start: {inst.qemu_error() or outcome.message}",
                            hint="see 'engitor run' without -d for the whole console")
        if time.monotonic() - began > inst.meta.boot_timeout:
            inst.kill()
            inst.remove()
            raise UserError(f"VM {inst.name} did not start the program within "
                            f"{inst.meta.boot_timeout} s", hint="raise boot_timeout, or run "
                            "without -d to see the console")
        time.sleep(0.05)


@dataclass
class Events:
    """What `follow` tells as it happens, each at most once."""

    started: Callable[[Instance], None] = lambda _: None
    ready: Callable[[Instance], None] = lambda _: None  # listens on every forwarded TCP port
    daemonized: Callable[[Instance], None] = lambda _: None
    loopback: Callable[[Instance, int], None] = lambda _, __: None  # unreachable listener
    seen: set[str] = field(default_factory=set)

    def check(self, inst: Instance) -> None:
        st = inst.status
        for port in ready.waited_ports(inst.ports) if inst.listening.addrs else ():
            if inst.listening.loopback_only(port) and f"loopback{port}" not in self.seen:
                self.seen.add(f"loopback{port}")
                self.loopback(inst, port)
        for name, happened in (("started", st.started), ("ready", inst.ready),
                               ("daemonized", st.daemon_left is not None)):
            if happened and name not in self.seen:
                self.seen.add(name)
                getattr(self, name)(inst)


def follow(inst: Instance, *, out: TextIO | None = sys.stdout, events: Events | None = None,
           stop_requested: Callable[[], bool] = lambda: False) -> Outcome:
    """Stream the console until QEMU exits; enforce the boot watchdog."""
    began = time.monotonic()
    show = _Display(out)
    events = events or Events()
    stopping = False
    kill_at = 0.0
    exit_seen_at: float | None = None
    while True:
        show(inst.poll_console())
        events.check(inst)
        if stop_requested() and not stopping:
            # Asked, not waited for: the program's last words still stream meanwhile.
            stopping = True
            inst.request_stop()
            kill_at = time.monotonic() + inst.meta.stop_timeout + 3
        if stopping and time.monotonic() > kill_at:
            inst.kill()
        if inst.status.finished and exit_seen_at is None:
            exit_seen_at = time.monotonic()
        if not inst.alive():
            break
        if exit_seen_at and time.monotonic() - exit_seen_at > 5:
            inst.kill()  # the init powered off; QEMU should be gone already
        if not inst.status.started and time.monotonic() - began > inst.meta.boot_timeout:
            inst.kill()
            return _outcome(inst, "watchdog")
        time.sleep(0.02)
    show(inst.poll_console(final=True), final=True)
    return _outcome(inst, "stopped" if stopping and not inst.status.finished else None)


class _Display:
    """Writes the program's console lines, minus ours and the blank line the init puts before
    each status line (so they start a fresh line even after unterminated output)."""

    def __init__(self, out: TextIO | None):
        self.out = out
        self.program = ProgramOutput()

    def __call__(self, lines: list[tuple[str, bool]], final: bool = False) -> None:
        if self.out is None:
            return
        for line in self.program.feed(lines, final):
            self.out.write(line + "\n")
        self.out.flush()


def _outcome(inst: Instance, forced: str | None) -> Outcome:
    st = inst.status
    last = [line for line in inst.console.lines if line.strip()][-LAST_LINES:]
    if forced == "watchdog":
        return Outcome(st, "watchdog", f"the VM did not start the program within "
                                       f"{inst.meta.boot_timeout} s", last)
    if st.graceful_stop:
        return Outcome(st, "stopped", "stopped")
    ignored = [w for w in st.warnings if "ignored SIGTERM" in w]
    if st.stopping and ignored and st.signal is not None:
        # The stop timeout ran out: say why the program died of SIGKILL.
        return Outcome(st, "signaled", ignored[-1].replace("killing it", "killed by SIGKILL"))
    if st.signal is not None:
        return Outcome(st, "signaled", f"program {exit_words(-st.signal)}")
    if st.code is not None:
        msg = "; ".join(st.errors) if st.errors else \
            (f"program exited with code {st.code}" if st.code else "")
        return Outcome(st, "exited", msg, last if st.errors else [])
    if st.panic:
        return Outcome(st, "panic", f"kernel panic: {st.panic}", last)
    if forced == "stopped":
        return Outcome(st, "stopped", "stopped before the program finished", last)
    qemu_log = (inst.dir / "qemu.log")
    err = qemu_log.read_text(errors="replace").strip().splitlines() if qemu_log.exists() else []
    why = f" ({err[-1]})" if err else ""
    return Outcome(st, "vm-died", f"the VM stopped before the program finished{why}", last)


def interruptible() -> tuple[Callable[[], bool], Callable[[], None]]:
    """Ctrl-C (or SIGTERM) once: stop the program gracefully; twice: abort at once."""
    received = {"n": 0}

    def handler(signum: int, frame: object) -> None:
        received["n"] += 1
        if received["n"] > 1:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return (lambda: received["n"] > 0), restore
