"""`run -d --restart POLICY`: a small supervisor process that starts the VM again when it ends.

Policies are Docker's: `no`, `on-failure[:N]` (a non-zero exit status, at most N times) and
`always`. The supervisor is a forked engitor process in its own session, the parent of each QEMU
it starts; it follows the VM without printing, and restarts it in the same run folder under the
same name, waiting a little longer after each quick failure (0.1 s doubling, at most 10 s).
`engitor stop` leaves a mark in the run folder (or removes it): the supervisor then lets the VM
end for good. instance.json records the policy, the restart count and the supervisor's pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engitor import home, store
from engitor.errors import UserError
from engitor.recipe.model import Image
from engitor.vm import host, runner
from engitor.vm.instance import Instance

STOP_MARK = "stop-requested"
POLICY_RE = re.compile(r"^(no|always|on-failure)(?::(\d+))?$")
MAX_DELAY = 10.0
STABLE_SECONDS = 10.0  # a run that lasted this long resets the back-off


@dataclass(frozen=True)
class Policy:
    mode: str = "no"  # no | on-failure | always
    max_restarts: int | None = None  # on-failure:N

    def __str__(self) -> str:
        return self.mode + (f":{self.max_restarts}" if self.max_restarts is not None else "")

    def should_restart(self, exit_status: int, restarts: int) -> bool:
        if self.mode == "always":
            return True
        if self.mode == "on-failure":
            return exit_status != 0 and (self.max_restarts is None
                                         or restarts < self.max_restarts)
        return False


def parse_policy(text: str) -> Policy:
    m = POLICY_RE.match(text)
    if not m or (m.group(2) is not None and m.group(1) != "on-failure"):
        raise UserError(f"--restart {text}: expected no, on-failure[:N] or always",
                        hint="e.g. --restart on-failure:5 (at most 5 restarts) or --restart always")
    return Policy(m.group(1), int(m.group(2)) if m.group(2) is not None else None)


def mark_stop(directory: Path) -> None:
    """Tell a supervisor that the VM is being stopped on purpose (before it is)."""
    with contextlib.suppress(OSError):
        (directory / STOP_MARK).touch()


def _record(inst: Instance, policy: Policy, restarts: int) -> None:
    inst.meta.restart = str(policy)
    inst.meta.restarts = restarts
    inst.meta.supervisor = os.getpid()
    home.atomic_write(inst.dir / "instance.json", json.dumps(asdict(inst.meta), indent=2))


def start(stored: store.StoredImage, image: Image, policy: Policy, *, tools: host.Tools) -> str:
    """Fork the supervisor, which starts the VM; returns the VM's name once it is started.
    `tools`: what the host probes need from the image stage (engitor.image.hosttools)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor
        os.close(read_end)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            inst = runner.launch(stored, image, detached=True, tools=tools)
            _record(inst, policy, 0)
            os.write(write_end, b"+" + inst.name.encode())
            os.close(write_end)
            _supervise(inst, stored, image, policy, tools)
        except UserError as e:
            with contextlib.suppress(OSError):
                os.write(write_end, b"!" + str(e).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        answer = f.read().decode(errors="replace")
    if not answer.startswith("+"):
        raise UserError(answer[1:] or "the supervisor could not start the VM",
                        hint="see the message")
    return answer[1:]


def _supervise(inst: Instance, stored: store.StoredImage, image: Image, policy: Policy,
               tools: host.Tools) -> None:
    restarts = 0
    delay = 0.1
    while True:
        began = time.monotonic()
        outcome = runner.follow(inst, out=None)
        if (inst.dir / STOP_MARK).exists() or not inst.dir.exists():
            return
        if not policy.should_restart(outcome.exit_status, restarts):
            return  # the run folder stays, showing how it ended (ps -a, logs)
        delay = 0.1 if time.monotonic() - began > STABLE_SECONDS else min(delay * 2, MAX_DELAY)
        time.sleep(delay)
        if (inst.dir / STOP_MARK).exists() or not inst.dir.exists():
            return
        name = inst.name
        inst.remove()  # the same name and folder again: `engitor logs` shows the latest run
        restarts += 1
        inst = runner.launch(stored, image, detached=True, name=name, tools=tools)
        _record(inst, policy, restarts)
