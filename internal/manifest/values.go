package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// mismatch is returned by a scalar parser when the written value has the
// wrong shape; the decoder turns it into "expected <want>, got <what>".
type mismatch struct{ want string }

func (m *mismatch) Error() string { return "expected " + m.want }

// errOutOfRange is returned for numbers that do not fit.
var errOutOfRange = errors.New("out of range")

// scalar is implemented by the manifest's value types that are written as
// one YAML scalar with a syntax of their own. tag is the YAML short tag
// ("!!str", "!!int" …) and value the scalar as written.
type scalar interface {
	setScalar(tag, value string) error
}

// durationShape matches what looks like a Go duration with known units, so
// that one time.ParseDuration still rejects is too large rather than
// misspelled.
var durationShape = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)

// String formats d as a Go duration ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) setScalar(tag, value string) error {
	want := &mismatch{`a duration like "30s" or "1m30s"`}
	if tag == "!!int" && value == "0" {
		*d = 0
		return nil
	}
	if tag != "!!str" {
		return want
	}
	v, err := time.ParseDuration(value)
	switch {
	case err != nil && durationShape.MatchString(value):
		return fmt.Errorf("duration %s is %w", value, errOutOfRange)
	case err != nil:
		return want
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: expected a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}}

// String formats s with the largest binary suffix that divides it exactly
// ("512Mi"), or as a plain byte count.
func (s Size) String() string {
	for _, u := range sizeUnits {
		if s != 0 && s%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(s)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// parseSize reads a byte count: digits, optionally followed by Ki, Mi, Gi
// or Ti.
func parseSize(value string) (Size, error) {
	digits, shift := value, uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(value, u.suffix) {
			digits, shift = strings.TrimSuffix(value, u.suffix), u.shift
			break
		}
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, &mismatch{`a size in bytes, or with a suffix like "512Mi" (Ki, Mi, Gi, Ti)`}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %s is %w", value, errOutOfRange)
	}
	return Size(n << shift), nil
}

func (s *Size) setScalar(tag, value string) error {
	if tag != "!!str" && tag != "!!int" {
		return &mismatch{`a size in bytes, or with a suffix like "512Mi" (Ki, Mi, Gi, Ti)`}
	}
	if tag == "!!int" {
		// YAML integers may carry a sign, a base prefix or underscores.
		n, err := parseInt(value)
		if err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("must not be negative, got %d", n)
		}
		*s = Size(n)
		return nil
	}
	v, err := parseSize(value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON writes s as a byte count.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(int64(s)) }

// UnmarshalJSON reads a byte count, or a string with a binary suffix.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		v, err := parseSize(str)
		if err != nil {
			return fmt.Errorf("size: %w", err)
		}
		*s = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("size: expected a byte count: %w", err)
	}
	*s = Size(n)
	return nil
}

// String formats v as "3" or "25%".
func (v IntOrPercent) String() string {
	if v.Percent {
		return strconv.Itoa(v.Value) + "%"
	}
	return strconv.Itoa(v.Value)
}

// parsePercent reads "25%".
func parsePercent(s string) (IntOrPercent, error) {
	digits, ok := strings.CutSuffix(s, "%")
	if !ok || digits == "" || strings.Trim(strings.TrimPrefix(digits, "-"), "0123456789") != "" {
		return IntOrPercent{}, &mismatch{`an integer or a percentage like "25%"`}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return IntOrPercent{}, fmt.Errorf("%s is %w", s, errOutOfRange)
	}
	return IntOrPercent{Value: n, Percent: true}, nil
}

func (v *IntOrPercent) setScalar(tag, value string) error {
	switch tag {
	case "!!int":
		n, err := parseInt(value)
		if err != nil {
			return err
		}
		*v = IntOrPercent{Value: n}
		return nil
	case "!!str":
		p, err := parsePercent(value)
		if err != nil {
			return err
		}
		*v = p
		return nil
	}
	return &mismatch{`an integer or a percentage like "25%"`}
}

// MarshalJSON writes v as a number, or as a string like "25%".
func (v IntOrPercent) MarshalJSON() ([]byte, error) {
	if v.Percent {
		return json.Marshal(v.String())
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads a number or a string like "25%".
func (v *IntOrPercent) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		p, err := parsePercent(s)
		if err != nil {
			return fmt.Errorf("intOrPercent: %w", err)
		}
		*v = p
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("intOrPercent: expected a number or a percentage: %w", err)
	}
	*v = IntOrPercent{Value: n}
	return nil
}

// parseInt reads a YAML integer (sign, 0x/0o/0b prefix and underscores
// allowed, as the YAML resolver does).
func parseInt(value string) (int, error) {
	n, err := strconv.ParseInt(strings.ReplaceAll(value, "_", ""), 0, 64)
	if errors.Is(err, strconv.ErrRange) || (err == nil && int64(int(n)) != n) {
		return 0, fmt.Errorf("number %s is %w", value, errOutOfRange)
	}
	if err != nil {
		return 0, &mismatch{"an integer"}
	}
	return int(n), nil
}

// shareWant is what a Share is written as.
const shareWant = `a whole percentage of traffic like "2%", or 0`

// String formats s as "2%".
func (s Share) String() string { return strconv.Itoa(int(s)) + "%" }

// parseShare reads "2%".
func parseShare(value string) (Share, error) {
	digits, ok := strings.CutSuffix(value, "%")
	if !ok || digits == "" || strings.Trim(strings.TrimPrefix(digits, "-"), "0123456789") != "" {
		return 0, &mismatch{shareWant}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > 100 || n < -100 {
		return 0, fmt.Errorf("%s is %w", value, errOutOfRange)
	}
	return Share(n), nil
}

func (s *Share) setScalar(tag, value string) error {
	switch {
	case tag == "!!int" && value == "0":
		*s = 0
		return nil
	case tag == "!!str":
		v, err := parseShare(value)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	return &mismatch{shareWant}
}

// MarshalJSON writes s as a string like "2%".
func (s Share) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a string like "2%", or the number 0.
func (s *Share) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		v, err := parseShare(str)
		if err != nil {
			return fmt.Errorf("share: %w", err)
		}
		*s = v
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil || n != 0 {
		return fmt.Errorf("share: expected a percentage like \"2%%\" or 0")
	}
	*s = 0
	return nil
}
