"""The guest init's DHCP client on engitor's own microvm: the `network` setting, and a lease
kept by renewing at T1 (against tests/dhcp_server.py, which hands out an 8 s lease)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dhcp_server import DHCPServer
from support import booted, free_port, http_get, wait_for

from engitor.image import hosttools, pipeline
from engitor.image import init as guest_init
from engitor.recipe.model import Accel
from engitor.recipe.settings import make_image
from engitor.vm import qemu, runner


def test_network_setting_reaches_the_init_config():
    assert "network" not in guest_init.InitConfig(argv=("/a",)).render().decode()
    assert "\nnetwork dhcp\n" in guest_init.InitConfig(argv=("/a",), network="dhcp").render().decode()


@pytest.mark.vm
def test_dhcp_on_engitors_microvm_when_the_setting_asks(programs: Path, tmp_path: Path):
    image = make_image("dhcp-micro", {"program": str(programs / "server"), "network": "dhcp",
                                      "args": ["-port", "8080", "-root", "/"]}, base_dir=tmp_path)
    with booted(image, 8080) as (inst, port):
        text = wait_for(lambda: http_get(f"http://127.0.0.1:{port}/etc/resolv.conf"),
                        what="the server")
        assert text == "nameserver 10.0.2.3\n"  # written by the DHCP client from the lease
        log = (inst.dir / "console.log").read_text()
        assert "@@engitor:dhcp bound addr=10.0.2.15/24 gateway=10.0.2.2 lease=86400" in log


@pytest.mark.vm
def test_lease_is_renewed_at_t1(programs: Path, tmp_path: Path):
    image = make_image("dhcp-renew", {"program": str(programs / "server"), "network": "dhcp",
                                      "args": ["-port", "8080"], "accel": "tcg"},
                       base_dir=tmp_path)
    stored = pipeline.build(image)
    to_server, to_guest = free_port(), free_port()
    server = DHCPServer(to_server, to_guest)
    console = tmp_path / "console.log"
    spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                       console=console, accel=Accel.TCG, host_cmdline=runner.host_cmdline(hosttools))
    argv = qemu.argv(spec)
    argv[argv.index("-netdev") + 1] = (f"socket,id=n0,udp=127.0.0.1:{to_server},"
                                       f"localaddr=127.0.0.1:{to_guest}")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: console.read_text().count("@@engitor:dhcp renewed") >= 2,
                 timeout=180, what="two renewals")
    finally:
        proc.kill()
        proc.wait()
        server.close()
    log = console.read_text()
    assert "@@engitor:dhcp bound addr=10.0.9.15/24 gateway=10.0.9.1 lease=8" in log
    assert server.seen[:2] == ["discover", "request"] and server.seen[2:4] == ["renew", "renew"]
    assert "@@engitor:start" in log
