package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Evaluate renders the query for data, runs it at the server's current
// time, and judges the one number it returns. It never panics and never
// passes by default: whatever keeps it from seeing exactly one number is
// Inconclusive, with Err and a warning saying why. Evaluation is bounded by
// ctx and by the check's timeout.
func (c *Check) Evaluate(ctx context.Context, data TemplateData) Outcome {
	query, err := render(c.query, data)
	if err != nil {
		return inconclusive(Outcome{}, fmt.Errorf("%w: %v", ErrTemplateExec, err))
	}
	out := Outcome{Query: query}
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	val, warnings, infos, err := c.api.Query(qctx, query, time.Time{}, v1.WithTimeout(c.timeout))
	for _, w := range warnings {
		out.Warnings = append(out.Warnings, "prometheus: "+w)
	}
	for _, i := range infos {
		out.Warnings = append(out.Warnings, "prometheus (info): "+i)
	}
	if err != nil {
		return inconclusive(out, c.queryError(ctx, qctx, err))
	}
	v, err := single(val)
	if err != nil {
		return inconclusive(out, err)
	}
	out.Verdict, err = c.rules.decide(v)
	if err != nil {
		return inconclusive(out, err)
	}
	out.Value = v
	return out
}

func inconclusive(out Outcome, err error) Outcome {
	out.Verdict = Inconclusive
	out.Value = 0
	out.Err = err
	out.Warnings = append(out.Warnings, err.Error())
	return out
}

// queryError says why a query got no answer: the caller gave up, the
// check's timeout passed, the server refused the query, or it could not be
// reached at all.
func (c *Check) queryError(ctx, qctx context.Context, err error) error {
	var apiErr *v1.Error
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("query %s: evaluation stopped: %w", c.address, ctx.Err())
	case qctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s gave no answer within %s", ErrTimeout, c.address, c.timeout)
	case errors.As(err, &apiErr) && apiErr.Type == v1.ErrTimeout:
		return fmt.Errorf("%w: %s: %s", ErrTimeout, c.address, apiErr.Msg)
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: %s answered %s", ErrQuery, c.address, apiErr.Error())
	default:
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.address, err)
	}
}

// single takes the one number out of a query's answer. A vector of several
// samples is not summed: which aggregation is right (sum, max, avg) depends
// on the query, so the query must say it.
func single(val model.Value) (float64, error) {
	var v float64
	switch val := val.(type) {
	case *model.Scalar:
		v = float64(val.Value)
	case model.Vector:
		switch len(val) {
		case 0:
			return 0, fmt.Errorf("%w: the query returned no series (yet)", ErrNoData)
		case 1:
			v = float64(val[0].Value)
		default:
			return 0, fmt.Errorf("%w: the query returned %d series, e.g. %s; aggregate them (sum, max, avg ...) so that it returns one",
				ErrManySeries, len(val), val[0].Metric)
		}
	case nil:
		return 0, fmt.Errorf("%w: the answer holds no result", ErrNoData)
	default:
		return 0, fmt.Errorf("%w: the query returned a %s; want a scalar or a one-sample instant vector", ErrUnsupported, val.Type())
	}
	if math.IsNaN(v) {
		return 0, fmt.Errorf("%w (a division by zero with no traffic, usually)", ErrNaN)
	}
	return v, nil
}
