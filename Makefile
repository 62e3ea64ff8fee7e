# Container Internals Workshop: set-up, tests, benchmarks.
# `make workshop` and `make test` work on a fresh Debian/Ubuntu machine as root, and are quick
# the second time: each step is skipped when what it makes is already there.

SHELL := /bin/bash
# The distribution's own interpreter, which apt's python3-venv goes with and `sudo` finds first:
# it is built with profile-guided and link-time optimisation and without a shared libpython, so
# it starts and imports faster than a self-built one earlier on root's PATH (pyenv's, here: every
# `minibox` command ~4 ms faster). PYTHON=... picks another (3.11 or newer).
PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
VENV ?= .venv
# What the workshop itself needs, and what only the tests and benchmarks add (a learner's laptop
# does not need a browser or runc).
APT_PACKAGES := busybox-static nftables iptables iproute2 conntrack tmux util-linux procps python3-venv \
	docker-registry skopeo podman conmon libseccomp2
APT_TEST_PACKAGES := runc chromium qemu-system-x86 kmod vagrant vagrant-libvirt ruby debootstrap shellcheck \
	cloud-init golang-go golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev
# BUNDLE=path: set up from an offline bundle (`make offline-bundle`) instead of the network.
BUNDLE ?=
BUNDLE_OUT ?= dist/container-internals-workshop-bundle.tar
STAMP_APT := $(VENV)/.apt-done
STAMP_PIP := $(VENV)/.pip-done
STAMP_TEST := $(VENV)/.test-deps-done

# apt-get install what is missing of the packages given (nothing, quickly, when all are there)
define apt_install
	@if [ "$$(id -u)" != 0 ]; then echo "make: run as root (sudo make ...): containers need root" >&2; exit 1; fi
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: workshop test test-cgroup2-vm bench lint setup test-setup offline-bundle conformance

workshop: setup ## set up, then start the workshop
	$(VENV)/bin/workshop

test: test-setup ## set up, then run every test (needs root: real namespaces, cgroups, mounts)
	$(VENV)/bin/ruff check engine labs workshop_tui tests bench
	$(VENV)/bin/python -m pytest

test-cgroup2-vm: test-setup ## only the pure cgroup v2 VM tier (`make test` runs it too, tests/test_cgroup2_vm.py)
	tests/vm/run-in-cgroup2-vm.sh

bench: test-setup ## compare minibox with runc and unshare; the TUI's start-up, memory and refresh; networking
	$(VENV)/bin/python bench/run_bench.py
	$(VENV)/bin/python bench/tui_bench.py
	$(VENV)/bin/python bench/net_bench.py
	$(VENV)/bin/python bench/image_bench.py
	$(VENV)/bin/python bench/class_bench.py

conformance: test-setup ## runtime-tools' OCI validation tests against runc, then minibox-runc (tests/oci/)
	tests/oci/runtime-tools.sh runc
	RUNTIME_ROOT=/var/cache/minibox-runtime-tools/minibox-runc-state tests/oci/runtime-tools.sh $(VENV)/bin/minibox-runc

lint: test-setup
	$(VENV)/bin/ruff check engine labs workshop_tui tests bench

setup: $(STAMP_APT) $(STAMP_PIP)

test-setup: setup $(STAMP_TEST)

offline-bundle: setup ## one archive with everything a room with no internet needs (see vagrant/bundle.sh)
	$(call apt_install,dpkg-dev git)
	vagrant/bundle.sh make $(BUNDLE_OUT) $(VENV)/bin/python make $(APT_PACKAGES)

$(STAMP_APT): Makefile
ifeq ($(BUNDLE),)
	$(call apt_install,$(APT_PACKAGES))
else
	@if [ "$$(id -u)" != 0 ]; then echo "make: run as root (sudo make ...): containers need root" >&2; exit 1; fi
	vagrant/bundle.sh apt $(abspath $(BUNDLE)) $(APT_PACKAGES)
endif
	@# Debian starts docker-registry as a service on every address; the labs and tests run their own on loopback.
	@if [ -d /run/systemd/system ]; then systemctl disable --now docker-registry 2>/dev/null || true; fi
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(STAMP_PIP): pyproject.toml $(STAMP_APT)
ifeq ($(BUNDLE),)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .  # editable: edits to engine/ take effect at once
else
	vagrant/bundle.sh pip $(abspath $(BUNDLE)) $(VENV) $(CURDIR)
	vagrant/bundle.sh images $(abspath $(BUNDLE)) $(VENV)
endif
	@# Nothing here needs setuptools (the project builds with hatchling, in pip's own build
	@# environment), and its distutils-precedence.pth costs every Python start, so every
	@# `minibox` command, half a millisecond.
	@$(VENV)/bin/pip uninstall -q -y setuptools 2>/dev/null || true
	@touch $@

$(STAMP_TEST): pyproject.toml Makefile $(STAMP_PIP)
	@# cloud-init is here only for `cloud-init schema` (tests/test_room.py): this file keeps it from
	@# ever configuring this machine at boot (cloud-init's documented off switch).
	@dpkg -s cloud-init >/dev/null 2>&1 || { mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled; }
	$(call apt_install,$(APT_TEST_PACKAGES))
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@
