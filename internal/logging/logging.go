// Package logging makes tenantlake's structured logs: slog JSON lines with
// the field names Cloud Logging reads from a function's stdout (severity,
// message, time, logging.googleapis.com/trace and .../labels), so that on
// GCP every line is filtered by tenant, snapshot, table, target and request
// id, and correlated with its request's trace.
package logging

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
)

// Cloud Logging's special fields in a JSON log line.
const (
	FieldTrace  = "logging.googleapis.com/trace"
	FieldLabels = "logging.googleapis.com/labels"
)

// NewJSON returns a logger writing JSON lines to w at level and above, with
// labels (e.g. the function's name) on every line.
func NewJSON(w io.Writer, level slog.Level, labels map[string]string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	})
	var handler slog.Handler = traceHandler{h}
	if len(labels) > 0 {
		attrs := make([]any, 0, len(labels))
		for k, v := range labels {
			attrs = append(attrs, slog.String(k, v))
		}
		handler = handler.WithAttrs([]slog.Attr{slog.Group(FieldLabels, attrs...)})
	}
	return slog.New(handler)
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

type traceKey struct{}

// WithTrace returns ctx carrying the Cloud Trace resource of r's trace
// header (X-Cloud-Trace-Context or W3C traceparent) in project; every line
// logged with that ctx carries it. Without a header, ctx is returned as is.
func WithTrace(ctx context.Context, project string, r *http.Request) context.Context {
	id := ""
	if m := cloudTraceRE.FindStringSubmatch(r.Header.Get("X-Cloud-Trace-Context")); m != nil {
		id = m[1]
	} else if m := traceparentRE.FindStringSubmatch(r.Header.Get("traceparent")); m != nil {
		id = m[1]
	}
	if id == "" || project == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, "projects/"+project+"/traces/"+id)
}

var (
	cloudTraceRE  = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/|;|$)`)
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// traceHandler adds the trace of the record's context.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if t, ok := ctx.Value(traceKey{}).(string); ok {
		r.AddAttrs(slog.String(FieldTrace, t))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
