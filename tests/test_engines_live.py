"""engitor with the engines that run here: a containerDisk pushed to a real OCI registry
(Debian's docker-registry on 127.0.0.1) and pulled back; an image deployed on libvirt
(libvirtd + virtlogd started by the test, qemu:///system, TCG) serving through its forward."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import engitor, free_port, http_get, wait_for
from test_cli_errors import check_one_line

from engitor.export import oci, registry

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def registry_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """docker-registry serving plain HTTP on 127.0.0.1, storing under a temporary folder."""
    d = tmp_path_factory.mktemp("registry")
    port = free_port()
    (d / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/v2/") is not None, timeout=30,
                 what="the registry")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_inspect_and_pull_back(registry_port: int, tmp_path: Path):
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    layout = tmp_path / "oci"
    desc = oci.write_layout(disk, layout, disk_name="web.qcow2", tag="1")
    ref = registry.parse_reference(f"127.0.0.1:{registry_port}/engitor/web:1")
    registry.push(layout, "1", ref, tls_verify=False)
    info = json.loads(subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        check=True, capture_output=True, text=True).stdout)
    assert info["Digest"] == desc.digest
    back = tmp_path / "pulled"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                    f"oci:{back}:1"], check=True)
    assert oci.read_disk(back, "1") == ("web.qcow2", disk.read_bytes())


def test_push_to_a_registry_that_does_not_answer(fresh_home: Path, tmp_path: Path,
                                                  programs: Path):
    env = {"ENGITOR_HOME": str(fresh_home)}
    shutil.copy(programs / "server", tmp_path / "server")
    assert engitor("build", "./server", cwd=tmp_path, env=env).returncode == 0
    began = time.monotonic()
    proc = engitor("push", "server", f"127.0.0.1:{free_port()}/web:1", "--tls-verify=false",
                   cwd=tmp_path, env=env)
    check_one_line(proc, "does not answer")
    assert time.monotonic() - began < 30


def test_push_with_a_bad_reference(fresh_home: Path, tmp_path: Path):
    proc = engitor("push", "web", "web:1", cwd=tmp_path, env={"ENGITOR_HOME": str(fresh_home)})
    check_one_line(proc, "not a registry reference")


def test_push_pull_and_boot_the_containerdisk(registry_port: int, fresh_home: Path,
                                             tmp_path: Path, programs: Path):
    """`engitor push` of a real image; the disk pulled back from the registry boots on a PCI
    machine (SeaBIOS, virtio-pci, DHCP) and serves, as KubeVirt would run it."""
    from test_export_vm import booted, pc

    from engitor.export import boot

    env = {"ENGITOR_HOME": str(fresh_home)}
    shutil.copy(programs / "server", tmp_path / "server")
    built = engitor("build", "./server", "-n", "pushed", "--", "-port", "8080", "-root", "/",
                    cwd=tmp_path, env=env)
    assert built.returncode == 0, built.stderr
    ref = f"127.0.0.1:{registry_port}/engitor/pushed:1"
    pushed = engitor("push", "pushed", ref, "--tls-verify=false", cwd=tmp_path, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.startswith(f"{ref}@sha256:")
    back = tmp_path / "pulled"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                    f"oci:{back}:1"], check=True)
    name, data = oci.read_disk(back, "1")
    assert name == "pushed.qcow2" and data[:4] == b"QFI\xfb"  # a qcow2 header
    disk = tmp_path / name
    disk.write_bytes(data)
    spec = pc(boot.Firmware.BIOS, tmp_path / "console.log", disk=disk, disk_format="qcow2")
    with booted(spec) as port:
        assert http_get(f"http://127.0.0.1:{port}/etc/hostname").strip() == "pushed"


def test_export_as_a_containerdisk_archive_is_reproducible(fresh_home: Path, tmp_path: Path,
                                                          programs: Path):
    env = {"ENGITOR_HOME": str(fresh_home)}
    shutil.copy(programs / "server", tmp_path / "server")
    outputs = []
    for n in (1, 2):
        out = tmp_path / f"cd{n}.tar"
        proc = engitor("export", "./server", "-f", "containerdisk", "-o", str(out),
                       cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{tmp_path}/cd1.tar"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["Labels"]["org.opencontainers.image.title"] == "server"


# -- libvirt ----------------------------------------------------------------------------------


def _running(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[str]:
    """virtlogd and libvirtd as daemons (no init system here); those the test started are
    stopped after it."""
    if not shutil.which("libvirtd"):
        pytest.fail("libvirtd is missing: make test-deps installs libvirt-daemon-system")
    started = []
    for daemon in ("virtlogd", "libvirtd"):
        pidfile = Path(f"/run/{daemon}.pid")
        if not _running(pidfile):
            subprocess.run([daemon, "-d"], check=True)
            wait_for(lambda p=pidfile: _running(p), timeout=20, what=daemon)
            started.append(pidfile)
    wait_for(lambda: subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                                    capture_output=True).returncode == 0,
             timeout=60, what="libvirtd answering")
    yield "qemu:///system"
    for pidfile in reversed(started):
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def test_deploy_on_libvirt_serves_through_its_forward(libvirtd: str, fresh_home: Path,
                                                      tmp_path: Path, programs: Path):
    env = {"ENGITOR_HOME": str(fresh_home)}
    shutil.copy(programs / "server", tmp_path / "server")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("served by a libvirt domain\n")
    port = free_port()
    domain = f"engitor-test-{port}"
    proc = engitor("deploy", "libvirt", "./server", "--dir", "www", "-p", f"{port}:8080",
                   "--domain", domain, "--", "-port", "8080", "-root", "/www",
                   cwd=tmp_path, env=env, timeout=300)
    try:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == domain
        assert "the program is running" in proc.stderr
        page = wait_for(lambda: http_get(f"http://127.0.0.1:{port}/index.html"), timeout=60,
                        what="the page through libvirt's domain")
        assert page == "served by a libvirt domain\n"
        state = subprocess.run(["virsh", "-c", libvirtd, "domstate", domain],
                               capture_output=True, text=True).stdout.strip()
        assert state == "running"
    finally:
        removed = engitor("deploy", "libvirt", "--rm", domain, env=env, timeout=120)
    assert removed.returncode == 0, removed.stderr
    listed = subprocess.run(["virsh", "-c", libvirtd, "list", "--all", "--name"],
                            capture_output=True, text=True).stdout.split()
    assert domain not in listed


def test_deploy_when_libvirt_is_not_running(fresh_home: Path, tmp_path: Path, programs: Path):
    shutil.copy(programs / "server", tmp_path / "server")
    proc = engitor("deploy", "libvirt", "./server", "--connect",
                   f"qemu:///system?socket={tmp_path}/no-such-socket",
                   cwd=tmp_path, env={"ENGITOR_HOME": str(fresh_home)}, timeout=120)
    check_one_line(proc, "is not reachable")
