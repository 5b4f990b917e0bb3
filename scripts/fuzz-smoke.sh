#!/usr/bin/env bash
# Runs every native fuzz target of the module for FUZZTIME (default 10s),
# found anew on each run. A run that fails only with the Go fuzzer's
# end-of-time flake ("context deadline exceeded", no failing input written)
# is run again, up to three times; a real failure (a crasher written under
# testdata/fuzz) fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
[ -n "$pkgs" ] || { echo "fuzz: no Fuzz targets"; exit 0; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for dir in $pkgs; do
	pkg=$($GO list "$dir")
	for name in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		for attempt in 1 2 3; do
			echo "fuzz: $pkg $name for $FUZZTIME (attempt $attempt)"
			if $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
				cat "$out"
				break
			fi
			cat "$out"
			if grep -q 'Failing input written' "$out" || ! grep -q 'context deadline exceeded' "$out" || [ "$attempt" = 3 ]; then
				exit 1
			fi
			echo "fuzz: $name: the fuzzer's end-of-time flake, no failing input; running it again"
		done
	done
done
