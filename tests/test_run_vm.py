"""`engitor run` booting real VMs under QEMU: serving, exit codes, signals, redis, failures."""

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from support import engitor, free_port, http_get, spawn, wait_for

pytestmark = pytest.mark.vm


def test_c_http_server_serves_then_exits_with_the_requested_code(programs: Path, tmp_path: Path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www/index.html").write_text("<h1>served from a micro-VM</h1>\n")
    shutil.copy2(programs / "server", tmp_path / "server")
    port = free_port()
    proc = spawn("run", "./server", "-p", f"{port}:8080", "--dir", "www",
                 "--", "-port", "8080", "-root", "/www", "-name", "t", cwd=tmp_path)
    try:
        page = wait_for(lambda: http_get(f"http://127.0.0.1:{port}/"), what="the page")
        assert page == "<h1>served from a micro-VM</h1>\n"
        assert http_get(f"http://127.0.0.1:{port}/args") == "/server\n-port\n8080\n-root\n/www\n-name\nt\n"
        assert http_get(f"http://127.0.0.1:{port}/exit?code=5") == "bye 5\n"
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 5, err
    assert "t: serving /www on port 8080" in out
    assert "program exited with code 5" in err
    assert "@@engitor" not in out  # status lines are engitor's, not the program's output
    assert f"forwarding 127.0.0.1:{port}->8080/tcp" in err


def test_exit_code_argv_env_hostname(programs: Path, tmp_path: Path):
    proc = engitor("run", "-q", str(programs / "exit3"), "-e", "GREETING=hello there",
                   "--name", "box", "--", "first arg", "-x", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "argc=3 host=box greeting=hello there cwd=/"
    assert lines[1:] == ["arg[1]=first arg", "arg[2]=-x"]


def test_segfault_is_reported_with_the_signal_name(programs: Path, tmp_path: Path):
    proc = engitor("run", str(programs / "segv"), cwd=tmp_path)
    assert proc.returncode == 128 + signal.SIGSEGV
    assert "about to crash" in proc.stdout
    assert "program killed by SIGSEGV (signal 11)" in proc.stderr


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_redis_from_debian_answers_ping_and_a_benchmark_then_stops_on_ctrl_c(tmp_path: Path):
    port = free_port()
    proc = spawn("run", "/usr/bin/redis-server", "-p", f"{port}:6379", "-m", "256M",
                 "-a", "--protected-mode", "-a", "no", "-a", "--save", "-a", "",
                 "-a", "--appendonly", "-a", "no", cwd=tmp_path)
    try:
        def ping() -> bool:
            r = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True,
                               text=True, timeout=5)
            return r.stdout.strip() == "PONG"
        wait_for(ping, what="redis PONG")
        bench = subprocess.run(["redis-benchmark", "-p", str(port), "-n", "2000", "-c", "4",
                                "-q", "-t", "set,get"], capture_output=True, text=True,
                               timeout=120)
        assert bench.returncode == 0, bench.stderr
        assert "SET:" in bench.stdout and "GET:" in bench.stdout
        assert "requests per second" in bench.stdout
        # Ctrl-C: engitor asks the guest to stop; init forwards SIGTERM; redis shuts down cleanly
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Received SIGTERM scheduling shutdown" in out, out
    assert "ready to exit, bye bye" in out
    assert proc.returncode == 0, err


def test_kernel_panic_is_reported_with_the_last_console_lines(programs: Path, tmp_path: Path):
    recipe = tmp_path / "panic.lua"
    recipe.write_text(f'image "p" {{ program = "{programs / "exit3"}", '
                      'kernel_args = {"rdinit=/nonexistent"} }\n')
    proc = engitor("run", str(recipe), cwd=tmp_path)
    assert proc.returncode == 125
    assert "engitor: kernel panic: " in proc.stderr
    assert "Kernel panic - not syncing: VFS: Unable to mount root fs" in proc.stderr
    assert "  | " in proc.stderr  # the last console lines


def test_watchdog_reports_a_vm_that_never_reaches_the_program(programs: Path, tmp_path: Path):
    recipe = tmp_path / "slow.lua"
    recipe.write_text(f'image "s" {{ program = "{programs / "exit3"}", boot_timeout = 1 }}\n')
    proc = engitor("run", str(recipe), cwd=tmp_path)
    assert proc.returncode == 125
    assert "the VM did not start the program within 1 s" in proc.stderr


def test_init_reaps_orphans_and_sets_the_workdir(programs: Path, tmp_path: Path):
    recipe = tmp_path / "orphans.lua"
    recipe.write_text(f'image "o" {{ program = "{programs / "orphans"}", workdir = "/tmp" }}\n')
    proc = engitor("run", "-q", str(recipe), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "zombies=0 cwd=/tmp ppid=1"


def test_doctor_reports_this_host(tmp_path: Path, kernel_pkg):
    proc = engitor("doctor", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "accel      accel " in proc.stdout and "kernel     linux-image-" in proc.stdout
    bare = tmp_path / "bin"
    bare.mkdir()
    proc = engitor("doctor", cwd=tmp_path, env={"PATH": str(bare)})
    assert proc.returncode == 1
    assert "MISSING qemu" in proc.stdout
    assert "apt-get install qemu-system-x86" in proc.stdout.split("to fix:")[1]


def test_tcg_guest_keeps_the_tsc_clocksource_and_the_wall_clock(programs: Path, tmp_path: Path):
    """tsc_early_khz= and tsc=reliable keep the guest on the TSC (not 4 ms jiffies); the RTC
    gives it the date."""
    import time

    proc = engitor("run", "-q", "--accel", "tcg", str(programs / "clock"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    source, year = proc.stdout.split()
    # tsc-early until the kernel's late TSC init switches to tsc; both read the TSC
    assert source in ("clocksource=tsc", "clocksource=tsc-early")
    assert year == f"year={time.gmtime().tm_year}"


def test_tcg_guest_cpu_has_every_feature_but_byte_wise_string_copies(programs: Path,
                                                                     tmp_path: Path):
    """QEMU's `max` CPU without ERMS (qemu.TCG_CPU): TCG runs `rep movsb` a byte an iteration,
    and the guest's kernel and glibc copy with it only when the CPU has ERMS."""
    proc = engitor("run", "-q", "--accel", "tcg", str(programs / "cpuflags"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    flags = set(proc.stdout.split())
    assert "erms" not in flags
    assert {"rdrand", "avx2", "smap", "rep_good"} <= flags, flags  # the rest of `max` is there


def test_a_program_with_its_own_origin_relative_libraries_runs(tmp_path: Path):
    """Bundled libraries next to the program ($ORIGIN/lib) come along and load in the guest."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "answer.c").write_text("int answer(void){return 42;}\n")
    (tmp_path / "main.c").write_text("int answer(void);\nint main(void){return answer();}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", "lib/libanswer.so", "answer.c"],
                   cwd=tmp_path, check=True)
    subprocess.run(["cc", "-o", "app", "main.c", "-Llib", "-lanswer", "-Wl,-rpath,$ORIGIN/lib"],
                   cwd=tmp_path, check=True)
    proc = engitor("run", "-q", "./app", cwd=tmp_path)
    assert proc.returncode == 42, proc.stderr


def test_auto_accel_uses_kvm_only_when_a_probe_guest_really_boots(kernel_pkg, tmp_path: Path,
                                                                  monkeypatch):
    from engitor.image import hosttools
    from engitor.recipe.model import Accel
    from engitor.vm import accel

    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))  # no cached verdict
    works, why = accel.probe_kvm(kernel_pkg.vmlinuz, hosttools) if Path("/dev/kvm").exists() else (False, "")
    choice = accel.choose(Accel.AUTO, kernel_pkg.vmlinuz, hosttools)
    assert choice.accel is (Accel.KVM if works else Accel.TCG)
    assert choice.line().startswith(f"accel {choice.accel.value}: ")
    again = accel.choose(Accel.AUTO, kernel_pkg.vmlinuz, hosttools)
    assert again.accel is choice.accel and "probed earlier this host boot" in again.reason
    assert accel.choose(Accel.TCG, kernel_pkg.vmlinuz, hosttools).reason == "requested"
