package functions

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/lake/laketest"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/tenant"
)

// fixture is the HTTP functions over a file lake holding two snapshots of
// tenant acme, publishing to an in-process Pub/Sub (pstest) in which a pull
// subscription on every main topic shows what was published.
type fixture struct {
	t      *testing.T
	h      *Handlers
	pub    *events.PubSub
	cfg    config.Config
	first  string // the older snapshot of acme
	latest string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.FromEnv(func(name string) (string, bool) {
		if name == config.EnvLake {
			return "mem://", true
		}
		if name == config.EnvTargets {
			return "postgres://wh@127.0.0.1:1/wh?name=warehouse", true
		}
		return "", false
	}, config.Need{Targets: true})
	if err != nil {
		t.Fatal(err)
	}
	lk := laketest.File(t).Lake
	f := &fixture{t: t, cfg: cfg, first: "20261120T020304.123Z", latest: "20261121T020304.123Z"}
	for _, id := range []string{f.first, f.latest} {
		laketest.WriteSnapshot(t, lk, "acme", id, []string{"customers", "orders"}, 1)
	}
	srv := pstest.NewServer()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	f.pub, err = events.Dial(ctx, "test-project", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.pub.Close(); err != nil {
			t.Error(err)
		}
	})
	var subs []events.Subscription
	for _, topic := range []string{cfg.Topics.ReadRequests, cfg.Topics.Snapshots, cfg.Topics.Loads} {
		subs = append(subs, events.Subscription{Name: "test-" + topic, Topic: topic, AckDeadline: time.Minute})
	}
	if err := f.pub.Ensure(ctx, cfg.Topics, subs); err != nil {
		t.Fatal(err)
	}
	f.h = &Handlers{Topics: cfg.Topics, Ops: &ops.Ops{Lake: lk, Targets: cfg.Targets, Events: f.pub, Topics: cfg.Topics}}
	return f
}

// published drains what reached topic since the last call.
func (f *fixture) published(topic string) []events.Message {
	f.t.Helper()
	msgs, err := f.pub.Drain(context.Background(), "test-"+topic)
	if err != nil {
		f.t.Fatal(err)
	}
	return msgs
}

// call serves one request with handler and returns the status and the
// decoded JSON answer.
func call(t *testing.T, handler http.HandlerFunc, method, url, contentType, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s %s: the answer is not JSON: %v: %q", method, url, body, err, rec.Body.String())
	}
	return rec.Code, out
}

// TestReplayRefusesAmbiguousBodies: a body that encoding/json would read
// otherwise than it looks (a key given twice, keys differing only in case,
// a null) is a 400 naming the problem, and nothing is published; the same
// request written plainly is accepted and published, so the refusals are
// not an accident of the fixture.
func TestReplayRefusesAmbiguousBodies(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{
		`{"tenant":"acme","at":"2099-01-01","dry_run":true,"dry_run":false}`,
		`{"tenant":"acme","at":"2099-01-01","dry_run":true,"DRY_RUN":false}`,
		`{"tenant":"acme","at":"2099-01-01","dry_run":null}`,
		`{"tenant":"globex","tenant":"acme","at":"2099-01-01","dry_run":true}`,
		`{"tenant":"acme","at":"2099-01-01","Tenant":"acme","dry_run":true}`,
		`{"tenant":"acme","at":"2099-01-01","snapshot":null,"dry_run":true}`,
		`{"tenant":"acme","at":"2026-11-20","at":"2099-01-01","dry_run":true}`,
		`{"tenant":"acme","at":"2099-01-01","tables":null,"dry_run":true}`,
		`{"tenant":"acme","at":"2099-01-01","target":null,"dry_run":true}`,
	} {
		code, out := call(t, f.h.Replay, http.MethodPost, "/Replay", "application/json", body)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, "ambiguous JSON") {
			t.Errorf("replay %s: %d %v, want 400 naming the ambiguity", body, code, out)
		}
	}
	if got := f.published(f.cfg.Topics.Snapshots); len(got) != 0 {
		t.Fatalf("ambiguous replay requests published %d events", len(got))
	}

	code, out := call(t, f.h.Replay, http.MethodPost, "/Replay", "application/json", `{"tenant":"acme","at":"2026-11-20","dry_run":true}`)
	if code != http.StatusOK || out["snapshot_id"] != f.first || out["published"] != false {
		t.Fatalf("dry run: %d %v", code, out)
	}
	code, out = call(t, f.h.Replay, http.MethodPost, "/Replay", "application/json", `{"tenant":"acme","at":"2026-11-20"}`)
	if code != http.StatusAccepted || out["snapshot_id"] != f.first {
		t.Fatalf("replay: %d %v", code, out)
	}
	got := f.published(f.cfg.Topics.Snapshots)
	if len(got) != 1 {
		t.Fatalf("a replay published %d events, want 1", len(got))
	}
	var ev events.SnapshotCommitted
	if err := events.Decode(got[0], &ev); err != nil || ev.SnapshotID != f.first || ev.Reason != "replay" {
		t.Fatalf("published %+v, %v", ev, err)
	}
}

