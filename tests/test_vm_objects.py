"""VMs as Lua objects (engitor/shell/vm_api.py, lua/vm.lua): real builds, real QEMU under TCG.

The acceptance script of issue 6 runs as a user would run it (`engitor shell script.lua`): two
web VMs from a loop, both ports awaited, a page fetched from each, one paused and resumed,
both stopped, and `engitor ps` (the real CLI, from the script) lists them while they run and
not after."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engitor.shell.session import Session

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

ACCEPTANCE = r"""
-- arg[1]: the web recipe, arg[2]: a name prefix, arg[3]: the python running engitor
local recipe, prefix, python = arg[1], arg[2], arg[3]
local function ps() return sh{python, "-m", "engitor", "ps"} end

local vms = {}
for i = 1, 2 do
  vms[i] = engitor.run(recipe, {name = prefix .. i, accel = "tcg",
                                ports = {engitor.free_port() .. ":8080"}})
end
for _, vm in ipairs(vms) do
  local port = vm:wait_port(8080, 180)
  print("page", vm.name, sh.curl("-s", "--max-time", "20", "http://127.0.0.1:" .. port .. "/healthz"))
end
print("ps while running")
print(ps())

local one = vms[1]
assert(one.accel == "tcg" and one.image == "web" and one.ports[1].guest == 8080)
assert(#one:vcpus() == 1 and one:vcpus()[1].thread > 0)
one:pause()
print("state", one:state(), one:qmp("query-status").status)
local _, code = sh{"curl", "-s", "--max-time", "3", "http://127.0.0.1:" .. one:port(8080) .. "/healthz",
                   check = false}
print("curl while paused exits with", code)
one:resume()
print("state", one:state())
print("page again", sh.curl("-s", "--max-time", "20", "http://127.0.0.1:" .. one:wait_port(8080, 60) .. "/healthz"))
for _, line in ipairs(one:console()) do print("console", line) end
help(one)

for _, vm in ipairs(vms) do print("stopped", vm.name, vm:stop()) end
print("ps after")
print(ps())
"""


@pytest.mark.vm
def test_a_shell_script_drives_two_vms(recipes, tmp_path):
    script = tmp_path / "two.lua"
    script.write_text(ACCEPTANCE)
    prefix = f"accept-{uuid.uuid4().hex[:6]}-"
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "shell", str(script),
                             str(recipes / "web.lua"), prefix, sys.executable],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    names = [f"{prefix}1", f"{prefix}2"]
    for name in names:
        assert f"page\t{name}\tok web\n" in out
        assert f"stopped\t{name}\t0\n" in out  # the server exits 0 on SIGTERM
    running, after = out.split("ps while running\n")[1].split("ps after\n")
    for name in names:
        row = next(line for line in running.splitlines() if line.startswith(name + " "))
        assert row.split()[1:3] == ["web", "ready"]  # listening on its forwarded port
        assert row.endswith(f"pid {proc.pid}")  # owned by the script's engitor process
        assert name not in after
    assert "state\tpaused\tpaused\n" in out
    assert "curl while paused exits with\t28\n" in out  # a frozen guest answers nothing
    assert "state\tready\n" in out and "page again\tok web\n" in out
    assert "console\tweb: serving /www on port 8080\n" in out
    assert "vm:wait_port(port [, timeout]) -> host port" in out  # help(vm)
    listed = subprocess.run([sys.executable, "-m", "engitor", "ps", "-a"], capture_output=True,
                            text=True, timeout=60)
    assert all(name not in listed.stdout for name in names)


@pytest.mark.vm
def test_wait_gives_the_programs_exit_code(recipes, tmp_path):
    from engitor.vm.instance import run_dir

    out, err = io.StringIO(), io.StringIO()
    shell = Session(out=out, err=err, cwd=tmp_path, interactive=False)
    name = f"waiter-{uuid.uuid4().hex[:6]}"
    try:
        assert shell.execute(f'vm = engitor.run("{recipes}/web.lua", {{name = "{name}", '
                             'accel = "tcg", ports = {engitor.free_port() .. ":8080"}, '
                             'env = {EXTRA = "yes"}})'), err.getvalue()
        assert (run_dir() / name / "instance.json").is_file()
        assert shell.execute("port = vm:wait_port(8080, 180)"), err.getvalue()
        # Tab after `vm:` offers the methods with their signatures
        from prompt_toolkit.completion import CompleteEvent
        from prompt_toolkit.document import Document

        from engitor.shell.complete import LuaCompleter

        found = [(c.text, c.display_meta_text) for c in LuaCompleter(shell).get_completions(
            Document("vm:wa"), CompleteEvent(completion_requested=True))]
        assert found == [("wait", "vm:wait([timeout]) -> code"),
                         ("wait_port", "vm:wait_port(port [, timeout]) -> host port")]
        assert shell.execute('print(sh.curl("-s", "http://127.0.0.1:" .. port .. "/env/EXTRA"))')
        assert shell.execute('print(sh.curl("-s", "http://127.0.0.1:" .. port .. "/exit?code=5"))')
        assert shell.execute("print(vm:wait())"), err.getvalue()
        assert shell.execute("print(vm:state(), vm:wait())")
        assert shell.execute("print(vm:console()[#vm:console()])")
        assert out.getvalue() == "yes\nbye 5\n5\nexited\t5\nweb: exiting with status 5\n"
        assert not (run_dir() / name).exists()  # the shell's own VM is removed once it ended
        assert not shell.execute("vm:pause()")
        assert f"{name} has ended; pause needs a running VM" in err.getvalue()
    finally:
        shell.close()


def test_vm_errors_are_clean_lua_errors(recipes, tmp_path):
    err = io.StringIO()
    shell = Session(out=io.StringIO(), err=err, cwd=tmp_path, interactive=False)
    try:
        assert not shell.execute('engitor.run("nope.lua")')
        assert not shell.execute(f'engitor.run("{recipes}/web.lua", {{portz = {{1}}}})')
        assert not shell.execute(f'engitor.run("{recipes}/fleet.lua")')
        assert not shell.execute('engitor.attach("no-such-vm")')
        lines = err.getvalue().splitlines()
        assert lines[0] == "engitor: in[1]:1: nope.lua: no such file (hint: check the path)"
        assert lines[1] == "engitor: in[2]:1: engitor.run: unknown option 'portz' " \
                           "(did you mean 'ports'?)"
        assert "declares several images (site-red, site-green, site-blue)" in lines[2]
        assert lines[3] == "engitor: in[4]:1: no VM named 'no-such-vm' (hint: see 'engitor ps')"
        assert "Traceback" not in err.getvalue()
    finally:
        shell.close()
