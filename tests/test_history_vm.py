"""Rollback and prune with a real VM: `engitor run NAME` boots the image the name points to
(no rebuild) and serves its pages through a forwarded port; prune leaves that image alone while
the VM runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import engitor, free_port, http_get, wait_for
from test_history import RECIPE, one_line_error

from engitor import store


@pytest.mark.vm
def test_rollback_makes_run_serve_the_old_content(fresh_home: Path, programs: Path,
                                                  tmp_path: Path):
    site = tmp_path / "site"
    (site / "www").mkdir(parents=True)
    shutil.copy(programs / "server", site / "server")
    (site / "site.lua").write_text(RECIPE)
    (site / "www" / "index.html").write_text("version one\n")
    first = engitor("build", "-q", str(site / "site.lua"), check=True).stdout.strip()
    (site / "www" / "index.html").write_text("version two\n")
    second = engitor("build", "-q", str(site / "site.lua"), check=True).stdout.strip()
    assert engitor("rollback", "site", check=True).stdout == f"site -> {first[:12]}\n"
    keys_before = sorted(p.name for p in (fresh_home / "keys").iterdir())

    port = free_port()
    # From another folder, so that "site" names the stored image, not a path.
    started = engitor("run", "-d", "--accel", "tcg", "-p", f"{port}:8080", "site",
                      cwd=tmp_path, check=True)
    vm = started.stdout.strip()
    assert f"image site {first[:12]}" in started.stderr
    try:
        page = wait_for(lambda: http_get(f"http://127.0.0.1:{port}/index.html"), timeout=180,
                        what="the rolled-back page")
        assert page == "version one\n"
        assert sorted(p.name for p in (fresh_home / "keys").iterdir()) == keys_before  # no build
        # A flag that would change the image needs the recipe.
        one_line_error(engitor("run", "-e", "X=1", "site", cwd=tmp_path), "booted as built")
        # Prune everything it may: the running VM's image stays, the other goes.
        out = engitor("prune", "--all", "--keep", "0", check=True).stdout
        assert f"removed image {second[:12]}" in out and first[:12] not in out
        assert store.get(first) is not None and store.get(second) is None
        assert http_get(f"http://127.0.0.1:{port}/healthz") == "ok site\n"
    finally:
        engitor("stop", vm, timeout=120)
    out = engitor("prune", "--all", "--keep", "0", check=True).stdout
    assert f"removed image {first[:12]}" in out and store.get(first) is None
