# ovlmgr build, test and benchmark entry points. Run `make help`.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Tests need root (namespaces, daemons) and the Debian OVS/OVN packages (make deps).
TEST_FLAGS ?= -race -count=1 -timeout 60m
BENCH_FLAGS ?= -run '^$$' -benchtime 1x -timeout 60m

DEB_PACKAGES := openvswitch-switch ovn-central ovn-host ethtool iputils-ping iperf3 tcpdump busybox-static dnsutils curl iproute2 \
	podman runc containerd containernetworking-plugins
# Runtime clients Debian 12 does not package, built from Go modules at pinned versions (cnitool: the
# cni module version in go.mod) into bin/ when missing. The runtime tests find them in PATH or bin/.
CRICTL_VERSION := v1.34.0

.PHONY: all build test bench generate deps lint clean lab lab-down help vagrant-check vagrant-box vagrant-e2e

all: build

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/ovlmgr and bin/ovlmgr-cni
	$(GO) build -o $(BIN)/ovlmgr ./cli
	$(GO) build -o $(BIN)/ovlmgr-cni ./cni-plugin

# make test: a missing prerequisite (root, a daemon, a schema, a lab that cannot start) fails the test naming it
# (OVLMGR_TEST_STRICT=1, package lab/prereq); lab/testsum prints run/passed/failed/skipped per package and fails on
# any skip (but the VM lab's optional ruby/vagrant ones) and when integration runs no tests.
test: deps lint build ## lint, then every test (unit, real ovsdb-server, integration labs) under -race; fails on skips
	OVLMGR_TEST_STRICT=1 $(GO) run ./lab/testsum -- $(TEST_FLAGS) $(PKGS)
	@if command -v vagrant >/dev/null; then $(MAKE) vagrant-check; fi

.PHONY: unit mutation

unit: ## fast tests only: no root, no daemons, seconds (go test -short: tests needing either skip)
	$(GO) run ./lab/testsum -must '' -- -short -count=1 $(PKGS)

mutation: ## break each invariant of integration/testdata/mutations.txt in a copy of the tree; each must fail a test
	$(GO) run ./lab/mutate -file integration/testdata/mutations.txt -log $(BIN)/mutation.log

bench: deps build ## benchmarks: prints the conditions (CPUs, load, kernel, OVS/OVN), then the numbers
	@{ export PATH="$$PATH:/usr/sbin:/sbin"; echo "conditions: $$(nproc) CPUs ($$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $$(cut -d' ' -f1-3 /proc/loadavg), kernel $$(uname -r), $$(ovs-vswitchd --version 2>/dev/null | head -1), $$(ovn-northd --version 2>/dev/null | head -1), $$(date -u +%FT%TZ)"; } | tee $(BIN)/bench.txt
	set -o pipefail; $(GO) test $(BENCH_FLAGS) -bench . $(PKGS) | tee -a $(BIN)/bench.txt
	@echo "after: load average $$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $(BIN)/bench.txt

generate: ## regenerate libovsdb models from the installed OVN/OVS schemas
	$(GO) tool modelgen -extended -p nbdb -o ovn/nbdb /usr/share/ovn/ovn-nb.ovsschema
	$(GO) tool modelgen -extended -p sbdb -o ovn/sbdb /usr/share/ovn/ovn-sb.ovsschema
	$(GO) tool modelgen -extended -p vswitchd -o ovs/vswitchd /usr/share/openvswitch/vswitch.ovsschema

deps: ## apt-get install OVS/OVN, runtimes and test tools; build crictl and cnitool into bin/ (skipped when present)
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps needs root (apt-get install$$missing)"; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v crictl >/dev/null || [ -x $(BIN)/crictl ] || { echo "building $(BIN)/crictl $(CRICTL_VERSION)"; \
		GOBIN=$(abspath $(BIN)) $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION); }
	@command -v cnitool >/dev/null || [ -x $(BIN)/cnitool ] || { echo "building $(BIN)/cnitool"; \
		$(GO) build -o $(BIN)/cnitool github.com/containernetworking/cni/cnitool; }

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

clean: ## remove build output
	rm -rf $(BIN)

vagrant-check: ## VM lab, no VM booted: shellcheck the scripts, vagrant validate (libvirt), machine-plan tests
	@cd vagrant && for s in *.sh box/*.sh e2e/*.sh; do \
		if command -v shellcheck >/dev/null; then shellcheck -x "$$s"; else echo "no shellcheck: bash -n $$s"; bash -n "$$s"; fi || exit 1; \
	done
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && cd vagrant && \
		VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_HOME="$$d/home" VAGRANT_DOTFILE_PATH="$$d/dot" VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate
	$(GO) test -count=1 ./vagrant/

LAB ?= ovl
NODES ?= 3

lab: deps build ## bring up a NODES-node OVN lab named LAB (default 3, ovl) and print what to try next
	@if [ "$$(id -u)" != 0 ]; then echo "make lab needs root (network namespaces, OVS/OVN daemons): sudo make lab"; exit 1; fi
	$(BIN)/ovlmgr lab up --nodes $(NODES) --name $(LAB)
	@echo
	@echo "Lab $(LAB) is up. The commands above need ovlmgr on your PATH:"
	@echo '  export PATH=$$PWD/$(BIN):$$PATH'
	@echo '  make lab-down    # stop it and remove everything'
	@echo 'More: docs/lab.md'

lab-down: ## stop the lab LAB and remove its namespaces, links and files
	@if [ -x $(BIN)/ovlmgr ]; then $(BIN)/ovlmgr lab down --name $(LAB); else $(GO) run ./cli lab down --name $(LAB); fi

vagrant-box: ## build (or reuse) the local libvirt box ovlmgr-local: Debian 12 + OVS/OVN, for OVLMGR_BOX=local (root)
	vagrant/box/build.sh

vagrant-e2e: build ## VMs end to end: libvirt, box, central + 2 workers, ovlmgr-cni across VMs over kernel Geneve (root)
	vagrant/e2e/e2e.sh
