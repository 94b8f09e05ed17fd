"""Offline: builds from the cache with apt made unusable, the host's installed files when only
the archive is unreachable, and what is said when neither helps.

apt is made unusable through its own APT_CONFIG: no sources (so no package indexes) and a
proxy nobody listens on (so no downloads)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import support

from engitor import home, packages
from engitor.errors import UserError
from engitor.image import kernel, pipeline, quick
from engitor.packages import apt, cache
from engitor.recipe.settings import make_image

UNREACHABLE = 'Acquire::http::Proxy "http://127.0.0.1:9";\nAcquire::https::Proxy "http://127.0.0.1:9";\n'


def apt_config(folder: Path, *, indexes: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = UNREACHABLE
    if not indexes:
        (folder / "no-sources").mkdir(exist_ok=True)
        text += (f'Dir::Etc::sourcelist "/dev/null";\n'
                 f'Dir::Etc::sourceparts "{folder / "no-sources"}";\n')
    path = folder / "apt.conf"
    path.write_text(text)
    return path


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """An empty engitor home sharing only the kernel cache with the normal one."""
    kernel.get()  # in the normal home: fetched once, then cached
    shared = kernel.kernels_dir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "kernels").symlink_to(shared)
    monkeypatch.setenv("ENGITOR_HOME", str(home))
    return home


def engitor(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engitor", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_builds_from_the_cache_with_apt_unusable(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text("print('offline')\n")
    image = make_image("offline", {"package": "python3", "args": ["app.py"]}, base_dir=tmp_path)
    online = pipeline.build(image)  # fetches python3 into the cache if it is not there yet
    monkeypatch.setenv("APT_CONFIG", str(apt_config(tmp_path / "apt", indexes=False)))
    assert not apt.has_indexes()
    # The full path, not the unchanged-rebuild record the first build may have left (whether
    # it did depends on how old the package pin was then).
    key = quick.declaration_key(image)
    assert key is not None
    (home.home() / "keys" / f"direct-{key}").unlink(missing_ok=True)
    lines: list[str] = []
    offline = pipeline.build(image, log=lines.append)
    assert offline.id == online.id  # the very same image
    assert any(line.startswith("package python3: python3 ") and line.endswith("cached)")
               for line in lines), lines
    # apt really is out of reach: fetching anew fails, and says how it would work.
    proc = engitor("pkg", "get", "python3", cwd=tmp_path, env={})
    assert proc.returncode == 2
    assert "apt has no package indexes" in proc.stderr and "engitor pkg get python3" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_empty_cache_and_no_archive_say_how_to_prefetch(fresh_home, tmp_path, monkeypatch):
    env = {"APT_CONFIG": str(apt_config(tmp_path / "apt", indexes=False))}
    (tmp_path / "app.rb").write_text("puts 1\n")
    proc = engitor("load", "ruby", "-a", "app.rb", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "apt has no package indexes" in line and "no resolution of ruby is cached" in line
    assert "prefetch it with 'engitor pkg get ruby'" in line
    assert "Traceback" not in proc.stderr


def test_a_changed_recipe_offline_needs_apt_and_says_so(fresh_home, tmp_path, monkeypatch):
    recipe = packages.recipes.find("python3")
    stale = {"name": "python3", "apt_key": {"debs": ["python3", "python3-yaml"], "skip": []},
             "resolved": "2026-01-01T00:00:00Z", "packages": [], "skipped": []}
    cache.resolved_path("python3").parent.mkdir(parents=True)
    cache.resolved_path("python3").write_text(json.dumps(stale))
    monkeypatch.setenv("APT_CONFIG", str(apt_config(tmp_path / "apt", indexes=False)))
    with pytest.raises(UserError) as e:
        packages.fetch(recipe)
    assert "(the cached one is for other Debian packages)" in str(e.value)
    assert "engitor pkg get python3" in str(e.value)


def test_archive_unreachable_and_not_on_this_host(fresh_home, tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CONFIG", str(apt_config(tmp_path / "apt", indexes=True)))
    with pytest.raises(UserError) as e:
        packages.prepare(make_image("rb", {"package": "ruby"}))
    text = str(e.value)
    assert "package ruby: cannot download" in text and "127.0.0.1" in text
    assert "is not installed on this host either" in text
    assert "engitor pkg get ruby" in text


@pytest.mark.vm
def test_host_fallback_when_the_archive_is_unreachable(fresh_home, tmp_path, monkeypatch):
    """python3 is installed on this host (engitor needs it): its installed files stand in for
    the archive's, said in one line, and the runtime works."""
    monkeypatch.setenv("APT_CONFIG", str(apt_config(tmp_path / "apt", indexes=True)))
    (tmp_path / "app.py").write_text("import json, sqlite3, ssl, http.server\n"
                                     "print('from the host', json.dumps([1]))\n")
    lines: list[str] = []
    image = make_image("hostpy", {"package": "python3", "args": ["app.py"]}, base_dir=tmp_path)
    tree = packages.prepare(image, log=lines.append)
    assert {u.source for u in tree.units} == {"host"}
    said = [line for line in lines if "archive is unreachable" in line]
    assert len(said) == 1 and "from this host's installed files" in said[0], lines
    lines.clear()
    packages.prepare(image, log=lines.append)  # from the cache now, and still said
    assert any("are this host's installed files" in line for line in lines), lines

    from engitor.vm import runner

    out = io.StringIO()
    with support.booted(image) as (inst, _):
        outcome = runner.follow(inst, out=out)
    assert "from the host [1]" in out.getvalue()
    assert outcome.exit_status == 0
