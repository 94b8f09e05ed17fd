"""Every header profile the C bridge ships (headers/profiles/) works here: including its main
header, with no lib= and no extra header named, preprocesses, parses, declares and loads, and
its `check` call answers through LuaJIT's FFI. Plus how profiles combine with c.include's own
options, and the pure resolution."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import zlib

import pytest

from engitor.errors import UserError
from engitor.ffi import profiles
from engitor.lua.api import as_bytes

NAMES = sorted(profiles.profiles())


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGITOR_HOME", str(tmp_path_factory.mktemp("home")))
        from engitor.lua.runtime import Runtime
        yield Runtime()


@pytest.fixture()
def lua(rt):
    env = rt.script_env()

    def run(code: str, *args):
        values = rt.call(rt.compile(code, env, "test.lua"), *args)
        return values[0] if isinstance(values, tuple) and len(values) == 1 else values
    return run


def installed(package: str) -> bool:
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True).stdout
    return "ok installed" in status


def test_the_promised_libraries_have_profiles():
    assert {"glibc", "libm", "zlib", "sqlite3", "libcurl", "libvirt", "expat",
            "openssl"} <= set(NAMES)
    for p in profiles.profiles().values():
        assert p.headers and p.package and p.check, p


@pytest.mark.parametrize("name", NAMES)
def test_a_profiles_header_alone_loads_and_calls(lua, name):
    p = profiles.get(name)
    assert p is not None
    if not installed(p.package):   # the Makefile's APT_TEST installs every one
        pytest.skip(f"{p.package} is not installed")
    kind, answered = lua(f'local ns = c.include("{p.headers[0]}")\n'
                         f'local r = ns.{p.check}\n'
                         'return type(r), r ~= nil')
    assert kind in ("cdata", "number") and answered is True


def test_libvirt_brings_its_error_header_and_library(lua):
    # libvirt.h alone declares no virGetLastErrorMessage: the profile adds virterror.h
    assert as_bytes(lua('local v = c.include("libvirt/libvirt.h")\n'
                        'return v.string(v.virGetLastErrorMessage())')) == b"no error"
    assert lua('return c.info(c.include("libvirt/libvirt.h")).libraries[1]') == "virt"


def test_curl_setopt_is_declared_thanks_to_the_profiles_define(lua):
    # without CURL_DISABLE_DEPRECATION, attributes on CURLoption's enumerators make LuaJIT
    # drop the enum and curl_easy_setopt with it
    rc = lua('local cu = c.include("curl/curl.h")\n'
             'local h = cu.curl_easy_init()\n'
             'local rc = cu.curl_easy_setopt(h, cu.CURLOPT_VERBOSE, cu.new("long", 0))\n'
             'cu.curl_easy_cleanup(h)\n'
             'return tonumber(rc)')
    assert rc == 0
    version = lua('local cu = c.include("curl/curl.h"); return cu.string(cu.curl_version())')
    assert as_bytes(version).startswith(b"libcurl/")


def test_openssl_reports_the_installed_version(lua):
    ssl = ctypes.CDLL(ctypes.util.find_library("crypto"))
    ssl.OpenSSL_version_num.restype = ctypes.c_ulong
    got = lua('local o = c.include("openssl/ssl.h")\n'
              'return tonumber(o.OpenSSL_version_num()), #c.info(o).unavailable')
    assert got == (ssl.OpenSSL_version_num(), 0)


def test_math_h_comes_with_libm(lua):
    assert lua('return c.include("math.h").cos(0)') == 1
    assert lua('return c.include("math.h").sqrt(2)') == pytest.approx(2 ** 0.5)


def test_a_profile_name_stands_for_its_headers(lua):
    assert as_bytes(lua('return c.include("zlib").ZLIB_VERSION')) == zlib.ZLIB_VERSION.encode()
    assert lua('return c.include("glibc").getpid()') > 0


def test_lib_given_replaces_the_profiles(lua):
    with pytest.raises(Exception, match="library 'no-such-lib-x' not found"):
        lua('return c.include("zlib.h", {lib = "no-such-lib-x"})')


def test_unknown_name_stays_a_header_error(lua):
    with pytest.raises(Exception, match="header 'zlibb' not found"):
        lua('return c.include("zlibb")')


# -- the pure resolution ---------------------------------------------------------------------

def test_resolve_adds_extra_headers_flags_and_libraries_once():
    r = profiles.resolve(["libvirt/libvirt.h", "libvirt/libvirt-domain.h", "curl/easy.h"],
                         define=["X=1"])
    assert r.headers == ("libvirt/libvirt.h", "libvirt/libvirt-domain.h", "curl/easy.h",
                         "libvirt/virterror.h")
    assert r.define == ("CURL_DISABLE_DEPRECATION", "X=1")
    assert r.lib == ("curl", "virt")


def test_resolve_leaves_unknown_headers_alone():
    r = profiles.resolve(["./mine.h", "linux/if.h"], cflags=["-O2"])
    assert (r.headers, r.define, r.cflags, r.lib, r.profiles) == (
        ("./mine.h", "linux/if.h"), (), ("-O2",), (), ())


def test_a_missing_profile_header_names_its_package():
    r = profiles.resolve(["curl/curl.h"])
    e = profiles.missing(r, UserError("header 'curl/curl.h' not found", hint="searched ..."))
    assert e.hint == "apt-get install libcurl4-openssl-dev"
    other = UserError("header 'nope.h' not found", hint="h")
    assert profiles.missing(r, other) is other


def test_every_profile_file_is_well_formed(tmp_path):
    (tmp_path / "bad.toml").write_text('headers = ["a.h"]\nlibs = ["x"]\n')
    with pytest.raises(ValueError, match="unknown fields"):
        profiles.load(tmp_path / "bad.toml")
    assert set(profiles.profiles()) == {p.stem for p in profiles.HEADERS_DIR.glob("profiles/*")}


def test_lua_libvirt_module_loads_with_the_profile(rt, tmp_path):
    # lua/libvirt.lua names only libvirt/libvirt.h; ping through a socket nobody serves comes
    # back as libvirt's own message (the error API from virterror.h works)
    from engitor import LUA_DIR
    env = rt.script_env()
    module = rt.eval((LUA_DIR / "libvirt.lua").read_text(), env, "libvirt.lua")[0]
    ok, message = module.ping(f"qemu+unix:///system?socket={tmp_path}/none")
    assert ok is False and "cannot connect" in str(message) and "none" in str(message)


def test_lua_libvirt_module_against_libvirts_test_driver(rt):
    # test:///default is libvirt's own in-process driver with one running domain, "test"
    from engitor import LUA_DIR
    module = rt.eval((LUA_DIR / "libvirt.lua").read_text(), rt.script_env(), "libvirt.lua")[0]
    uri = "test:///default"
    assert tuple(module.state(uri, "test")) == (True, "running")
    assert tuple(module.state(uri, "nope")) == (True, False)
    assert tuple(module.shutdown(uri, "test")) == (True, True)
    assert tuple(module.remove(uri, "nope")) == (True, False)
    # the test driver refuses the NVRAM flag: libvirt's own message arrives (it is read before
    # the domain is freed, which would reset it to "no error")
    ok, message = module.remove(uri, "test")
    assert ok is False and message.startswith("undefining test: unsupported flags")
