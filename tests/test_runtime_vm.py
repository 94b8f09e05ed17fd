"""Every language runtime boots in a micro-VM and serves a hello-world (or prints it), with its
standard library imported to keep what the package drops honest. Runtimes come from Debian's
archive through the package recipes; Go and C programs are compiled here and need none.

All boot real VMs under TCG (marked vm); the first run on a clean machine downloads each
runtime's Debian packages into engitor's normal cache."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import support

from engitor.recipe.settings import make_image
from engitor.vm import runner

pytestmark = pytest.mark.vm


@contextlib.contextmanager
def booted(name: str, folder: Path, guest_port: int | None,
           **settings: Any) -> Iterator[tuple[runner.Instance, int]]:
    """Build an image from `settings` (paths relative to `folder`) and boot it under TCG."""
    image = make_image(name, settings, base_dir=folder, where=f"test {name}")
    with support.booted(image.with_settings(boot_timeout=180), guest_port) as booted_vm:
        yield booted_vm


def console(inst: runner.Instance) -> str:
    inst.poll_console()
    return "\n".join(inst.console.lines)


def get(inst: runner.Instance, url: str, timeout: float = 150) -> str:
    """The body at `url` once the guest answers; fails with the console if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if not inst.alive() or time.monotonic() > deadline:
                pytest.fail(f"no answer from {url}; console:\n{console(inst)[-3000:]}")
            time.sleep(0.3)


