package main

// End-to-end tests of the event-driven pipeline: the tenantlake binary
// (`run --once`, `serve`) against a real PostgreSQL, with in-process Pub/Sub
// (pstest and the dispatcher) and with the gcloud Pub/Sub emulator pushing
// to the functions server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	prefixes  atomic.Int64
)

// binaries builds tenantlake and the sample data generator once per test
// binary and returns the folder holding them.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tenantlake-bin-")
		if buildErr != nil {
			return
		}
		for pkg, name := range map[string]string{".": "tenantlake", "../../scripts/sampledata": "sampledata"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// pipeline is one test's tenants, lake and warehouse.
type pipeline struct {
	t         *testing.T
	dir       string
	registry  string
	lake      string
	warehouse string
	prefix    string
	tenants   []string
	env       []string
}

// newPipeline makes n sample tenants (scripts/sampledata) in the test
// cluster, a file lake and an empty warehouse database.
func newPipeline(t *testing.T, n int) *pipeline {
	t.Helper()
	bin := binaries(t)
	p := &pipeline{t: t, dir: t.TempDir(), warehouse: pgtest.NewDatabase(t)}
	p.registry = filepath.Join(p.dir, "tenants.yaml")
	p.lake = "file://" + filepath.Join(p.dir, "lake")
	p.prefix = fmt.Sprintf("e2e%d_%d_", os.Getpid(), prefixes.Add(1))
	out, err := exec.Command(filepath.Join(bin, "sampledata"), "--admin", pgtest.AdminURL(t), "--tenants", fmt.Sprint(n),
		"--seed", "7", "--prefix", p.prefix, "--registry", p.registry, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("sampledata: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		conn := pgtest.Connect(t, pgtest.AdminURL(t))
		for _, tn := range p.tenants {
			if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{p.prefix + tn}.Sanitize()+" WITH (FORCE)"); err != nil {
				t.Errorf("drop tenant database: %v", err)
			}
		}
	})
	names := []string{"acme", "globex", "initech", "umbrella", "hooli"}
	p.tenants = names[:n]
	p.env = append(os.Environ(), "TENANTLAKE_LAKE="+p.lake, "TENANTLAKE_REGISTRY="+p.registry, "TENANTLAKE_TARGETS="+p.warehouse,
		"TENANTLAKE_READS_PER_HOST=2")
	return p
}

// tl runs the tenantlake binary with the pipeline's environment.
func (p *pipeline) tl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	p.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tenantlake"), args...)
	cmd.Env = p.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mutate changes the sample tenants' data.
func (p *pipeline) mutate() {
	p.t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "sampledata"), "--admin", pgtest.AdminURL(p.t), "--tenants", fmt.Sprint(len(p.tenants)),
		"--seed", "7", "--prefix", p.prefix, "--mutate").CombinedOutput()
	if err != nil {
		p.t.Fatalf("sampledata --mutate: %v\n%s", err, out)
	}
}

// runOnce runs one cycle and returns its summary.
func (p *pipeline) runOnce(args ...string) (cycleSummary, string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, logs, err := p.tl(ctx, append([]string{"run", "--once", "--json", "--listen", "127.0.0.1:0", "--backoff", "50ms"}, args...)...)
	var sum cycleSummary
	if jerr := json.Unmarshal([]byte(out), &sum); jerr != nil {
		p.t.Fatalf("run --once: %v; stdout %q\nstderr:\n%s", errOr(err, jerr), out, logs)
	}
	return sum, logs
}

func errOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// contents hashes every table of every tenant schema in a warehouse:
// tenant → table → md5 of its rows in a fixed order.
func contents(t *testing.T, dsn string, tenants []string) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	out := map[string]map[string]string{}
	for _, tn := range tenants {
		schema := "tenant_" + tn
		rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`, schema)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[tn] = map[string]string{}
		for _, tb := range tables {
			var h string
			q := fmt.Sprintf(`SELECT md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) || ':' || count(*) FROM %s x`, pgx.Identifier{schema, tb}.Sanitize())
			if err := conn.QueryRow(ctx, q).Scan(&h); err != nil {
				t.Fatal(err)
			}
			out[tn][tb] = h
		}
	}
	return out
}

// live returns the warehouse's live snapshot per tenant.
func live(t *testing.T, dsn string) map[string]string {
	t.Helper()
	conn := pgtest.Connect(t, dsn)
	var exists bool
	if err := conn.QueryRow(context.Background(), `SELECT to_regclass('tenantlake.live') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists { // nothing loaded yet
		return map[string]string{}
	}
	rows, err := conn.Query(context.Background(), `SELECT tenant, snapshot_id FROM tenantlake.live`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var tn, id string
		if err := rows.Scan(&tn, &id); err != nil {
			t.Fatal(err)
		}
		out[tn] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustOpenLake(t *testing.T, url string) *lake.Lake {
	t.Helper()
	l, err := lake.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// TestRunOnce: one cycle of `tenantlake run --once` over three tenants
// (schedule → read → load into the warehouse → validation → live) leaves
// every tenant live, validated, and the warehouse equal, table by table and
// row by row, to what `tenantlake read` and `load` by hand produce.
func TestRunOnce(t *testing.T) {
	p := newPipeline(t, 3)
	sum, logs := p.runOnce()
	if sum.Failed != 0 || len(sum.Tenants) != 3 || len(sum.DeadLetters) != 0 || sum.Published != 3 {
		t.Fatalf("cycle: %+v\n%s", sum, logs)
	}
	l := mustOpenLake(t, p.lake)
	lv := live(t, p.warehouse)
	for _, ct := range sum.Tenants {
		o := ct.Loads["postgres"]
		if o.Outcome != "loaded" || o.Live != ct.Snapshot || lv[ct.Tenant] != ct.Snapshot {
			t.Errorf("tenant %s: %+v, warehouse live %q", ct.Tenant, o, lv[ct.Tenant])
		}
		if ok, all, _ := strings.Cut(o.Checks, "/"); ok != all || ok == "0" {
			t.Errorf("tenant %s: checks %s", ct.Tenant, o.Checks)
		}
		snaps, err := l.Snapshots(context.Background(), ct.Tenant)
		if err != nil || len(snaps) != 1 {
			t.Errorf("tenant %s: snapshots %v, %v", ct.Tenant, snaps, err)
		}
		m, err := l.Manifest(context.Background(), ct.Tenant, ct.Snapshot)
		if err != nil || !strings.HasPrefix(m.RequestID, "scheduled-") {
			t.Errorf("tenant %s: manifest request id %v, %v", ct.Tenant, m, err)
		}
	}
	// Log lines are Cloud Logging JSON with the tenant and snapshot.
	var sawLoad bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["severity"] == nil || rec["message"] == nil || rec["time"] == nil {
			t.Errorf("log line without severity/message/time: %q", line)
		}
		if rec["message"] == "load finished" {
			sawLoad = rec["tenant"] != nil && rec["snapshot"] != nil && rec["target"] != nil && rec["request_id"] != nil
		}
	}
	if !sawLoad {
		t.Errorf("no load finished line with tenant, snapshot, target and request id:\n%s", logs)
	}

	// The same by hand: read into another lake, load into another warehouse.
	byHand := pgtest.NewDatabase(t)
	ctx := context.Background()
	lake2 := "file://" + filepath.Join(p.dir, "lake2")
	if _, errs, err := p.tl(ctx, "--lake", lake2, "read", "--all"); err != nil {
		t.Fatalf("read --all: %v\n%s", err, errs)
	}
	for _, tn := range p.tenants {
		if _, errs, err := p.tl(ctx, "--lake", lake2, "load", "--tenant", tn, "--latest", "--target", byHand); err != nil {
			t.Fatalf("load %s: %v\n%s", tn, err, errs)
		}
	}
	want, got := contents(t, byHand, p.tenants), contents(t, p.warehouse, p.tenants)
	if len(got["acme"]) < 10 {
		t.Fatalf("warehouse has %d tables for acme", len(got["acme"]))
	}
	for _, tn := range p.tenants {
		for tb, h := range want[tn] {
			if got[tn][tb] != h {
				t.Errorf("%s.%s: pipeline %s, by hand %s", tn, tb, got[tn][tb], h)
			}
		}
		if len(got[tn]) != len(want[tn]) {
			t.Errorf("%s: %d tables, by hand %d", tn, len(got[tn]), len(want[tn]))
		}
	}
}

// TestRunDuplicates: every message delivered three times at once gives the
// same final state and the same ledgers as one delivery: one snapshot per
// tenant, one load record per tenant in the lake's ledger and in the
// warehouse's tenantlake.loads, and the same warehouse contents.
func TestRunDuplicates(t *testing.T) {
	once := newPipeline(t, 3)
	sum1, logs1 := once.runOnce()
	thrice := newPipeline(t, 3)
	sum3, logs3 := thrice.runOnce("--deliveries", "3")
	if sum1.Failed != 0 || sum3.Failed != 0 || len(sum3.DeadLetters) != 0 {
		t.Fatalf("cycles: %+v\n%s\n%+v\n%s", sum1, logs1, sum3, logs3)
	}
	if !strings.Contains(logs3, "republishing") {
		t.Errorf("no duplicate was noticed: the deliveries did not repeat?\n%s", logs3)
	}
	ctx := context.Background()
	for _, p := range []*pipeline{once, thrice} {
		l := mustOpenLake(t, p.lake)
		conn := pgtest.Connect(t, p.warehouse)
		for _, tn := range p.tenants {
			snaps, err := l.Snapshots(ctx, tn)
			if err != nil || len(snaps) != 1 {
				t.Errorf("%s: snapshots %v %v", tn, snaps, err)
			}
			recs, err := l.Ledger(ctx, tn, "postgres")
			if err != nil || len(recs) != 1 {
				t.Errorf("%s: %d lake ledger records, %v", tn, len(recs), err)
			}
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM tenantlake.loads WHERE tenant = $1`, tn).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s: %d rows in tenantlake.loads, %v", tn, n, err)
			}
		}
	}
	c1, c3 := contents(t, once.warehouse, once.tenants), contents(t, thrice.warehouse, thrice.tenants)
	for tn, tables := range c1 {
		for tb, h := range tables {
			if c3[tn][tb] != h {
				t.Errorf("%s.%s: once %s, thrice %s", tn, tb, h, c3[tn][tb])
			}
		}
	}
}

// TestRunTenantDown: one tenant's database refuses connections: the others
// are read, loaded and validated; the failure reaches the loads topic on
// every attempt and the request then lands in the dead-letter topic.
func TestRunTenantDown(t *testing.T) {
	p := newPipeline(t, 3)
	conn := pgtest.Connect(t, pgtest.AdminURL(t))
	if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{p.prefix + "globex"}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	sum, logs := p.runOnce()
	if sum.Failed != 1 || len(sum.DeadLetters) != 1 {
		t.Fatalf("want 1 failed tenant and 1 dead letter: %+v\n%s", sum, logs)
	}
	for _, ct := range sum.Tenants {
		o := ct.Loads["postgres"]
		if ct.Tenant == "globex" {
			if !strings.Contains(ct.Error, "read failed") || !strings.Contains(ct.Error, "not currently accepting connections") {
				t.Errorf("globex: error %q", ct.Error)
			}
			continue
		}
		if o.Outcome != "loaded" {
			t.Errorf("%s: %+v", ct.Tenant, o)
		}
	}
	dl := sum.DeadLetters[0]
	if dl.Tenant != "globex" || dl.Type != "tenantlake.read.requested" || dl.Topic != "read-requests-dead-letter" {
		t.Errorf("dead letter: %+v", dl)
	}
	if n := strings.Count(logs, `"message":"read failed"`); n != 5 {
		t.Errorf("read failed %d times, want 5 (the subscription's attempts)", n)
	}
}

// freePort returns a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess starts a long-running process, stopped when the test ends;
// its output goes to a file whose content the test logs on failure.
func startProcess(t *testing.T, env []string, logName string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	logf, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killGroup(cmd)
		_ = cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("%s output:\n%s", logName, data)
		}
		_ = logf.Close()
	})
}

// waitHTTP waits until url answers.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", url, within)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", within, what)
}

// emulator is the gcloud Pub/Sub emulator's REST API.
type emulator struct {
	t       *testing.T
	base    string // http://127.0.0.1:PORT/v1/projects/PROJECT
	project string
}

func (e *emulator) call(method, path string, body any) map[string]any {
	e.t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.base+path, &rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %s %v", method, path, resp.Status, out)
	}
	return out
}

// pull acknowledges and returns the attributes of every message waiting on
// a pull subscription.
func (e *emulator) pull(sub string) []map[string]any {
	e.t.Helper()
	var all []map[string]any
	for {
		out := e.call(http.MethodPost, "/subscriptions/"+sub+":pull", map[string]any{"maxMessages": 100, "returnImmediately": true})
		msgs, _ := out["receivedMessages"].([]any)
		if len(msgs) == 0 {
			return all
		}
		var ids []string
		for _, m := range msgs {
			rm := m.(map[string]any)
			ids = append(ids, rm["ackId"].(string))
			attrs, _ := rm["message"].(map[string]any)["attributes"].(map[string]any)
			all = append(all, attrs)
		}
		e.call(http.MethodPost, "/subscriptions/"+sub+":acknowledge", map[string]any{"ackIds": ids})
	}
}

// TestServeWithEmulator runs the real push path: the gcloud Pub/Sub
// emulator pushes raw push bodies to `tenantlake serve`, whose functions
// framework converts them to CloudEvents. Two scheduled cycles (the source
// mutated between them), then hostile replay requests (4xx, nothing
// published: the test's own subscription on the snapshots topic stays
// empty), then a replay by timestamp that restores the first snapshot's
// values exactly.
func TestServeWithEmulator(t *testing.T) {
	p := newPipeline(t, 3)
	ePort, sPort := freePort(t), freePort(t)
	const project = "tenantlake-test"
	startProcess(t, os.Environ(), "emulator.log", "gcloud", "beta", "emulators", "pubsub", "start",
		fmt.Sprintf("--host-port=127.0.0.1:%d", ePort), "--project="+project)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", ePort), 90*time.Second)
	em := &emulator{t: t, base: fmt.Sprintf("http://127.0.0.1:%d/v1/projects/%s", ePort, project), project: project}

	base := fmt.Sprintf("http://127.0.0.1:%d", sPort)
	env := append(p.env, fmt.Sprintf("PUBSUB_EMULATOR_HOST=127.0.0.1:%d", ePort), "TENANTLAKE_PROJECT="+project)
	startProcess(t, env, "serve.log", filepath.Join(binDir, "tenantlake"), "serve", "--ensure",
		"--listen", fmt.Sprintf("127.0.0.1:%d", sPort), "--public-url", base)
	waitHTTP(t, base+"/Snapshots", 30*time.Second)
	// The test's own subscriptions: what reaches the snapshots and loads topics.
	em.call(http.MethodPut, "/subscriptions/test-snapshots", map[string]any{"topic": "projects/" + project + "/topics/snapshots"})
	em.call(http.MethodPut, "/subscriptions/test-loads", map[string]any{"topic": "projects/" + project + "/topics/loads"})

	schedule := func(at time.Time) {
		req, _ := http.NewRequest(http.MethodPost, base+"/Schedule", nil)
		req.Header.Set("X-CloudScheduler-ScheduleTime", at.Format(time.RFC3339))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Requests []struct{ Published bool }
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
			t.Fatalf("Schedule: %s %v", resp.Status, err)
		}
		resp.Body.Close()
		if len(res.Requests) != 3 || !res.Requests[0].Published {
			t.Fatalf("Schedule: %+v", res)
		}
	}
	allLive := func(prev map[string]string) map[string]string {
		var lv map[string]string
		waitFor(t, "every tenant live with a new snapshot", 2*time.Minute, func() bool {
			lv = live(t, p.warehouse)
			for _, tn := range p.tenants {
				if lv[tn] == "" || lv[tn] == prev[tn] {
					return false
				}
			}
			return true
		})
		return lv
	}
	t1 := time.Now().UTC().Truncate(time.Second)
	schedule(t1)
	live1 := allLive(nil)
	first := contents(t, p.warehouse, p.tenants)

	p.mutate()
	schedule(t1.Add(time.Second))
	live2 := allLive(live1)
	second := contents(t, p.warehouse, p.tenants)
	if first["acme"]["customers"] == second["acme"]["customers"] {
		t.Fatalf("the mutation changed nothing in acme.customers")
	}
	// Calling Schedule again for the same schedule time publishes nothing.
	req, _ := http.NewRequest(http.MethodPost, base+"/Schedule", nil)
	req.Header.Set("X-CloudScheduler-ScheduleTime", t1.Format(time.RFC3339))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var again struct{ Requests []struct{ Published bool } }
	if err := json.NewDecoder(resp.Body).Decode(&again); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, r := range again.Requests {
		if r.Published {
			t.Errorf("a second Schedule call for %s published again: %+v", t1, again)
		}
	}
	em.pull("test-snapshots") // what the cycles published

	// Hostile replay requests: each a 4xx with a JSON error; nothing published.
	between := live1["acme"]
	hostile := []string{
		``, `{`, `[]`, `null`, `"acme"`, `{"tenant":"acme"}`,
		`{"tenant":"acme","at":"2026-11-20","snapshot":"` + between + `"}`,
		`{"tenant":"ACME","at":"2026-11-20"}`, `{"tenant":"../etc","at":"2026-11-20"}`,
		`{"tenant":"acme\u200b","at":"2026-11-20"}`, `{"tenant":"nosuch","at":"2099-01-01"}`,
		`{"tenant":"acme","at":"1999-01-01"}`, `{"tenant":"acme","at":"yesterday"}`,
		`{"tenant":"acme","at":"2026-13-45"}`, `{"tenant":"acme","snapshot":"20991301T000000.000Z"}`,
		`{"tenant":"acme","snapshot":"20200101T000000.000Z"}`, `{"tenant":"acme","snapshot":"../../x"}`,
		`{"tenant":"acme","at":"2099-01-01","target":"nosuch"}`, `{"tenant":"acme","at":"2099-01-01","target":"postgres\"; DROP"}`,
		`{"tenant":"acme","at":"2099-01-01","tables":["nosuch"]}`, `{"tenant":"acme","at":"2099-01-01","tables":["<script>alert(1)</script>"]}`,
		`{"tenant":"acme","at":"2099-01-01","tables":["customers"]}`, `{"tenant":"acme","at":"2099-01-01","unknown":1}`,
		`{"tenant":"acme","at":"2099-01-01","dry_run":"yes"}`, `{"tenant":1,"at":"2099-01-01"}`,
		`{"tenant":"acme","at":"2099-01-01"} {"tenant":"acme"}`, `{"tenant":"acme","at":2099}`,
		`{"tenant":"` + strings.Repeat("a", 64) + `","at":"2099-01-01"}`, `{"tenant":"acme","at":"` + strings.Repeat("9", 100000) + `"}`,
		`{"tenant":"acme","at":"2099-01-01","tables":["customers","customers"]}`, `{"Tenant":"acme","At":"2099-01-01","Target":"nosuch"}`,
	}
	for i, body := range hostile {
		resp, err := http.Post(base+"/Replay", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || derr != nil || e.Error == "" {
			t.Errorf("hostile replay %d %.80q: %s, error %q (%v)", i, body, resp.Status, e.Error, derr)
		}
	}
	for _, r := range []struct{ method, ct string }{{http.MethodGet, ""}, {http.MethodPut, "application/json"}, {http.MethodPost, "text/plain"}} {
		req, _ := http.NewRequest(r.method, base+"/Replay", strings.NewReader(`{"tenant":"acme","at":"2099-01-01"}`))
		if r.ct != "" {
			req.Header.Set("Content-Type", r.ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Errorf("replay %s %s: %s", r.method, r.ct, resp.Status)
		}
	}
	time.Sleep(time.Second)
	if got := em.pull("test-snapshots"); len(got) != 0 {
		t.Fatalf("hostile replay requests published %d snapshot events: %v", len(got), got)
	}
	if lv := live(t, p.warehouse); lv["acme"] != live2["acme"] {
		t.Fatalf("hostile requests changed what is live: %v", lv)
	}

	// A dry run says what would be loaded, publishes nothing.
	at := live2["acme"]
	t2, _ := lake.ParseSnapshotID(at)
	asOf := t2.Add(-time.Millisecond).Format(time.RFC3339Nano) // just before the second snapshot: the first
	resp, err = http.Post(base+"/Replay", "application/json", strings.NewReader(`{"tenant":"acme","at":"`+asOf+`","dry_run":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		SnapshotID string `json:"snapshot_id"`
		Published  bool
		Tables     []struct{ Rows int64 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&plan); err != nil || resp.StatusCode != 200 || plan.SnapshotID != live1["acme"] || plan.Published || len(plan.Tables) < 10 {
		t.Fatalf("dry run: %s %+v %v", resp.Status, plan, err)
	}
	resp.Body.Close()
	if got := em.pull("test-snapshots"); len(got) != 0 {
		t.Fatalf("a dry run published: %v", got)
	}
	// `tenantlake replay --url` calls the same function; a dry run again.
	out, errs, err := p.tl(context.Background(), "--json", "replay", "--tenant", "acme", "--at", asOf, "--dry-run", "--url", base)
	var cliPlan struct {
		SnapshotID string `json:"snapshot_id"`
		DryRun     bool   `json:"dry_run"`
	}
	if err != nil || json.Unmarshal([]byte(out), &cliPlan) != nil || cliPlan.SnapshotID != live1["acme"] || !cliPlan.DryRun {
		t.Fatalf("tenantlake replay --dry-run: %v %q %s", err, out, errs)
	}
	if _, errs, err := p.tl(context.Background(), "replay", "--tenant", "acme", "--at", "1999-01-01", "--url", base); err == nil || !strings.Contains(errs, "no snapshot at or before") {
		t.Errorf("tenantlake replay before the first snapshot: %v %s", err, errs)
	}
	if got := em.pull("test-snapshots"); len(got) != 0 {
		t.Fatalf("replay dry runs published: %v", got)
	}
	// The replay by timestamp restores the first snapshot's values.
	resp, err = http.Post(base+"/Replay", "application/json", strings.NewReader(`{"tenant":"acme","at":"`+asOf+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("replay: %s", resp.Status)
	}
	waitFor(t, "acme live at its first snapshot again", time.Minute, func() bool { return live(t, p.warehouse)["acme"] == live1["acme"] })
	after := contents(t, p.warehouse, p.tenants)
	var tables []string
	for tb := range first["acme"] {
		tables = append(tables, tb)
	}
	sort.Strings(tables)
	for _, tb := range tables {
		if after["acme"][tb] != first["acme"][tb] {
			t.Errorf("acme.%s after the replay: %s, first snapshot %s", tb, after["acme"][tb], first["acme"][tb])
		}
	}
	if after["globex"]["customers"] != second["globex"]["customers"] {
		t.Errorf("the replay of acme changed globex")
	}
	// The metrics, in Prometheus's format.
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	_, _ = mb.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tenantlake_rows`, `tenantlake_outcomes`, `tenantlake_duration`, `tenant="acme"`, `target="postgres"`, `table="customers"`, `outcome="loaded"`} {
		if !strings.Contains(mb.String(), want) {
			t.Errorf("/metrics lacks %s:\n%.2000s", want, mb.String())
		}
	}
	// The Snapshots function lists both snapshots with their loads.
	resp, err = http.Get(base + "/Snapshots?tenant=acme")
	if err != nil {
		t.Fatal(err)
	}
	var hist struct {
		Snapshots []struct {
			SnapshotID string `json:"snapshot_id"`
			Loads      map[string][]struct{ Outcome, Reason string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil || len(hist.Snapshots) != 2 {
		t.Fatalf("Snapshots: %v %+v", err, hist)
	}
	resp.Body.Close()
	old := hist.Snapshots[1].Loads["postgres"]
	if len(old) != 2 || old[0].Outcome != "loaded" || old[1].Reason != "replay" || old[1].Outcome != "loaded" {
		t.Errorf("loads of the first snapshot: %+v", old)
	}
}

// TestRunKilledThenRunAgain: `run --once` killed right after its Schedule
// call published the read requests (recorded in the lake; the in-process
// Pub/Sub holding them dies with it), then started again at once: the new
// run reads and loads every tenant, and every snapshot the lake lists is
// complete and loadable.
func TestRunKilledThenRunAgain(t *testing.T) {
	p := newPipeline(t, 3)
	dir := strings.TrimPrefix(p.lake, "file://")
	for round := 0; round < 2; round++ {
		cmd := exec.Command(filepath.Join(binDir, "tenantlake"), "run", "--once", "--listen", "127.0.0.1:0", "--backoff", "50ms")
		cmd.Env = p.env
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			recs, _ := filepath.Glob(filepath.Join(dir, "tenant=*", "_requests", "*"))
			if len(recs) > round*3 {
				break
			}
			if time.Now().After(deadline) {
				killGroup(cmd)
				_ = cmd.Wait()
				t.Fatal("run published no read request within a minute")
			}
			time.Sleep(2 * time.Millisecond)
		}
		killGroup(cmd)
		_ = cmd.Wait()
	}
	sum, logs := p.runOnce()
	if sum.Failed != 0 || sum.Published != 3 || len(sum.Tenants) != 3 {
		t.Fatalf("the run after the kills: %+v\n%s", sum, logs)
	}
	lv := live(t, p.warehouse)
	ctx := context.Background()
	for _, ct := range sum.Tenants {
		if o := ct.Loads["postgres"]; o.Outcome != "loaded" || lv[ct.Tenant] != ct.Snapshot {
			t.Errorf("%s: %+v, warehouse live %q", ct.Tenant, o, lv[ct.Tenant])
		}
		out, errs, err := p.tl(ctx, "snapshots", "--tenant", ct.Tenant, "--json")
		if err != nil {
			t.Fatalf("snapshots: %v\n%s", err, errs)
		}
		var snaps []struct {
			SnapshotID string `json:"snapshot_id"`
		}
		if err := json.Unmarshal([]byte(out), &snaps); err != nil {
			t.Fatal(err)
		}
		scratch := pgtest.NewDatabase(t)
		for _, s := range snaps {
			if _, errs, err := p.tl(ctx, "load", "--tenant", ct.Tenant, "--at", s.SnapshotID, "--target", scratch+"&name=scratch"); err != nil {
				t.Errorf("%s: snapshot %s does not load: %v\n%s", ct.Tenant, s.SnapshotID, err, errs)
			}
		}
	}
}
