"""Acceptance (builds and boots under QEMU): `engitor build web.yaml` and `engitor run
web.yaml:site` compile the YAML, evaluate it through the Lua front end and run what it means."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from support import free_port
from test_ops_vm import BOOT_WAIT, ENGITOR, curl, engitor_run

from engitor.recipe import yaml_front

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

pytestmark = pytest.mark.vm


def test_engitor_build_builds_every_image_of_the_yaml(recipes):
    proc = subprocess.run([*ENGITOR, "build", "-q", "web.yaml"], cwd=recipes,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    ids = proc.stdout.split()
    assert len(ids) == len(yaml_front.load_config(recipes / "web.yaml").images) == 2
    assert len(set(ids)) == 2  # site and staging differ (arguments, environment, ports)


def test_engitor_run_yaml_serves_with_the_port_from_the_environment(recipes):
    port = free_port()
    with engitor_run(["web.yaml:site"], recipes, env={"PORT": str(port)}) as proc:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + BOOT_WAIT
        assert "Hello from an engitor micro-VM" in curl(f"{base}/", proc, recipes,
                                                        deadline=deadline)
        assert curl(f"{base}/env/MODE", proc, recipes, deadline=deadline) == "prod\n"
        assert curl(f"{base}/healthz", proc, recipes, deadline=deadline) == "ok site\n"
        assert curl(f"{base}/exit?code=3", proc, recipes, deadline=deadline) == "bye 3\n"
        assert proc.wait(60) == 3
