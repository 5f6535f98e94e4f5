// Package conventions holds tests that keep lastgood's code base as its
// STYLE asks: every package says what it is for, and only the Kubernetes
// engine imports client-go. It has no code of its own.
package conventions
