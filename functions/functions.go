// Package functions is tenantlake's Cloud Functions layer (functions-framework-go):
// five entry points that parse their input, call one operation of package
// ops and render its result. They are thin on purpose: `tenantlake` on the
// command line calls the same operations.
//
//	Schedule   HTTP (Cloud Scheduler, OIDC): one read request per active tenant
//	Read       CloudEvent from read-requests: read one tenant, publish snapshot.committed
//	Load       CloudEvent from snapshots: load into one target, publish load.finished
//	Replay     HTTP POST (analysts): resolve "as of", publish a replay
//	Snapshots  HTTP GET (analysts): a tenant's snapshots and their loads, the
//	           diff of two snapshots, and the analysts' console (a web page)
//
// On GCP, Register (called by the module's root package, which the Go
// buildpack builds) registers them by name and the deployment's
// FUNCTION_TARGET picks one; each Load deployment serves one target. On one
// machine, Mount serves them all in one process (`tenantlake run` and
// `serve`), with one Load path per target.
//
// Acknowledgement rules (an event function's nil error acknowledges the
// message; an error makes Pub/Sub redeliver it, and after the subscription's
// attempts dead-letter it):
//   - a malformed or unknown message is logged, copied to its topic's
//     dead-letter topic and acknowledged: no retry can fix it;
//   - a request that cannot succeed (ops.ErrRejected: unknown tenant or
//     snapshot, corrupt part) is acknowledged, its failure on the loads topic;
//   - anything else (a database down, a network error) is returned, so it is
//     retried; its failure is on the loads topic too.
package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/internal/logging"
	"github.com/tenantlake/tenantlake/internal/strictjson"
	"github.com/tenantlake/tenantlake/ops"
)

// Handlers serves the functions with one Ops.
type Handlers struct {
	Ops     *ops.Ops
	Topics  config.Topics
	Project string // for trace resources in logs
	// TenantTimeout bounds one event's work (0: no bound beyond the request's).
	TenantTimeout time.Duration
	Log           *slog.Logger
	// MetricsHandler, when set, is served at /metrics by Mount.
	MetricsHandler http.Handler
	// ReplayURL is where the console's page sends replay requests: the
	// Replay function ("": /Replay on the console's own host, as `tenantlake
	// run` and `serve` serve it). An absolute URL on another host must
	// allow the console's origin (CORS).
	ReplayURL string
}

func (h *Handlers) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// pushMessage is the Pub/Sub message inside a CloudEvent's data: the shape
// Eventarc sends and the framework makes of a raw push body.
type pushMessage struct {
	Message struct {
		Data       []byte            `json:"data"`
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
	} `json:"message"`
}

// receive extracts the message of e and decodes its body into want. A
// message that does not decode is copied to deadLetter and acknowledged
// (ok false, nil error); if that copy fails the error makes Pub/Sub retry.
func (h *Handlers) receive(ctx context.Context, e cloudevents.Event, topic string, want any) (ok bool, err error) {
	var pm pushMessage
	if err := json.Unmarshal(e.Data(), &pm); err != nil {
		h.log().ErrorContext(ctx, "event is not a Pub/Sub message; acknowledged", "topic", topic, "event_id", e.ID(), "err", err.Error())
		return false, nil // nothing to keep: there is no message
	}
	m := events.Message{Data: pm.Message.Data, Attributes: pm.Message.Attributes}
	if err := events.Decode(m, want); err != nil {
		return false, h.deadLetter(ctx, topic, m, pm.Message.MessageID, err)
	}
	return true, nil
}

// deadLetter copies a message no retry can fix to topic's dead-letter
// topic, with the reason, so it is kept and seen.
func (h *Handlers) deadLetter(ctx context.Context, topic string, m events.Message, id string, why error) error {
	dl := h.Topics.DeadLetter(topic)
	h.log().ErrorContext(ctx, "message rejected; copied to the dead-letter topic and acknowledged",
		"topic", topic, "dead_letter_topic", dl, "message_id", id, "tenant", m.Attributes[events.AttrTenant], "err", why.Error())
	attrs := map[string]string{}
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	reason := why.Error()
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	attrs["tenantlake_error"] = reason
	attrs["tenantlake_message_id"] = id
	if attrs[events.AttrTenant] == "" {
		attrs[events.AttrTenant] = "unknown"
	}
	if h.Ops.Events == nil || dl == "" {
		return fmt.Errorf("cannot dead-letter message %s of %s: no publisher: %w", id, topic, why)
	}
	if _, err := h.Ops.Events.Publish(ctx, dl, events.Message{Data: m.Data, Attributes: attrs}); err != nil {
		return fmt.Errorf("dead-letter message %s of %s: %w", id, topic, err)
	}
	return nil
}

func (h *Handlers) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if h.TenantTimeout > 0 {
		return context.WithTimeout(ctx, h.TenantTimeout)
	}
	return context.WithCancel(ctx)
}