// TestScheduleRefusesTimesThatWouldTakeLaterRuns: a schedule time in the
// future (body or Cloud Scheduler's header) or the zero time is a 400, and
// nothing is published or recorded, so the real call at that time still
// publishes; a schedule time now publishes one request per tenant, once.
func TestScheduleRefusesTimesThatWouldTakeLaterRuns(t *testing.T) {
	f := newFixture(t)
	reg := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(reg, []byte("tenants:\n  - tenant_id: acme\n    connection: env:NOPE\n  - tenant_id: globex\n    connection: env:NOPE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := tenant.OpenRegistry(context.Background(), reg)
	if err != nil {
		t.Fatal(err)
	}
	f.h.Ops.Registry = r
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, c := range []struct{ header, body string }{
		{"", `{"schedule_time":"` + future.Format(time.RFC3339) + `"}`},
		{"", `{"schedule_time":"2099-01-01T02:00:00Z"}`},
		{"", `{"schedule_time":"0001-01-01T00:00:00Z"}`},
		{"", `{"schedule_time":null}`},
		{future.Format(time.RFC3339), ""},
	} {
		req := httptest.NewRequest(http.MethodPost, "/Schedule", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		if c.header != "" {
			req.Header.Set("X-CloudScheduler-ScheduleTime", c.header)
		}
		rec := httptest.NewRecorder()
		f.h.Schedule(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("schedule %q %q: %d %s, want 400", c.header, c.body, rec.Code, rec.Body.String())
		}
	}
	if got := f.published(f.cfg.Topics.ReadRequests); len(got) != 0 {
		t.Fatalf("refused schedule calls published %d read requests", len(got))
	}
	names, err := f.h.Ops.Lake.RecordNames(context.Background(), "acme", "requests", "")
	if err != nil || len(names) != 0 {
		t.Fatalf("refused schedule calls recorded %v (%v)", names, err)
	}

	// When that time comes (here: a time now), the call publishes.
	now := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	for i, want := range []int{2, 0} {
		req := httptest.NewRequest(http.MethodPost, "/Schedule", nil)
		req.Header.Set("X-CloudScheduler-ScheduleTime", now)
		rec := httptest.NewRecorder()
		f.h.Schedule(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("schedule %d: %d %s", i, rec.Code, rec.Body.String())
		}
		if got := f.published(f.cfg.Topics.ReadRequests); len(got) != want {
			t.Fatalf("schedule call %d published %d read requests, want %d", i, len(got), want)
		}
	}
}

// TestSnapshotsQuery: a query that does not parse (a bad escape, pairs
// joined by ';') is a 400 saying so, not read as if the bad pair were left
// out; a good one pages the tenant's snapshots.
func TestSnapshotsQuery(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"tenant=acme&limit=1%zz", "tenant=acme;limit=1", "tenant=acme&before=%"} {
		code, out := call(t, f.h.Snapshots, http.MethodGet, "/Snapshots?"+q, "", "")
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "query does not parse") {
			t.Errorf("Snapshots?%s: %d %v", q, code, out)
		}
	}
	code, out := call(t, f.h.Snapshots, http.MethodGet, "/Snapshots?tenant=acme&limit=1", "", "")
	snaps, _ := out["snapshots"].([]any)
	if code != http.StatusOK || len(snaps) != 1 || out["next"] != f.latest {
		t.Fatalf("Snapshots?tenant=acme&limit=1: %d %v", code, out)
	}
	code, out = call(t, f.h.Snapshots, http.MethodGet, "/Snapshots?tenant=acme&before="+f.latest, "", "")
	snaps, _ = out["snapshots"].([]any)
	if code != http.StatusOK || len(snaps) != 1 || snaps[0].(map[string]any)["snapshot_id"] != f.first {
		t.Fatalf("the older page: %d %v", code, out)
	}
}

// The console's link to older snapshots keeps the page's limit.
func TestConsoleOlderPageKeepsLimit(t *testing.T) {
	p := &consolePage{Tenant: "acme", History: &ops.History{Next: "20261201T000000.000Z"}, Limit: 5}
	if got, want := p.OlderPage(), "?before=20261201T000000.000Z&limit=5&tenant=acme"; got != want {
		t.Errorf("OlderPage() = %q, want %q", got, want)
	}
	p.Limit = 0
	if got, want := p.OlderPage(), "?before=20261201T000000.000Z&tenant=acme"; got != want {
		t.Errorf("OlderPage() without a limit = %q, want %q", got, want)
	}
}
