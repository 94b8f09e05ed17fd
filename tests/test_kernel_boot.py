"""The same programs on both kernels: Debian's cloud kernel (the default) and engitor's minimal
one (recipes/kernels/minimal.lua, built once per machine by the `minimal_kernel` fixture).

A chosen subset of the boot tests: a static program and a dynamic one run to their exit code,
a server answers through a port forward and stops gracefully (ACPI power button -> SIGTERM ->
exit 0), and the Lua VM API drives a recipe that says `kernel = "minimal"`."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from support import compile_c, engitor, free_port, http_get, spawn, wait_for

from engitor.image import hosttools, pipeline
from engitor.recipe.model import Accel, MiB
from engitor.recipe.settings import make_image
from engitor.shell.session import Session
from engitor.vm import qemu, runner

# The first test to ask for the minimal kernel builds it when the cache lacks it (minutes).
pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]

PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture(scope="module")
def static_exit3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("static") / "exit3"
    return compile_c(PROGRAMS / "exit3.c", out, "-static")


@pytest.mark.parametrize("linking", ["static", "dynamic"])
def test_program_runs_to_its_exit_code(kernel_name: str, linking: str, static_exit3: Path,
                                       programs: Path, tmp_path: Path):
    program = static_exit3 if linking == "static" else programs / "exit3"
    proc = engitor("run", "-q", "--kernel", kernel_name, str(program), "--name", "box",
                   "-e", "GREETING=hi", "--", "one", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == ["argc=2 host=box greeting=hi cwd=/", "arg[1]=one"]


def test_server_answers_through_a_port_forward_and_stops_gracefully(kernel_name: str,
                                                                    programs: Path,
                                                                    tmp_path: Path):
    port = free_port()
    proc = spawn("run", "--kernel", kernel_name, str(programs / "server"),
                 "-p", f"{port}:8080", "--", "-port", "8080", "-name", "k", cwd=tmp_path)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz"), what="the server")
        assert http_get(f"http://127.0.0.1:{port}/args") == \
            f"{programs / 'server'}\n-port\n8080\n-name\nk\n"
        # Ctrl-C: the ACPI power button, the init's SIGTERM, the server's clean exit
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "k: serving" in out


def test_lua_vm_api_runs_a_recipe_on_the_minimal_kernel(minimal_kernel, programs: Path,
                                                        tmp_path: Path):
    (tmp_path / "server").write_bytes((programs / "server").read_bytes())
    (tmp_path / "server").chmod(0o755)
    (tmp_path / "small.lua").write_text(
        'image "small" { program = "server", args = {"-port", 8080, "-name", "small"},\n'
        '                ports = {8080}, kernel = "minimal", memory = "48M" }\n')
    out, err = io.StringIO(), io.StringIO()
    shell = Session(out=out, err=err, cwd=tmp_path, interactive=False)
    name = f"small-{uuid.uuid4().hex[:6]}"
    try:
        assert shell.execute(f'vm = engitor.run("{tmp_path}/small.lua", {{name = "{name}", '
                             'accel = "tcg", '
                             'ports = {engitor.free_port() .. ":8080"}})'), err.getvalue()
        assert shell.execute("port = vm:wait_port(8080, 180)"), err.getvalue()
        assert shell.execute('print(sh.curl("-s", "http://127.0.0.1:" .. port .. "/healthz"))')
        assert shell.execute('print("stopped", vm:stop())'), err.getvalue()
    finally:
        shell.close()
    assert out.getvalue().splitlines() == ["ok small", "stopped\t0"], err.getvalue()
    built = engitor("build", "-q", "small.lua", cwd=tmp_path, check=True).stdout.strip()
    listed = engitor("images", cwd=tmp_path, check=True).stdout
    assert built[:12] in listed


def test_smp_on_the_one_cpu_kernel_runs_and_says_it_uses_one(minimal_kernel, static_exit3: Path,
                                                             tmp_path: Path):
    proc = engitor("run", "--kernel", "minimal", "--smp", "2", str(static_exit3), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "the kernel uses 1 of the 2 CPUs (built for one; engitor kernel build minimal-smp" \
        in proc.stderr


def test_a_named_volume_keeps_its_data_and_a_stored_image_boots_with_it(kernel_name: str,
                                                                        programs: Path,
                                                                        tmp_path: Path):
    """virtio-blk and ext4 on each kernel (built in on the minimal one, modules on Debian's);
    then the image again from the store by its name, no recipe, the same volume attached."""
    volume, name = f"counts-{uuid.uuid4().hex[:6]}", f"counter-{uuid.uuid4().hex[:6]}"
    run = ("run", "-q", "--kernel", kernel_name, "-n", name, "-v", f"{volume}:/data",
           str(programs / "counter"), "--", "/data")
    for expected in ("count=1", "count=2"):
        proc = engitor(*run, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1] == expected
    stored = engitor("run", "-q", name, cwd=tmp_path)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip().splitlines()[-1] == "count=3"
    engitor("volume", "rm", volume, check=True)


def test_the_apic_timer_rate_given_under_tcg_is_the_one_the_guest_measures(minimal_kernel,
                                                                          static_exit3: Path,
                                                                          tmp_path: Path):
    """lapic_timer_period= spares the guest the 100 ms loop that measures its APIC timer; the
    count engitor gives (QEMU's emulated timer at 1 GHz) must be what that loop would find."""
    stored = pipeline.build(make_image("apic-rate", {"program": str(static_exit3),
                                                     "kernel": "minimal"}))
    given, _ = runner.kernel_tuning(stored.kernel_traits, 1, Accel.TCG)
    assert len(given) == 1 and given[0].startswith("lapic_timer_period=")
    period = int(given[0].split("=")[1])

    def boot(args: tuple[str, ...]) -> str:
        spec = qemu.VMSpec(kernel=stored.vmlinux or stored.kernel, initrd=stored.initrd,
                           cmdline=stored.cmdline.replace("quiet", "apic=verbose"),
                           host_cmdline=args + runner.host_cmdline(hosttools),
                           console=tmp_path / f"console{len(args)}.log",
                           accel=Accel.TCG, memory=64 * MiB, pic=False)
        subprocess.run(qemu.argv(spec), timeout=120, capture_output=True)
        return spec.console.read_text(errors="replace")

    measured = re.search(r"calibration result: (\d+)", boot(()))
    assert measured, "the guest did not calibrate its APIC timer"
    assert abs(int(measured.group(1)) - period) < period / 100
    taken = boot(given)
    assert f"lapic timer already calibrated {period}" in taken and "calibration result" not in taken
    assert "argc=1" in taken  # and the program ran (the other tests here boot with it too)