// Read is the Read function: one read request.
func (h *Handlers) Read(ctx context.Context, e cloudevents.Event) error {
	var req events.ReadRequested
	ok, err := h.receive(ctx, e, h.Topics.ReadRequests, &req)
	if !ok {
		return err
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	_, err = h.Ops.Read(ctx, req)
	if errors.Is(err, ops.ErrRejected) {
		m, _ := events.New(&req)
		return h.deadLetter(ctx, h.Topics.ReadRequests, m, e.ID(), err)
	}
	return err
}

// Load returns the Load function of one target.
func (h *Handlers) Load(target string) func(context.Context, cloudevents.Event) error {
	return func(ctx context.Context, e cloudevents.Event) error {
		var ev events.SnapshotCommitted
		ok, err := h.receive(ctx, e, h.Topics.Snapshots, &ev)
		if !ok {
			return err
		}
		ctx, cancel := h.bound(ctx)
		defer cancel()
		_, err = h.Ops.Load(ctx, target, ev)
		if errors.Is(err, ops.ErrRejected) {
			return nil // its failure is on the loads topic; no retry can help
		}
		return err
	}
}

// maxRequestBody bounds an HTTP function's request body.
const maxRequestBody = 64 << 10

// httpError is a JSON error answer.
type httpError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

// allow answers 405 unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeJSON(w, http.StatusMethodNotAllowed, httpError{Error: "use " + method})
	return false
}

// fail answers err: 4xx for a rejected request, 500 (logged) otherwise.
func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ops.ErrRejected) {
		writeJSON(w, http.StatusBadRequest, httpError{Error: strings.TrimPrefix(err.Error(), ops.ErrRejected.Error()+": ")})
		return
	}
	h.log().ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err.Error())
	writeJSON(w, http.StatusInternalServerError, httpError{Error: err.Error()})
}

// decodeBody decodes a JSON request body strictly into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("%w: content type %.60q: send application/json", ops.ErrRejected, ct)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: request body over %d bytes", ops.ErrRejected, maxRequestBody)
		}
		return fmt.Errorf("%w: request body: %v", ops.ErrRejected, err)
	}
	// A repeated key or a null would be read as the last value or as left
	// out: {"dry_run":true,"dry_run":false} must not publish a replay.
	if err := strictjson.Check(data, strictjson.Options{NoNull: true}); err != nil {
		return fmt.Errorf("%w: request body: %v", ops.ErrRejected, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ops.ErrRejected, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: request body: data after the JSON object", ops.ErrRejected)
	}
	return nil
}

// Schedule is the Schedule function: Cloud Scheduler POSTs it; the schedule
// time is its X-CloudScheduler-ScheduleTime header, else the body's
// schedule_time, else the start of the current UTC day (so a call by hand,
// twice a day, publishes once).
func (h *Handlers) Schedule(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(logging.WithTrace(r.Context(), h.Project, r))
	if !allow(w, r, http.MethodPost) {
		return
	}
	var body struct {
		ScheduleTime *time.Time `json:"schedule_time"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &body); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	at := time.Now().UTC().Truncate(24 * time.Hour)
	if hdr := r.Header.Get("X-CloudScheduler-ScheduleTime"); hdr != "" {
		t, err := time.Parse(time.RFC3339, hdr)
		if err != nil {
			h.fail(w, r, fmt.Errorf("%w: X-CloudScheduler-ScheduleTime %.40q is not RFC 3339", ops.ErrRejected, hdr))
			return
		}
		at = t
	} else if body.ScheduleTime != nil {
		at = *body.ScheduleTime
	}
	res, err := h.Ops.Schedule(r.Context(), at)
	if err != nil && res == nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if err != nil { // some requests not published: Cloud Scheduler retries, publishing only those
		h.log().ErrorContext(r.Context(), "schedule incomplete", "err", err.Error())
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, res)
}

// Replay is the Replay function: POST a JSON ops.ReplayRequest; the answer
// is the ops.ReplayPlan (200 for a dry run, 202 once requested) or a JSON
// error (4xx: nothing was published).
func (h *Handlers) Replay(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(logging.WithTrace(r.Context(), h.Project, r))
	if !allow(w, r, http.MethodPost) {
		return
	}
	var req ops.ReplayRequest
	if err := decodeBody(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	plan, err := h.Ops.Replay(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusAccepted
	if plan.DryRun {
		status = http.StatusOK
	}
	writeJSON(w, status, plan)
}

// Snapshots is the Snapshots function: GET ?tenant=T[&before=S][&limit=N]
// answers the tenant's ops.History as JSON; GET ?tenant=T&from=S1&to=S2
// [&table=NAME...] the ops.Diff of two snapshots (ids or times) as JSON.
// A browser (Accept: text/html), and any GET of a path ending in /console,
// gets the analysts' console instead (Console).
func (h *Handlers) Snapshots(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(logging.WithTrace(r.Context(), h.Project, r))
	if r.Method == http.MethodGet && (wantsHTML(r) || strings.HasSuffix(r.URL.Path, "/console")) {
		h.Console(w, r)
		return
	}
	if !allow(w, r, http.MethodGet) {
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil { // r.URL.Query() would drop the bad pair silently
		h.fail(w, r, fmt.Errorf("%w: the query does not parse: give tenant=T[&before=S][&limit=N], joined by &", ops.ErrRejected))
		return
	}
	if err := checkParams(q); err != nil {
		h.fail(w, r, err)
		return
	}
	if q.Has("from") || q.Has("to") {
		for _, k := range []string{"before", "limit"} {
			if q.Has(k) {
				h.fail(w, r, fmt.Errorf("%w: parameter %s does not go with from and to", ops.ErrRejected, k))
				return
			}
		}
		res, err := h.Ops.Diff(r.Context(), ops.DiffRequest{Tenant: q.Get("tenant"), From: q.Get("from"), To: q.Get("to"), Tables: q["table"]}, diff.Options{})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	if q.Has("table") {
		h.fail(w, r, fmt.Errorf("%w: parameter table goes with from and to only", ops.ErrRejected))
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hist, err := h.Ops.History(r.Context(), q.Get("tenant"), q.Get("before"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hist)
}
