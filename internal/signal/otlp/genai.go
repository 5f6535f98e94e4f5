package otlp

import (
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The OpenTelemetry names the receiver reads. Resource attributes say
// whose a span is; the GenAI semantic conventions
// (https://opentelemetry.io/docs/specs/semconv/gen-ai/) say what it did.
// Where the conventions renamed an attribute, both the current name and
// the older one that SDKs still emit are read (docs/agents.md).
const (
	AttrApp      = "lastgood.app"
	AttrRevision = "lastgood.revision"

	attrOperation     = "gen_ai.operation.name"
	attrToolName      = "gen_ai.tool.name"
	attrInputTokens   = "gen_ai.usage.input_tokens"
	attrOutputTokens  = "gen_ai.usage.output_tokens"
	attrPromptTokens  = "gen_ai.usage.prompt_tokens"     // older name of input_tokens
	attrComplTokens   = "gen_ai.usage.completion_tokens" // older name of output_tokens
	attrFinishReasons = "gen_ai.response.finish_reasons"
	attrErrorType     = "error.type"

	// An evaluation result is an event (or a span) named
	// gen_ai.evaluation.result with the evaluation's name and a numeric
	// score; gen_ai.evaluation.score is the name of the score in the
	// conventions' first draft of the event, read when score.value is
	// absent.
	eventEvaluation = "gen_ai.evaluation.result"
	attrEvalName    = "gen_ai.evaluation.name"
	attrEvalScore   = "gen_ai.evaluation.score.value"
	attrEvalScoreV0 = "gen_ai.evaluation.score"

	// OpInvokeAgent is the operation of a span that covers one task of an
	// agent; OpExecuteTool one tool call.
	OpInvokeAgent = "invoke_agent"
	OpExecuteTool = "execute_tool"
)

// operation returns a span's GenAI operation: gen_ai.operation.name, else
// the first word of its name, as the conventions name spans
// "{operation} {target}" ("execute_tool get_weather").
func operation(s ptrace.Span) string {
	if v, ok := s.Attributes().Get(attrOperation); ok && v.Str() != "" {
		return v.Str()
	}
	name, _, _ := strings.Cut(s.Name(), " ")
	return name
}

// failed reports whether a span ended in error: an error status, or an
// error.type attribute (the conventions set it on failed operations).
func failed(s ptrace.Span) bool {
	if s.Status().Code() == ptrace.StatusCodeError {
		return true
	}
	_, ok := s.Attributes().Get(attrErrorType)
	return ok
}

// tokens returns a span's input plus output tokens and whether it reports
// any.
func tokens(attrs pcommon.Map) (uint64, bool) {
	var sum uint64
	any := false
	for _, pair := range [][2]string{{attrInputTokens, attrPromptTokens}, {attrOutputTokens, attrComplTokens}} {
		for _, name := range pair {
			if n, ok := count(attrs, name); ok {
				sum += n
				any = true
				break
			}
		}
	}
	return sum, any
}

// count reads a non-negative integer attribute, which SDKs send as an int,
// sometimes as a double or a string.
func count(attrs pcommon.Map, name string) (uint64, bool) {
	v, ok := attrs.Get(name)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		if v.Int() >= 0 {
			return uint64(v.Int()), true
		}
	case pcommon.ValueTypeDouble:
		if f := v.Double(); f >= 0 && f < 1<<63 {
			return uint64(f), true
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseUint(v.Str(), 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// finishReasons returns whether a span reports finish reasons, and
// whether one of them says the answer was cut off: "length" (OpenAI and
// the conventions) or "max_tokens" (Anthropic's name).
func finishReasons(attrs pcommon.Map) (reported, truncated bool) {
	v, ok := attrs.Get(attrFinishReasons)
	if !ok {
		return false, false
	}
	check := func(s string) {
		reported = true
		if s == "length" || s == "max_tokens" {
			truncated = true
		}
	}
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		for i := range v.Slice().Len() {
			check(v.Slice().At(i).AsString())
		}
	case pcommon.ValueTypeStr:
		for _, s := range strings.Split(v.Str(), ",") {
			check(strings.TrimSpace(s))
		}
	}
	return reported, truncated
}

// revisionOf reads lastgood.revision, an int or a decimal string.
func revisionOf(attrs pcommon.Map) (int, bool) {
	v, ok := attrs.Get(AttrRevision)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		if v.Int() > 0 && v.Int() < 1<<31 {
			return int(v.Int()), true
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.Atoi(v.Str()); err == nil && n > 0 {
			return n, true
		}
	}
	return 0, false
}

// evaluation reads an evaluation result's name and numeric score.
func evaluation(attrs pcommon.Map) (name string, score float64, ok bool) {
	v, ok := attrs.Get(attrEvalName)
	if !ok || v.AsString() == "" {
		return "", 0, false
	}
	name = v.AsString()
	for _, attr := range []string{attrEvalScore, attrEvalScoreV0} {
		sv, found := attrs.Get(attr)
		if !found {
			continue
		}
		switch sv.Type() {
		case pcommon.ValueTypeDouble:
			score, ok = sv.Double(), true
		case pcommon.ValueTypeInt:
			score, ok = float64(sv.Int()), true
		case pcommon.ValueTypeStr:
			f, err := strconv.ParseFloat(sv.Str(), 64)
			score, ok = f, err == nil
		default:
			ok = false
		}
		if ok && !math.IsNaN(score) && !math.IsInf(score, 0) && score < 1e12 {
			return name, score, true
		}
	}
	return "", 0, false
}
