# Every target sets up what it needs: a fresh Debian machine (as root, or with sudo) needs
# nothing but `make test` / `make demo`. Where a machine already has a Docker engine or a
# registry binary (a GitHub-hosted runner), those are used rather than replaced. A non-root user
# with sudo runs the whole suite with `make test AS_ROOT=1` (see AS_ROOT below).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := tooling/constraints.txt
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the demo run for real: an OCI registry, a Docker engine,
# busybox (tests that copy it into an image), htpasswd for the login-registry test, Lua 5.1
# (Argo CD's dialect) for the test of the ActionType health check, QEMU user emulation (and
# binfmt-support, which registers it) so images of the other architecture really start,
# git-lfs for the test that a playbook file stored in Git LFS is refused, and rootlesskit,
# slirp4netns and uidmap (newuidmap) for the rootless engine's test (test_rootless.py).
# gpgv and debian-archive-keyring (in Ubuntu's universe too) verify Debian's archive, from which
# the stand-in base (playbookctl_dev/base_image.py) is made for both architectures: not through
# the host's apt, whose lists lack arm64 or kubernetes-client on Ubuntu (GitHub's runners).
SYSTEM_PACKAGES := docker-registry docker.io busybox-static apache2-utils git lua5.1 ca-certificates qemu-user-static binfmt-support git-lfs rootlesskit slirp4netns uidmap gpgv debian-archive-keyring
DEBIAN_KEYRING := /usr/share/keyrings/debian-archive-keyring.gpg
NATIVE_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
FOREIGN_ARCH := $(if $(filter arm64,$(NATIVE_ARCH)),amd64,arm64)
FOREIGN_QEMU := $(if $(filter arm64,$(NATIVE_ARCH)),qemu-x86_64,qemu-aarch64)
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each starts its own loopback registry (and Docker engine where
# the machine has none), so they share nothing. `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= auto
# Mutants run at once by `make mutants` (each a pytest process with its own registry).
MUTANT_JOBS ?= 2
# The test world (README "The test world") maps a registry's name in /etc/hosts and installs its
# CA in /etc/docker/certs.d, which only root can: as any other user every test of the HTTPS
# registry skips. A GitHub-hosted runner's user is not root but has sudo without a password:
# AS_ROOT=1 runs the suite (and the mutation check) as root through it (`sudo -n`: never a prompt).
AS_ROOT ?=
# sudo resets the environment: PATH, the stand-in's mirror and the proxies are passed on.
PASS_ENV := PLAYBOOKCTL_STAND_IN_MIRROR https_proxy http_proxy no_proxy HTTPS_PROXY HTTP_PROXY NO_PROXY
RUN_AS := $(if $(filter 1,$(AS_ROOT)),$(if $(SUDO),$(strip $(SUDO) -n env "PATH=$$PATH" \
  $(foreach v,$(PASS_ENV),$(if $($(v)),"$(v)=$($(v))")))))

.PHONY: help
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: system-deps
system-deps: ## install the Debian packages the tests and demo need (skips what is present)
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	{ command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || [ -S /var/run/docker.sock ] || \
	  [ -n "$${DOCKER_HOST:-}" ]; } || missing="$$missing docker.io"; \
	command -v busybox >/dev/null || missing="$$missing busybox-static"; \
	command -v htpasswd >/dev/null || missing="$$missing apache2-utils"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v lua5.1 >/dev/null || missing="$$missing lua5.1"; \
	command -v qemu-aarch64-static >/dev/null || missing="$$missing qemu-user-static"; \
	command -v update-binfmts >/dev/null || missing="$$missing binfmt-support"; \
	command -v git-lfs >/dev/null || missing="$$missing git-lfs"; \
	command -v rootlesskit >/dev/null || missing="$$missing rootlesskit"; \
	command -v slirp4netns >/dev/null || missing="$$missing slirp4netns"; \
	command -v newuidmap >/dev/null || missing="$$missing uidmap"; \
	command -v gpgv >/dev/null || missing="$$missing gpgv"; \
	[ -f $(DEBIAN_KEYRING) ] || missing="$$missing debian-archive-keyring"; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(SUDO)" ] && ! command -v $(SUDO) >/dev/null; then \
	    echo "make: missing Debian packages:$$missing; install them as root" \
	      "(apt-get install$$missing) or run as a user with sudo" >&2; \
	    exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq; \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing ca-certificates >/dev/null; \
	fi; \
	if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then \
	  $(SUDO) mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || \
	    echo "warning: cannot mount binfmt_misc here: images of $(FOREIGN_ARCH) will not start (their smoke runs are skipped)"; \
	fi; \
	if [ -e /proc/sys/fs/binfmt_misc/status ] && ! grep -qx enabled /proc/sys/fs/binfmt_misc/$(FOREIGN_QEMU) 2>/dev/null; then \
	  $(SUDO) update-binfmts --enable $(FOREIGN_QEMU) >/dev/null 2>&1 || \
	    echo "warning: cannot register $(FOREIGN_QEMU) in binfmt_misc: images of $(FOREIGN_ARCH) will not start"; \
	fi

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null || { \
	  echo "installing python3 and python3-venv"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv with the pinned dependencies

.PHONY: lock
lock: ## refresh tooling/constraints.txt from a clean resolution
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q -e '.[dev]'
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^playbookctl' > $(CONSTRAINTS)
	rm -rf .lockenv

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict and playbookctl lint on the repository
	$(BIN)/ruff check tooling tests
	$(BIN)/ruff format --check tooling tests
	$(BIN)/mypy
	$(BIN)/playbookctl lint

.PHONY: test
test: system-deps $(STAMP) ## the whole test suite (starts its own registry and Docker engine)
	$(RUN_AS) $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

.PHONY: demo
demo: system-deps $(STAMP) ## release this repository's playbooks to a local registry, twice
	$(BIN)/python tooling/scripts/demo.py

# Every one runs; a missed target or a failure fails `make bench` at the end, named.
BENCHES := bench_lint bench_publish bench_transport bench_release bench_platforms bench_assemble bench_engine bench_smoke
.PHONY: bench
bench: system-deps $(STAMP) ## the benchmarks (lint 500 playbooks, publish 50 bundles, CPU per registry request, no-op release of 200, 10 playbooks for 1 vs 2 platforms, assembled vs engine and a 200-playbook release, RUN playbooks on the engine path, the smoke run's cost; registries HTTPS+tokens and plain HTTP)
	$(BIN)/python tooling/bench/run_benches.py $(BENCHES:%=tooling/bench/%.py)

# The vendored consumer references (tests/references/*, each with its PROVENANCE.json).
UPSTREAM_KUBERNAUT ?=
UPSTREAM_TEKTON_REFS ?=
.PHONY: refresh-references
refresh-references: $(STAMP) ## update tests/references from UPSTREAM_KUBERNAUT=<kubernaut checkout> and/or UPSTREAM_TEKTON_REFS=<Tekton corpus dir>; shows the diff
	$(BIN)/python tooling/scripts/refresh_references.py \
	  $(if $(UPSTREAM_KUBERNAUT),--kubernaut "$(UPSTREAM_KUBERNAUT)") \
	  $(if $(UPSTREAM_TEKTON_REFS),--tekton-refs "$(UPSTREAM_TEKTON_REFS)")

.PHONY: mutants
mutants: system-deps $(STAMP) ## remove each guard in tooling/mutants/mutants.toml in turn; a named test must fail for each
	$(RUN_AS) $(BIN)/python tooling/mutants/run.py --jobs $(MUTANT_JOBS)

.PHONY: clean
clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
