# make test  — the whole suite (scripts/test.sh installs what it needs)
# make demo  — watch a release go wrong and come back
# make bench — the benchmarks (results go to bench/RESULTS.md by hand)
.PHONY: test demo build bench

test:
	scripts/test.sh

demo:
	go run ./cmd/lastgood demo

build:
	go build -o lastgood ./cmd/lastgood

bench:
	bench/router/run.sh
