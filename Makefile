# liftkit: `make demo` runs the pipeline on the built-in demo lab, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
# Every crate under tools/ is a tool (a binary of the root package); make install adds ovirt-sim,
# the engine simulator for trying liftkit without an engine (README, step 0).
TOOLS := $(sort $(notdir $(wildcard tools/*)))
INSTALL_BINS := $(TOOLS) ovirt-sim
BINDIR := $(DESTDIR)$(PREFIX)/bin
BASH_COMPLETIONS := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSH_COMPLETIONS := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISH_COMPLETIONS := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build test lint fmt demo demo-cluster man install bench deps deps-rust clean testbed testbed-bin testbed-smoke fuzz fuzz-deps

all: build

# Debian packages and toolchain pieces the build and tests need on a fresh machine; tests/report.rs
# renders report's page in headless Chromium (with a font, so its text draws).
DEBIAN_PACKAGES := curl openssl util-linux ca-certificates chromium fonts-dejavu-core

# What building and the demo need: Rust alone.
deps-rust:
	@command -v cargo >/dev/null || { echo "make: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

# What the tests need besides: Go (the Kubernetes test bed), clippy, and a few Debian packages.
deps: deps-rust
	@command -v go >/dev/null || { echo "make: go not found: install Go 1.26 or newer (the Kubernetes test bed is built from the Go module proxy)" >&2; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
	@missing=""; for c in curl openssl flock chromium; do command -v $$c >/dev/null || missing=1; done; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(DEBIAN_PACKAGES); \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $(DEBIAN_PACKAGES); fi; \
	fi

build: deps-rust
	$(CARGO) build --workspace --bins

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The Kubernetes test bed (kube-apiserver + etcd from the Go module proxy) is built once and cached
# in ~/.cache/liftkit; the first build takes about 15 minutes on two cores.
testbed-bin:
	tests/kube-testbed/build.sh >/dev/null

test: build lint testbed-bin
	set -o pipefail; $(CARGO) test --workspace --no-fail-fast 2>&1 | tests/test-counts.sh

# Runs the pipeline against the engine simulator serving the demo lab (and live on the Kubernetes
# test bed when it is built: tests/demo-live.sh).
demo: build
	@tests/demo.sh target/debug

# The demo with its live part: builds the test bed first (Go, once) and runs the plans on it, then
# vm-verify and the after-the-move notices.
demo-cluster: build testbed-bin
	@DEMO_CLUSTER=1 tests/demo.sh target/debug

# cargo-fuzz (libFuzzer, nightly) over what liftkit reads from outside and writes for other
# programs: fuzz/fuzz_targets/{records,map_file,parsers,writers}.rs, each FUZZ_SECONDS (default 600)
# with overflow checks on; the corpus grows in fuzz/corpus. Not part of `make test`. A crash stops
# the run; its input is in fuzz/artifacts/TARGET/ and becomes a regression test in tests/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := records map_file parsers writers
fuzz-deps: deps
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz

fuzz: fuzz-deps
	cargo +nightly fuzz build -O -a --target-dir target/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s" >&2; \
	  mkdir -p fuzz/corpus/$$t; \
	  cargo +nightly fuzz run -O -a --target-dir target/fuzz $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 || exit 1; \
	done

# Regenerates man/ from the clap definitions (a test keeps them in sync).
man:
	LIFTKIT_BLESS=1 $(CARGO) test --test man_pages

# Every tool (and ovirt-sim), its man page, and its bash, zsh and fish completions, written by the
# installed tool itself (`TOOL completions SHELL`, from its clap definition).
install: deps-rust
	$(CARGO) install --locked --path . --root $(DESTDIR)$(PREFIX) $(foreach t,$(INSTALL_BINS),--bin $(t))
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -d $(BASH_COMPLETIONS) $(ZSH_COMPLETIONS) $(FISH_COMPLETIONS)
	@set -e; for t in $(TOOLS); do \
	  $(BINDIR)/$$t completions bash >$(BASH_COMPLETIONS)/$$t; \
	  $(BINDIR)/$$t completions zsh >$(ZSH_COMPLETIONS)/_$$t; \
	  $(BINDIR)/$$t completions fish >$(FISH_COMPLETIONS)/$$t.fish; \
	done
	@echo "make install: $(words $(TOOLS)) tools and ovirt-sim in $(BINDIR), man pages, bash/zsh/fish completions" >&2

# Builds the Kubernetes test bed once (kube-apiserver + etcd from the Go module proxy, cached in
# ~/.cache/liftkit; about 15 minutes the first time) and runs its smoke check.
# A kube-apiserver + etcd and forklift-sim in the foreground; prints the KUBECONFIG to use.
testbed: build testbed-bin
	tests/kube-testbed/foreground.sh

# The test bed's own checks: server-side apply, schema validation, RBAC, watches, restart.
testbed-smoke: testbed-bin
	tests/kube-testbed/smoke.sh

# liftkit against its peers (oVirt Python SDK, jq, serde_json) on this machine: prints a table and
# writes bench/RESULTS.md (bench/README.md says what and how). Not part of `make test`: ~15 minutes.
BENCH_VENV ?= $(HOME)/.cache/liftkit/bench-venv
bench: deps
	@pkgs=""; \
	[ -x /usr/bin/time ] || pkgs="$$pkgs time"; \
	for c in jq curl gcc; do command -v $$c >/dev/null || pkgs="$$pkgs $$c"; done; \
	for p in libxml2-dev python3-dev python3-venv; do dpkg -s $$p >/dev/null 2>&1 || pkgs="$$pkgs $$p"; done; \
	if [ -n "$$pkgs" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "make bench: installing$$pkgs" >&2; \
		$$sudo apt-get update -q && $$sudo apt-get install -y -q $$pkgs; \
	fi
	@$(BENCH_VENV)/bin/python -c 'import ovirtsdk4' 2>/dev/null || { \
		python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q ovirt-engine-sdk-python; }
	@$(BENCH_VENV)/bin/python -c 'import duckdb' 2>/dev/null || $(BENCH_VENV)/bin/pip install -q duckdb
	$(CARGO) build --release --bins
	$(CARGO) bench -p common --bench jsonl --no-run
	LIFTKIT_BENCH_VENV=$(BENCH_VENV) bench/run.sh

clean:
	$(CARGO) clean
