package main

import "github.com/lastgood/lastgood/bench/internal/stats"

// The summaries are bench/internal/stats', shared with bench/window.
var (
	percentile     = stats.Percentile
	clopperPearson = stats.ClopperPearson
	share          = stats.Share
)
