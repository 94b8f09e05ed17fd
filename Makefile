# `make demo` and `make test` are the whole set-up on a fresh Debian machine: they install what
# they need (Debian packages, a Python venv with engitor and its dependencies) and then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ENGITOR := $(VENV)/bin/engitor
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

# What engitor itself needs on the host: QEMU, a C compiler and a small libc for the guest init,
# apt and dpkg-deb (always on Debian) to fetch and unpack kernels and runtimes, openssl for the
# runtimes' CA hash links, e2fsprogs to make and check volumes (mkfs.ext4 -d, e2fsck).
APT_RUN := python3 python3-venv qemu-system-x86 gcc libc6-dev linux-libc-dev musl-tools curl ca-certificates openssl e2fsprogs
# `engitor export`: systemd's EFI stub and objcopy for the UKI, sbsign and OVMF's variable
# templates for Secure Boot (faketime: a fixed signing time), a GPT disk with a FAT ESP made without mounting, syslinux for BIOS,
# qemu-img for the other disk formats.
APT_RUN += systemd-boot-efi binutils sbsigntool faketime ovmf mtools dosfstools gdisk syslinux syslinux-common qemu-utils
# `engitor push` and `deploy libvirt`: skopeo speaks to registries; libvirt's header and library
# are what the C bridge calls.
APT_RUN += skopeo libvirt-dev libvirt-clients
# adduser creates the system user QEMU runs as when engitor is root (vm/confine.py).
APT_RUN += adduser
# What `engitor kernel build` compiles a kernel from (Debian's source) and with.
APT_KERNEL := linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev
# What the tests bring up inside VMs or compile, and the tools they check with.
APT_TEST := $(APT_RUN) $(APT_KERNEL) cpio redis-server redis-tools postgresql-client mariadb-client golang-go zlib1g-dev libsqlite3-dev libexpat1-dev tmux nginx \
            openjdk-17-jdk-headless
# The engines the deploy tests drive: a registry and libvirt.
APT_TEST += docker-registry libvirt-daemon-system
# The reference minisign, to check engitor's signatures interoperate.
APT_TEST += minisign
# Headers and libraries of the C bridge's header profiles (headers/profiles/) that its tests call.
APT_TEST += libcurl4-openssl-dev libssl-dev libvirt-dev

.PHONY: all deps test-deps demo test lint bench clean

all: deps

define apt_install
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

$(VENV)/.deps: pyproject.toml
	$(call apt_install,$(APT_RUN))
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps pyproject.toml
	$(call apt_install,$(APT_TEST))
	$(PY) -m pip install -q -e '.[test]'
	touch $@

deps: $(VENV)/.deps

test-deps: $(VENV)/.test-deps

# The demo: the C web server of recipes/web.lua as a micro-VM, serving through a forwarded port.
DEMO_PORT ?= 8080
demo: deps
	$(ENGITOR) doctor || true
	$(ENGITOR) kernel fetch
	cc -O2 -o recipes/web/server recipes/web/server.c
	$(ENGITOR) build recipes/web.lua
	@set -e; \
	$(ENGITOR) run recipes/web.lua -p $(DEMO_PORT):8080 & vm=$$!; \
	trap 'kill $$vm 2>/dev/null || true' EXIT; \
	for i in $$(seq 1 240); do curl -fs -o /dev/null http://127.0.0.1:$(DEMO_PORT)/ && break; \
	    kill -0 $$vm 2>/dev/null || exit 1; sleep 0.25; done; \
	echo "--- curl http://127.0.0.1:$(DEMO_PORT)/"; curl -fsS http://127.0.0.1:$(DEMO_PORT)/; \
	echo "--- curl http://127.0.0.1:$(DEMO_PORT)/build.txt"; \
	curl -fsS http://127.0.0.1:$(DEMO_PORT)/build.txt; \
	echo "--- stopping the VM (SIGTERM reaches the server inside)"; \
	kill $$vm; wait $$vm

test: test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: test-deps
	$(VENV)/bin/ruff check engitor tests bench
	$(PY) -m mypy

bench: test-deps
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build .pytest_cache
