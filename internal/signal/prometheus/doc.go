// Package prometheus is the Prometheus signal: a check that runs a PromQL
// query over Prometheus' HTTP API and judges its single number with failIf
// and passIf expressions over `result`.
//
// Compile validates everything that can be validated without a server — the
// query template, the PromQL syntax of the query it renders, the
// expressions — and reports each problem with the part it is in and its
// position. Evaluate renders the query for one rollout, runs it and turns
// the answer into a verdict. Anything that keeps the check from seeing one
// number (an unreachable server, a query error, a timeout, no series,
// several series, NaN) is inconclusive with a warning, never a pass or a
// failure.
package prometheus
