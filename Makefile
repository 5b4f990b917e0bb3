# Guard's build and test commands. `make test` is the README's test command:
# vet, every test (integration tests with a real Prosody, a real ejabberd
# and slixmpp included), then a short run of every native fuzz target.

GO        ?= go
FUZZTIME  ?= 10s
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all test vet unit fuzz bench-smoke bench build demo clean

all: build

test: vet unit fuzz bench-smoke

vet:
	$(GO) vet ./...
	$(GO) vet -tags purego ./xmpp

unit:
	$(GO) test $(TESTFLAGS) ./...
	GUARD_TEST_PUMPS=1 $(GO) test $(TESTFLAGS) ./proxy
	$(GO) test $(TESTFLAGS) -tags purego ./xmpp

# Every Fuzz* target of every package whose tests declare one, each for
# $(FUZZTIME). Found anew on each run: new targets need no change here.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

# Every benchmark once, at smoke size, so the suite cannot rot. Asserts
# behaviour (no resets from Guard in the storm), never timing.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x -short ./...

# The full benchmarks, Guard against HAProxy and a direct connection in the
# same run, about ten minutes on two cores; needs haproxy and prosody
# (.ci/run installs them). One run makes everything docs/performance.md
# shows: the machine and its load (bench/results/machine.json), the micro
# benchmarks of proxy/ and xmpp/ (output in bench/results/micro.txt, medians
# in micro.json), every benchmark in bench/ (bench/results/*.json), the
# figures (docs/img/*.png) and the page itself, rendered from
# bench/performance.md.tmpl.
BENCH_MICRO_TIME  ?= 1s
BENCH_MICRO_COUNT ?= 3
MICRO_BENCH        = $(GO) test -run '^$$' -bench . -benchtime $(BENCH_MICRO_TIME) -count $(BENCH_MICRO_COUNT) ./proxy ./xmpp

bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -c
bench:
	GUARD_BENCH_RECORD=1 $(GO) test -count=1 -run '^TestRecordMachine$$' ./bench
	{ echo "# command: $(MICRO_BENCH)"; $(MICRO_BENCH); } | tee bench/results/micro.txt
	GUARD_BENCH_RECORD=1 $(GO) test -count=1 -run '^TestRecordMicro$$' ./bench
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench
	$(GO) test -count=1 -run '^TestPlots$$' ./bench
	GUARD_BENCH_REPORT=1 $(GO) test -count=1 -run '^TestReport$$' ./bench

build:
	$(GO) build -o bin/guard ./cmd/guard

demo:
	./scripts/demo.sh

clean:
	rm -rf bin
