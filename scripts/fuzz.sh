#!/usr/bin/env bash
# Fuzzes every fuzz target of the module (or those matching PATTERN), one
# after another, for FUZZTIME each (default 8s). What a target finds is
# written to its package's testdata/fuzz/<target>/ and fails the run.
# Usage: [FUZZTIME=2h] scripts/fuzz.sh [PATTERN]    e.g. FUZZTIME=2h scripts/fuzz.sh 'FuzzDiff(Requests|Responses)' (PATTERN is an ERE; FuzzDiff alone also matches textdiff's)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
fuzztime="${FUZZTIME:-8s}"
pattern="${1:-^Fuzz}"

found=0
for dir in $(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		if ! grep -Eq "$pattern" <<<"$target"; then
			continue
		fi
		found=$((found + 1))
		printf '\n== fuzz %s ./%s for %s\n' "$target" "$dir" "$fuzztime"
		# Go's fuzzer can end a run with "context deadline exceeded" when the
		# time is up while a worker is busy on a slow input (no input is
		# written then): that run is tried once more; a real finding fails.
		out=$(mktemp)
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir" 2>&1 | tee "$out"; then
			if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
				echo "fuzz: $target stopped at its deadline without a finding; once more"
				go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir" || { rm -f "$out"; exit 1; }
			else
				rm -f "$out"
				exit 1
			fi
		fi
		rm -f "$out"
	done
done
if [ "$found" -eq 0 ]; then
	echo "no fuzz target matches $pattern" >&2
	exit 2
fi
