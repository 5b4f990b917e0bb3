# Guard's build and test commands. `make test` is the README's test command:
# vet, every test (integration tests with a real Prosody and slixmpp
# included), then a short run of every native fuzz target.

GO        ?= go
FUZZTIME  ?= 10s
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all test vet unit fuzz bench-smoke bench build demo clean

all: build

test: vet unit fuzz bench-smoke

vet:
	$(GO) vet ./...

unit:
	$(GO) test $(TESTFLAGS) ./...

# Every Fuzz* target of every package whose tests declare one, each for
# $(FUZZTIME). Found anew on each run: new targets need no change here.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

# Every benchmark once, at smoke size, so the suite cannot rot. Asserts
# behaviour (no resets from Guard in the storm), never timing.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x -short ./...

# The full benchmarks, Guard against HAProxy and a direct connection in the
# same run (figures for docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 3 ./proxy ./xmpp
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench
	$(GO) test -count=1 -run '^TestPlots$$' ./bench

build:
	$(GO) build -o bin/guard ./cmd/guard

demo:
	./scripts/demo.sh

clean:
	rm -rf bin
