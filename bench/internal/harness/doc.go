// Package harness runs lastgood end to end for the benchmarks under bench/:
// it builds lastgood and the sample app, starts `lastgood serve` as a
// subprocess and stops it (and so every replica) again, delivers apps
// through the API, offers an open-loop load that records every response
// (or streams each to a sink, for long runs),
// and describes the machine, its CPU use and the quantiles of what was
// measured.
package harness
