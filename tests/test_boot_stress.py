"""30 consecutive boots of one image under TCG, zero hangs (slow: run with -m slow)."""

import json
import subprocess
import sys

import pytest

from engitor import ROOT

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_thirty_consecutive_boots_never_hang():
    proc = subprocess.run([sys.executable, str(ROOT / "bench/boot_stress.py"), "-n", "30"],
                          capture_output=True, text=True, timeout=1800)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["boots"] == 30
    assert summary["hangs"] == 0, proc.stdout
    assert summary["ok"] == 30, proc.stdout
    assert proc.returncode == 0
