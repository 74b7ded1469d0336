# flowtap — build and test entry points. See README.md.
#   make run     install what is missing, build, start a collector + flowtap on the whole host
#   make test    install what is missing, build, run every test (unit + real kernel + real collector)
#   make build   build bpf -> native -> TypeScript without running anything
#   make lint    strict type checks, the formatter's check, C/C++ with -Wall -Werror (part of make test)
#   make accuracy  run the accuracy scenarios (packet capture as the oracle) and rewrite docs/accuracy.md
#   make bench   build, then run the benchmarks (bench/) and rewrite docs/benchmarks.md
#   make image-test  build the container image (deploy/Dockerfile) with podman from local bases, run it chrooted
#   make screenshots  docs/images/*.png from a real run (flowtap's records in VictoriaLogs' web UI)
#   make docs    rewrite the record's tables in README.md and docs/record.md from src/record/schema.ts
#   make soak    a 10-minute run at a steady rate on the real kernel path: flat memory/fds, nothing lost (SOAK_SECONDS=600)
SHELL := /bin/bash
.DEFAULT_GOAL := build
ROOT := $(CURDIR)
BUILD := build
# The Node.js >= 22.15 that builds and runs flowtap (deploy/setup/node.sh writes it).
NODE = $(shell cat tools/node-path 2>/dev/null || echo node)
NODE_DIR = $(dir $(NODE))
export PATH := $(ROOT)/tools/node/node_modules/node/bin:$(PATH)

CLANG ?= clang
BPFTOOL ?= bpftool
CXX ?= g++
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I/usr/include/$(MULTIARCH) -Ibpf
CXXFLAGS_ADDON := -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-fvisibility=hidden -Inode_modules/node-api-headers/include \
	-Inode_modules/node-addon-api -I$(BUILD) -Ibpf \
	-DNAPI_VERSION=9 -DNODE_ADDON_API_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED -fexceptions

BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_HDR := $(wildcard bpf/*.h)
NATIVE_SRC := $(wildcard native/*.cc native/*.c)
NATIVE_HDR := $(wildcard native/*.h)
TS_SRC := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: all deps build bpf native ts collector kubetools helm victorialogs jaeger test test-unit accuracy run clean lint bench image-test soak screenshots screenshot-victorialogs docs
all: build

# --- set-up ---------------------------------------------------------------
tools/.deps-stamp: deploy/setup/deps.sh
	deploy/setup/deps.sh
	@mkdir -p tools && touch $@

tools/node-path: tools/.deps-stamp deploy/setup/node.sh
	deploy/setup/node.sh > $@.tmp && mv $@.tmp $@

node_modules/.package-lock.json: package.json package-lock.json tools/node-path
	npm ci --no-audit --no-fund
	@touch $@

deps: tools/.deps-stamp tools/node-path node_modules/.package-lock.json

collector: tools/.deps-stamp
	deploy/setup/collector.sh > /dev/null

# VictoriaLogs, the log store of the end-to-end query test (test/integration/victorialogs.collector.test.ts)
victorialogs: tools/.deps-stamp
	deploy/setup/victorialogs.sh > /dev/null

# kubernetes-validate + kustomize for the manifest test (test/integration/deploy-kubernetes.test.ts)
kubetools: tools/.deps-stamp
	deploy/setup/kubetools.sh > /dev/null

# helm v4 for the Helm chart test (test/integration/helm.test.ts)
helm: tools/.deps-stamp
	deploy/setup/helm.sh > /dev/null

# Jaeger (all-in-one, in-memory) for the spans test (test/integration/spans.jaeger.test.ts);
# built once from Go modules into ~/.cache/flowtap/ by deploy/setup/jaeger.sh
jaeger: tools/.deps-stamp
	deploy/setup/jaeger.sh > /dev/null

# --- build: bpf -> native -> TypeScript ----------------------------------
$(BUILD)/flowtap.bpf.o: $(BPF_SRC) $(BPF_HDR) tools/.deps-stamp
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c bpf/flowtap.bpf.c -o $@

$(BUILD)/flowtap.skel.h: $(BUILD)/flowtap.bpf.o
	$(BPFTOOL) gen skeleton $< name flowtap_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/flowtap.node: $(NATIVE_SRC) $(NATIVE_HDR) $(BUILD)/flowtap.skel.h bpf/flowtap.h node_modules/.package-lock.json
	$(CXX) $(CXXFLAGS_ADDON) -shared -o $@ $(filter %.cc %.c,$(NATIVE_SRC)) -lbpf -lelf -lz -lpthread

dist/.stamp: $(TS_SRC) tsconfig.json node_modules/.package-lock.json
	npx tsc -p tsconfig.json
	@chmod +x dist/cli.js 2>/dev/null || true
	@touch $@

bpf: $(BUILD)/flowtap.skel.h
native: $(BUILD)/flowtap.node
ts: dist/.stamp
build: deps bpf native ts

# --- run and test -------------------------------------------------------
run: build collector
	deploy/setup/run.sh

# Strict type checks of src/, test/ and bench/, the formatter's check, and the
# C/C++ with -Wall -Werror (bpf/ and native/ build with it; here without linking).
lint: build
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p test/tsconfig.json --noEmit
	npx tsc -p bench/tsconfig.json --noEmit
	npx prettier --check 'src/**/*.ts' 'test/**/*.ts' 'bench/**/*.mts'
	$(CLANG) $(BPF_CFLAGS) -fsyntax-only bpf/flowtap.bpf.c bench/empty.bpf.c
	$(CXX) $(CXXFLAGS_ADDON) -fsyntax-only $(filter %.cc,$(NATIVE_SRC))
	$(CC) -O2 -Wall -Wextra -Werror -fsyntax-only bench/loadgen.c

test: lint build collector kubetools helm victorialogs jaeger
	FLOWTAP_OTELCOL="$$(deploy/setup/collector.sh)" FLOWTAP_KUBETOOLS="$$(deploy/setup/kubetools.sh)" FLOWTAP_HELM="$$(deploy/setup/helm.sh)" FLOWTAP_VICTORIALOGS="$$(deploy/setup/victorialogs.sh)" FLOWTAP_JAEGER="$$(deploy/setup/jaeger.sh)" npx jest --runInBand --json --outputFile=$(BUILD)/jest-results.json

test-unit: build
	npx jest --runInBand test/unit

# The container image: deploy/image/build.sh (podman, a debootstrapped Debian +
# Node.js 24 build image; installs podman and debootstrap when missing), then
# the image's ENTRYPOINT + CMD run chrooted as its non-root user with only
# CAP_BPF + CAP_NET_ADMIN (test/image/image.test.ts prints the size and the
# timings).
image-test: build collector
	FLOWTAP_OTELCOL="$$(deploy/setup/collector.sh)" npx jest --runInBand test/image

# The scenarios write one row each to build/accuracy.json; the table is
# rewritten even when a scenario fails (it shows the failure), and the exit
# status is jest's.
accuracy: build collector
	rm -f $(BUILD)/accuracy.json
	FLOWTAP_OTELCOL="$$(deploy/setup/collector.sh)" npx jest --runInBand test/accuracy; status=$$?; \
	  $(NODE) --experimental-strip-types --no-warnings test/accuracy/report.ts $(BUILD)/accuracy.json docs/accuracy.md && exit $$status

# The record's tables (events, attributes, seed arguments) between the
# <!-- schema:<table>:begin/end --> markers, rendered from the record schema.
SCHEMA_DOCS := README.md docs/record.md

docs: ts
	$(NODE) dist/record/write-docs.js $(SCHEMA_DOCS)

# --- benchmarks: bench/ -> docs/benchmarks.md -------------------------------
BENCH_BUILD := $(BUILD)/bench

$(BENCH_BUILD)/empty.bpf.o: bench/empty.bpf.c tools/.deps-stamp
	@mkdir -p $(BENCH_BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BENCH_BUILD)/loadgen: bench/loadgen.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $<

bench: build collector $(BENCH_BUILD)/empty.bpf.o $(BENCH_BUILD)/loadgen
	npx tsc -p bench/tsconfig.json
	$(NODE) --disable-warning=MODULE_TYPELESS_PACKAGE_JSON bench/run.mts

# Not a test: minutes long, and its verdict is about trends (bench/soak.mts says
# what "flat" means). Results: bench/out/soak.{json,md}; exit 1 on FAIL.
soak: build collector $(BENCH_BUILD)/loadgen
	FLOWTAP_OTELCOL="$$(deploy/setup/collector.sh)" $(NODE) --disable-warning=MODULE_TYPELESS_PACKAGE_JSON bench/soak.mts

# docs/images/victorialogs.png from a real run: flowtap → VictoriaLogs over
# OTLP/HTTP, its web UI shot with headless Chromium (installed when missing).
screenshot-victorialogs: build
	deploy/setup/screenshot-victorialogs.sh docs/images/victorialogs.png

screenshots: screenshot-victorialogs

clean:
	rm -rf $(BUILD) dist
