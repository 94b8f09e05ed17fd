"""Images of whole Debian packages, built (not booted): what the maintainer scripts would make
is there, and two builds from separate package caches are byte-identical."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engitor import cpio, home
from engitor.image import pipeline
from engitor.image.init import CONFIG_PATH
from engitor.recipe.settings import make_image


def shared_home(folder: Path, monkeypatch: pytest.MonkeyPatch, real: Path) -> Path:
    """A home sharing the kernel, the compiler cache and apt's downloads, unpacking and merging
    the Debian packages anew."""
    folder.mkdir()
    for name in ("kernels", "cache", "apt", "debs"):
        (folder / name).symlink_to(real / name)
    monkeypatch.setenv("ENGITOR_HOME", str(folder))
    return folder


def files_of(stored) -> dict[str, tuple[int, bytes]]:
    import zstandard

    raw = zstandard.ZstdDecompressor().decompress(stored.initrd.read_bytes(),
                                                  max_output_size=2**31)
    return {path: (mode, data) for path, mode, data in cpio.read_archive(raw)}


MEMCACHED = {"debian": ["memcached"], "program": "/usr/bin/memcached", "user": "memcache"}


def test_two_builds_of_a_debian_image_are_byte_identical(tmp_path, monkeypatch, kernel_pkg):
    real = home.home()
    blobs = []
    for n in range(2):
        shared_home(tmp_path / f"home{n}", monkeypatch, real)
        stored = pipeline.build(make_image("mc", MEMCACHED))
        blobs.append(stored.initrd.read_bytes())
    assert blobs[0] == blobs[1]


def test_memcached_image_has_its_user_config_and_run_dir(kernel_pkg):
    files = files_of(pipeline.build(make_image("mc", MEMCACHED)))
    passwd = files["/etc/passwd"][1].decode()
    line = next(x for x in passwd.splitlines() if x.startswith("memcache:"))
    uid = int(line.split(":")[2])
    assert 100 <= uid <= 999 and "www-data:x:33:33:" in passwd  # base-passwd's fixed ids
    assert files["/etc/shadow"][0] & 0o777 == 0o640
    # postinst: cp /usr/share/memcached/memcached.conf.default /etc/memcached.conf
    assert files["/etc/memcached.conf"][1].startswith(b"# memcached default config file")
    config = files[CONFIG_PATH][1].decode()
    assert f"uid {uid}\n" in config  # the init drops to memcache
    assert f"dir 755 {uid} {uid} /run/memcached\n" in config  # tmpfiles.d, made at boot
    assert not any(p.startswith(("/usr/share/doc/", "/usr/share/man/"))
                   for p in files)


def test_nginx_image_has_what_nginx_commons_postinst_makes(kernel_pkg):
    files = files_of(pipeline.build(make_image("ng", {"debian": ["nginx"],
                                                      "program": "/usr/sbin/nginx"})))
    mode, target = files["/etc/nginx/sites-enabled/default"]
    assert mode & 0o170000 == 0o120000 and target == b"../sites-available/default"
    assert b"Welcome to nginx!" in files["/var/www/html/index.nginx-debian.html"][1]
    config = files[CONFIG_PATH][1].decode()
    assert "\nuid " not in config  # no user setting: nginx starts as root and drops itself


def test_low_port_capability_only_when_such_a_port_is_forwarded(programs, kernel_pkg):
    base = {"program": str(programs / "exit3"), "user": "nobody"}
    low = files_of(pipeline.build(make_image("low", {**base, "ports": ["8080:80"]})))
    high = files_of(pipeline.build(make_image("high", {**base, "ports": [8080]})))
    assert "bind_below_1024 1\n" in low[CONFIG_PATH][1].decode()
    assert "bind_below_1024" not in high[CONFIG_PATH][1].decode()
    assert "uid 65534\ngid 65534\ngroups 65534\n" in high[CONFIG_PATH][1].decode()


def test_a_file_that_is_a_program_brings_its_libraries(tmp_path, programs, kernel_pkg):
    source = tmp_path / "z.c"
    source.write_text("#include <zlib.h>\n#include <stdio.h>\n"
                      "int main(void) { puts(zlibVersion()); return 0; }\n")
    subprocess.run(["cc", "-o", str(tmp_path / "zver"), str(source), "-lz"], check=True)
    image = make_image("withz", {"program": str(programs / "exit3"), "files": ["zver"]},
                       base_dir=tmp_path)
    files = files_of(pipeline.build(image))
    assert "/zver" in files
    assert any(p.endswith("/libz.so.1") for p in files), sorted(files)


def test_popen_program_gets_dash_and_others_do_not(programs, kernel_pkg):
    with_sh = files_of(pipeline.build(make_image("p", {"program": str(programs / "popen_echo")})))
    assert with_sh["/bin/sh"][1] == b"/usr/bin/dash" and "/usr/bin/dash" in with_sh
    plain = files_of(pipeline.build(make_image("q", {"program": str(programs / "exit3")})))
    assert "/bin/sh" not in plain


def test_lang_and_tz_bring_c_utf8_and_the_zone(programs, kernel_pkg):
    plain = files_of(pipeline.build(make_image("p", {"program": str(programs / "exit3")})))
    assert not any(p.startswith(("/usr/lib/locale/", "/usr/share/zoneinfo/"))
                   for p in plain)
    image = make_image("l", {"program": str(programs / "exit3"),
                             "env": {"LANG": "C.UTF-8", "TZ": "Europe/Paris"}})
    files = files_of(pipeline.build(image))
    assert "/usr/lib/locale/C.utf8/LC_CTYPE" in files
    assert files["/usr/share/zoneinfo/Europe/Paris"][1].startswith(b"TZif")


def test_your_own_program_beside_debian_packages(kernel_pkg, programs: Path, tmp_path: Path):
    """`--deb PKG ./app`: the packages whole (their files, users, config) and a program of the
    host's, its libraries from the packages first. A packaged path still means the package's."""
    (tmp_path / "app").write_bytes((programs / "exit3").read_bytes())
    (tmp_path / "app").chmod(0o755)
    image = make_image("own", {"debian": ["memcached"], "program": "./app", "user": "memcache"},
                       where="test", base_dir=tmp_path)
    files = files_of(pipeline.build(image))
    assert files["/app"][1] == (programs / "exit3").read_bytes()
    assert "/usr/bin/memcached" in files and "/etc/memcached.conf" in files
    assert any(p.endswith("/libc.so.6") for p in files)
    assert files[CONFIG_PATH][1].decode().startswith("arg /app\n")
