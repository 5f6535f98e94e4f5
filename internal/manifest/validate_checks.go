package manifest

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/signal/journey"
	"github.com/lastgood/lastgood/internal/signal/webhook"
)

const (
	// maxAlpha bounds analysis.alpha: a budget above one half would make a
	// rollback of a good revision likelier than not.
	maxAlpha = 0.5
	// maxWebhookTimeout bounds one call of a webhook judge, so that a slow
	// judge cannot hold an analysis step for long.
	maxWebhookTimeout = Duration(time.Minute)
)

func (v *validator) webhook(path string, h *Webhook) {
	if h.URL == "" {
		v.fail(path+".url", "is required: the judge's http:// or https:// URL, like http://127.0.0.1:9000/judge")
	} else if err := webhook.ValidateURL(h.URL); err != nil {
		v.fail(path+".url", "%s", strings.TrimPrefix(err.Error(), webhook.ErrInvalidURL.Error()+": "))
	}
	v.positive(path+".timeout", h.Timeout)
	if h.Timeout > maxWebhookTimeout {
		v.fail(path+".timeout", "must be at most %s, got %s", maxWebhookTimeout, h.Timeout)
	}
}

func (v *validator) journey(path string, j *Journey) {
	v.positive(path+".timeout", j.Timeout)
	if len(j.Steps) == 0 {
		v.fail(path+".steps", "at least one step is required, like - {name: home, path: /}")
		return
	}
	for i, s := range j.Steps {
		// One step at a time, so each problem is reported at its step.
		// Sorted, as the journey package reports headers in map order.
		problems := journeyProblems(journey.Validate([]journey.Step{s}))
		slices.SortFunc(problems, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		for _, e := range problems {
			field, msg := journeyField(e)
			v.fail(index(path+".steps", i)+field, "%s", msg)
		}
	}
}

// journeyProblems lists the single problems inside an error from
// journey.Validate, which joins them and wraps them with the step.
func journeyProblems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, journeyProblems(e)...)
		}
		return out
	}
	if inner := errors.Unwrap(err); inner != nil && inner != journey.ErrInvalid {
		return journeyProblems(inner)
	}
	return []error{err}
}

// journeyField maps one problem reported by journey.Validate to the step
// field it is about (".method", ".headers.X-Token" …) and the message to
// show there. A problem it does not recognise stays on the step.
func journeyField(err error) (field, msg string) {
	msg = strings.TrimPrefix(err.Error(), journey.ErrInvalid.Error()+": ")
	word, rest, _ := strings.Cut(msg, " ")
	switch word = strings.TrimSuffix(word, ":"); word {
	case "method", "path", "expectStatus", "expectBody":
		return "." + word, msg
	case "header":
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			if name, err := strconv.Unquote(q); err == nil {
				return ".headers." + name, msg
			}
		}
		return ".headers", msg
	}
	return "", msg
}
