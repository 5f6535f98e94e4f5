package otlp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func seeds(f *testing.F) {
	for _, td := range []struct {
		tasks, calls, failed, truncated int
	}{{1, 1, 0, 0}, {3, 2, 1, 1}, {0, 0, 0, 0}} {
		pb, _ := ptraceotlp.NewExportRequestFromTraces(agentTraces("agent", 1, td.tasks, td.calls, td.failed, td.truncated)).MarshalProto()
		f.Add(pb)
	}
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	// Tool calls out of order, an evaluation event, a span of one.
	td, spans := oneRevision()
	agent := taskSpans(spans, 1, []string{"lookup", "search"}, []int{2, 1})
	e := agent.Events().AppendEmpty()
	e.SetName(eventEvaluation)
	e.Attributes().PutStr(attrEvalName, "helpfulness")
	e.Attributes().PutDouble(attrEvalScore, 0.5)
	ev := spans.AppendEmpty()
	ev.SetName(eventEvaluation)
	ev.Attributes().PutStr(attrEvalName, "relevance")
	ev.Attributes().PutStr(attrEvalScoreV0, "3")
	pb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	f.Add(pb)
}

// FuzzHandler sends arbitrary bodies, in each encoding, through the
// whole HTTP handler: it never panics, answers 200 or a 4xx, and a 4xx
// aggregates nothing.
func FuzzHandler(f *testing.F) {
	seeds(f)
	js, _ := ptraceotlp.NewExportRequestFromTraces(agentTraces("agent", "2", 2, 2, 1, 1)).MarshalJSON()
	f.Add(js)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []struct{ ctype, enc string }{{protobufType, ""}, {jsonType, ""}, {protobufType, "gzip"}} {
			r := New(Config{MaxBody: 64 << 10})
			b := body
			if c.enc == "gzip" {
				b = gzipped(body)
			}
			req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(b))
			req.Header.Set("Content-Type", c.ctype)
			if c.enc != "" {
				req.Header.Set("Content-Encoding", c.enc)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			switch {
			case w.Code == 200:
			case w.Code >= 400 && w.Code < 500:
				if st := r.Stats(); st.Spans != 0 || len(r.aggs) != 0 {
					t.Fatalf("%s %s: refused with %d but aggregated %+v", c.ctype, c.enc, w.Code, st)
				}
			default:
				t.Fatalf("%s %s: status %d", c.ctype, c.enc, w.Code)
			}
			// What is kept for incidents stays within its bounds.
			for k := range r.aggs {
				for _, s := range r.TraceSamples(k.App, k.Revision, k.Revision+1) {
					if len(s.Spans) > maxTraceSpans+1 || len(s.Why) == 0 {
						t.Fatalf("a trace sample of %d spans, why %v", len(s.Spans), s.Why)
					}
				}
			}
		}
	})
}

// FuzzProtoJSON is differential against pdata's own marshalers: a
// protobuf body that decodes, re-encoded as OTLP/JSON by pdata and
// received again, gives the same aggregates and the same drop counts.
func FuzzProtoJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		td, rerr := Decode(protobufType, body)
		if rerr != nil {
			return
		}
		js, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		if err != nil {
			t.Fatalf("pdata cannot marshal what it unmarshalled: %v", err)
		}
		td2, rerr := Decode(jsonType, js)
		if rerr != nil {
			t.Fatalf("pdata's JSON of a decoded request does not decode: %v\n%s", rerr, js)
		}
		a, b := New(Config{Cohorts: []string{"v"}}), New(Config{Cohorts: []string{"v"}})
		da, db := a.Ingest(td), b.Ingest(td2)
		if da != db || !reflect.DeepEqual(a.aggs, b.aggs) || a.Stats() != b.Stats() {
			t.Fatalf("protobuf and JSON of the same traces differ:\n%+v %d\n%+v %d", a.aggs, da, b.aggs, db)
		}
	})
}
