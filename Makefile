# AgentGate: `make demo` sets everything up (an optimized build) and runs a supervised session
# on the built-in policy; `make test` runs every test (run as root, the supervisor suites run
# again as user nobody). Both install missing Debian packages first.
SWIFT ?= swift
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := libseccomp-dev libcap-dev libsqlite3-dev python3 gcc make

.PHONY: deps deb-deps build release deb deb-test demo test fuzz fuzz-ci api-fuzz soak fidelity agents dashboard-test bench clean

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# What `make deb` needs besides: dpkg-shlibdeps, man's --warnings, strip.
deb-deps: deps
	@missing=""; for p in dpkg-dev man-db binutils; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -j $(JOBS)
	scripts/build-hook.sh .build/debug

# The optimized programs, with the Swift runtime and Foundation linked in (as in the Debian
# package) and bound at start with read-only relocations: a start takes about 6 ms less than
# with Swift's shared libraries (README, Performance). Build the release configuration always
# this way: a plain `swift build -c release` compiles every module again, and back.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xlinker -z -Xlinker now -Xlinker -z -Xlinker relro
release: deps
	$(SWIFT) build $(RELEASE_FLAGS) -j $(JOBS)
	scripts/build-hook.sh .build/release

# agentgate_VERSION_amd64.deb in .build-deb/: one static binary (no Swift toolchain needed where
# it is installed), policies, systemd units, man pages, completions (scripts/build-deb.sh).
deb: deb-deps
	JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/build-deb.sh .build-deb

# The demo builds what people run: the optimized build (.build/release). What supervision adds
# is 1.7 to 3.5 times as much under the debug build, which the tests use (README).
demo: release
	scripts/demo.sh .build/release

test: deb-deps
	JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/test.sh

# Every fuzz target (libFuzzer + AddressSanitizer) for FUZZ_SECONDS each; figures in README.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) scripts/fuzz.sh

# What `make test` runs last: each target for a few seconds from its seeds, so a crash
# regression can't land. It reuses .build's dependency objects (only the fuzzed modules are
# rebuilt, instrumented; the next `swift build` rebuilds them plain).
fuzz-ci: deps
	FUZZ_BUILD_PATH=.build FUZZ_SECONDS=4 FUZZ_FRESH=1 FUZZ_OPTIMIZE=0 SWIFT=$(SWIFT) scripts/fuzz.sh || [ $$? = 77 ]

# Schemathesis against agentgate serve's OpenAPI document (PyPI; exit 77 when it can't be installed).
# Not part of `make test`: 30 s to 2 min here, depending on load.
api-fuzz: build
	scripts/api-fuzz.sh .build/debug || [ $$? = 77 ]

# Race, load and fault soaks of the supervisor (SOAK_SECONDS per race, SOAK_MINUTES of load).
soak: build
	scripts/soak.sh .build/debug

# The package as `make test` can afford it: the same static binary built unoptimized from
# .build's objects (a release build takes ~10 min more), installed on a clean Debian root and
# purged (skipped, with the reason, when that can't run here: exit 77).
deb-test: deb-deps
	AGENTGATE_DEB_CONFIGURATION=debug AGENTGATE_DEB_SCRATCH=.build JOBS=$(JOBS) SWIFT=$(SWIFT) scripts/build-deb.sh .build-deb/debug-package
	scripts/deb-install-test.sh .build-deb/debug-package/agentgate_*_amd64.deb || [ $$? = 77 ]

# CPython's regression tests bare and supervised; reports every test that only fails supervised.
fidelity: build
	scripts/fidelity.sh .build/debug

# Real agents (mini-swe-agent, Claude Code CLI) under the built-in policy, driven by a scripted
# model on loopback; fails on any false denial. Needs PyPI (venvs in ~/.cache/agentgate-agents).
agents: build
	scripts/agents-test.sh .build/debug

# The dashboard in headless Chromium (installed from Debian's packages when missing) against a
# real `agentgate serve` and real supervised sessions; writes docs/dashboard.png. Skipped, with
# the reason, when it can't run here (exit 77).
dashboard-test: build
	scripts/dashboard-test.sh .build/debug || [ $$? = 77 ]

# Figures, not timed tests: wake-up and injection modes (run.sh), then per-trap latency against a
# C floor and strace -f, and five real workloads, bare and supervised in one run (workloads.sh).
bench: release
	Benchmarks/run.sh
	Benchmarks/workloads.sh

clean:
	rm -rf .build .build-deb