def wait_for(inst: runner.Instance, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while text not in console(inst):
        if not inst.alive() or time.monotonic() > deadline:
            pytest.fail(f"{text!r} never appeared; console:\n{console(inst)[-3000:]}")
        time.sleep(0.2)
    return console(inst)


def test_python3_http_server(tmp_path):
    (tmp_path / "app.py").write_text("""\
import http.server, sys, ssl, sqlite3, json, zlib, decimal, lzma, bz2, ctypes, uuid, hashlib
import asyncio, curses, readline, csv, datetime, email, xml.etree.ElementTree, zoneinfo
print("stdlib ok", sys.version.split()[0], sqlite3.sqlite_version, ssl.OPENSSL_VERSION)
print("trusted CAs", ssl.create_default_context().cert_store_stats()["x509_ca"])
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from python {sys.version.split()[0]}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
""")
    with booted("py", tmp_path, 8000, package="python3", args=["app.py"]) as (inst, port):
        assert get(inst, f"http://127.0.0.1:{port}/") == "hello from python 3.11.2\n"
        assert "stdlib ok 3.11.2" in wait_for(inst, "stdlib ok")
        assert "OpenSSL 3." in console(inst)
        # OpenSSL's default CA file, made from ca-certificates without its postinst.
        trusted = int(wait_for(inst, "trusted CAs").split("trusted CAs ")[1].split()[0])
        assert trusted > 100


def test_node_http_server(tmp_path):
    (tmp_path / "app.js").write_text("""\
const http = require('http'), crypto = require('crypto'), zlib = require('zlib');
for (const m of ['fs', 'os', 'url', 'util', 'stream', 'events', 'path', 'net', 'dns', 'buffer',
                 'child_process', 'readline', 'assert', 'querystring', 'string_decoder']) require(m);
const digest = crypto.createHash('sha256').update('x').digest('hex').slice(0, 8);
console.log('stdlib ok ' + process.version + ' ' + digest + ' ' + zlib.gzipSync('x').length);
console.log('root CAs ' + require('tls').rootCertificates.length);
http.createServer((req, res) => res.end('hello from node ' + process.version + '\\n'))
    .listen(8000, '0.0.0.0');
""")
    with booted("node", tmp_path, 8000, package="node", args=["app.js"],
                memory="512M") as (inst, port):
        body = get(inst, f"http://127.0.0.1:{port}/")
        assert body.startswith("hello from node v18.")
        assert "stdlib ok v18." in wait_for(inst, "stdlib ok")
        assert " 2d711642 " in console(inst)  # sha256("x"): OpenSSL answers
        # Node.js carries Mozilla's roots itself; the recipe adds ca-certificates for what
        # reads OpenSSL's default store (--use-openssl-ca, addons, child programs).
        roots = int(wait_for(inst, "root CAs ").split("root CAs ")[1].split()[0])
        assert roots > 100


def test_ruby_webrick(tmp_path):
    (tmp_path / "app.rb").write_text("""\
%w[webrick json socket openssl digest zlib yaml set securerandom erb net/http bigdecimal
   time uri fileutils].each { |lib| require lib }
$stdout.sync = true
puts "stdlib ok #{RUBY_VERSION} #{Digest::SHA256.hexdigest('x')[0, 8]} #{JSON.generate([1])}"
store = OpenSSL::X509::Store.new.tap(&:set_default_paths)
root = OpenSSL::X509::Certificate.new(File.read('/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt'))
puts "trusted #{store.verify(root)}"
server = WEBrick::HTTPServer.new(Port: 8000, BindAddress: '0.0.0.0', AccessLog: [])
server.mount_proc('/') { |_, res| res.body = "hello from ruby #{RUBY_VERSION}\\n" }
server.start
""")
    with booted("ruby", tmp_path, 8000, package="ruby", args=["app.rb"]) as (inst, port):
        assert get(inst, f"http://127.0.0.1:{port}/") == "hello from ruby 3.1.2\n"
        assert "stdlib ok 3.1.2 2d711642 [1]" in wait_for(inst, "stdlib ok")
        # OpenSSL's default trust store, made from ca-certificates without its postinst.
        assert "trusted true" in wait_for(inst, "trusted ")


JAVA = """\
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.zip.CRC32;

public class Hello {
    public static void main(String[] args) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest("x".getBytes());
        new CRC32().update(1);
        javax.crypto.Cipher.getInstance("AES/GCM/NoPadding");
        javax.xml.parsers.DocumentBuilderFactory.newInstance().newDocumentBuilder();
        java.util.logging.Logger.getLogger("hello").fine("x");
        java.sql.Timestamp.valueOf("2024-01-01 00:00:00");
        System.out.println("stdlib ok " + System.getProperty("java.version") + " "
                           + HexFormat.of().formatHex(d).substring(0, 8));
        // The default trust store (lib/security/cacerts), as an HTTPS client would use it.
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(
            javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init((java.security.KeyStore) null);
        System.out.println("trusted CAs " + ((javax.net.ssl.X509TrustManager)
            tmf.getTrustManagers()[0]).getAcceptedIssuers().length);
        HttpServer s = HttpServer.create(new InetSocketAddress(8000), 0);
        s.createContext("/", ex -> {
            byte[] body = ("hello from java " + System.getProperty("java.version") + "\\n")
                .getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        s.start();
    }
}
"""


def test_java_headless_jre_with_a_class_compiled_here(tmp_path):
    javac = shutil.which("javac")
    assert javac, "the tests need a JDK (openjdk-17-jdk-headless, in the Makefile's APT_TEST)"
    (tmp_path / "src").mkdir()
    (tmp_path / "src/Hello.java").write_text(JAVA)
    subprocess.run([javac, "--release", "17", "-d", str(tmp_path / "classes"),
                    str(tmp_path / "src/Hello.java")], check=True)
    # "classes", named in the args, is copied into the image.
    with booted("java", tmp_path, 8000, package="java", args=["-cp", "classes", "Hello"],
                memory="768M") as (inst, port):
        body = get(inst, f"http://127.0.0.1:{port}/", timeout=240)
        assert body.startswith("hello from java 17.")
        assert " 2d711642" in wait_for(inst, "stdlib ok 17.")
        # The JKS store engitor writes where ca-certificates-java's postinst would.
        trusted = int(wait_for(inst, "trusted CAs").split("trusted CAs ")[1].split()[0])
        assert trusted > 100


ERLANG = """\
-module(hello).
-export([start/0]).

start() ->
    Mods = [lists, maps, string, gen_tcp, inet, ets, re, unicode, binary, calendar, base64,
            zlib, file, io_lib, erl_scan, compile, supervisor, gen_server, application],
    [{module, M} = code:ensure_loaded(M) || M <- Mods],
    io:format("stdlib ok ~s~n", [erlang:system_info(otp_release)]),
    {ok, L} = gen_tcp:listen(8000, [binary, {active, false}, {reuseaddr, true}]),
    loop(L).

loop(L) ->
    {ok, S} = gen_tcp:accept(L),
    {ok, _} = gen_tcp:recv(S, 0),
    Body = io_lib:format("hello from erlang ~s~n", [erlang:system_info(otp_release)]),
    ok = gen_tcp:send(S, ["HTTP/1.0 200 OK\\r\\nContent-Length: ",
                          integer_to_list(iolist_size(Body)), "\\r\\n\\r\\n", Body]),
    gen_tcp:close(S),
    loop(L).
"""


def test_erlang_noshell_compiles_and_serves(tmp_path):
    (tmp_path / "hello.erl").write_text(ERLANG)
    run = ('{ok, M, B} = compile:file("/hello.erl", [binary, report]), '
           '{module, M} = code:load_binary(M, "hello.erl", B), M:start().')
    # The package's args come first: erl -noshell -eval ...
    with booted("erlang", tmp_path, 8000, package="erlang", files=["hello.erl"],
                args=["-eval", run]) as (inst, port):
        assert get(inst, f"http://127.0.0.1:{port}/") == "hello from erlang 25\n"
        assert "stdlib ok 25" in wait_for(inst, "stdlib ok")


def test_php_builtin_server(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www/index.php").write_text("""<?php
$want = ['ctype', 'tokenizer', 'iconv', 'json', 'pcre', 'posix', 'sockets', 'fileinfo',
         'calendar', 'Zend OPcache', 'readline', 'date', 'hash', 'spl', 'phar', 'exif'];
$missing = array_values(array_filter($want, fn($e) => !extension_loaded($e)));
echo "hello from php " . PHP_VERSION . "\\n";
echo "missing [" . implode(",", $missing) . "] tz " . date_default_timezone_get() . "\\n";
$root = file_get_contents('/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt');
echo "trusted " . var_export(openssl_x509_checkpurpose($root, X509_PURPOSE_ANY), true) . "\\n";
""")
    # "www", named in the args, is copied into the image.
    with booted("php", tmp_path, 8000, package="php",
                args=["-S", "0.0.0.0:8000", "-t", "www"]) as (inst, port):
        body = get(inst, f"http://127.0.0.1:{port}/")
        assert body.startswith("hello from php 8.2."), body
        assert "missing [] tz UTC" in body, body
        assert "trusted true" in body, body


NGINX_CONF = """\
worker_processes 2;
error_log stderr notice;
pid /run/nginx.pid;
user nobody nogroup;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    server {
        listen 8000 reuseport;
        location /static/ { root /srv; }
        location / { return 200 "hello from nginx $nginx_version worker $pid\\n"; }
    }
}
"""


def test_nginx_with_its_own_config_master_and_workers(tmp_path):
    (tmp_path / "app.conf").write_text(NGINX_CONF)
    (tmp_path / "static").mkdir()
    (tmp_path / "static/page.html").write_text("<p>static page</p>\n")
    with booted("nginx", tmp_path, 8000, package="nginx",
                args=["-c", "/etc/nginx/app.conf"],
                map={"app.conf": "/etc/nginx", "static/*": "/srv/static"}) as (inst, port):
        first = get(inst, f"http://127.0.0.1:{port}/")
        assert first.startswith("hello from nginx 1.22.1 worker ")
        pids = set()
        for _ in range(40):  # reuseport spreads new connections over the workers
            body = get(inst, f"http://127.0.0.1:{port}/")
            pids.add(int(body.split()[-1]))
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        log = wait_for(inst, "start worker process")
        master = {line.split("#")[0].split()[-1] for line in log.splitlines()
                  if "start worker process" in line}
        started = {int(line.split()[-1]) for line in log.splitlines()
                   if "start worker process " in line}
        assert len(master) == 1 and started == pids
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/page.html") as r:
            assert r.read() == b"<p>static page</p>\n"
            assert r.headers["Content-Type"] == "text/html"  # Debian's mime.types


def test_go_program_compiled_here(tmp_path):
    (tmp_path / "main.go").write_text("""\
package main

import (
	"fmt"
	"net/http"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go %s\\n", runtime.Version())
	})
	fmt.Println("listening")
	http.ListenAndServe(":8000", nil)
}
""")
    # Go's own build cache is kept between runs (the first build compiles net/http).
    env = dict(os.environ, CGO_ENABLED="0", GOPATH=str(tmp_path / "gopath"), GO111MODULE="off")
    subprocess.run(["go", "build", "-o", "server", "main.go"], cwd=tmp_path, env=env, check=True)
    version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                             env=env, check=True).stdout.strip()
    with booted("goserver", tmp_path, 8000, program="server") as (inst, port):
        assert get(inst, f"http://127.0.0.1:{port}/") == f"hello from go {version}\n"


def test_c_program_compiled_here(tmp_path):
    (tmp_path / "hello.c").write_text("""\
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    printf("hello from C: %s %s\\n", argc > 1 ? argv[1] : "-", getenv("GREETING"));
    return 7;
}
""")
    subprocess.run(["cc", "-O2", "-o", str(tmp_path / "hello"), str(tmp_path / "hello.c")],
                   check=True)
    with booted("hello-c", tmp_path, None, program="hello", args=["world"],
                env={"GREETING": "hi"}) as (inst, _):
        out = io.StringIO()
        outcome = runner.follow(inst, out=out)
    assert "hello from C: world hi" in out.getvalue()
    assert outcome.exit_status == 7
