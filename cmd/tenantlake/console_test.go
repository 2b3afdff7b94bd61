package main

// The analysts' console (the Snapshots function's web page) of a running
// `tenantlake run`, driven in a real headless Chromium with chromedp.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/ops"
)

// hostile is a source table name that must show as text, never run.
const hostile = `<script>alert(1)</script>`

// screenshotDir is where the test saves screenshots for reviewers: the
// git-ignored .cache/screenshots, or $TENANTLAKE_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TENANTLAKE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(pgtest.RepoRoot(), ".cache", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context, and a counter of the JavaScript dialogs (alert, confirm)
// that pages opened.
func browser(t *testing.T) (context.Context, *atomic.Int64) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the console test needs Debian's chromium package (.ci/run installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	var dialogs atomic.Int64
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, &dialogs
}

func screenshot(t *testing.T, ctx context.Context, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(screenshotDir(t), name), buf, 0o644)
	})
}

// TestConsole: the console of a running `tenantlake run` lists the tenant,
// shows its two snapshots on the timeline with their loads, shows the diff
// counts of the two, and a replay previewed and requested from the page
// makes the older snapshot live in the warehouse; the page shows its
// outcome. A table named <script>alert(1)</script> is shown as text and runs
// nothing. Forms and the JSON API refuse bad input alike.
func TestConsole(t *testing.T) {
	bin := binaries(t)
	ctx := context.Background()
	src := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, src)
	sql := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sql(`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL)`)
	sql(`INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 20) g`)
	sql(`CREATE TABLE "` + hostile + `" (id int PRIMARY KEY, "<img src=x onerror=alert(2)>" text)`)
	sql(`INSERT INTO "` + hostile + `" VALUES (1, 'x')`)

	dir := t.TempDir()
	warehouse := pgtest.NewDatabase(t)
	registry := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(registry, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", src)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TENANTLAKE_LAKE=file://"+filepath.Join(dir, "lake"), "TENANTLAKE_REGISTRY="+registry, "TENANTLAKE_TARGETS="+warehouse)
	tl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "tenantlake"), args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("tenantlake %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	tl("read", "--tenant", "acme")
	tl("load", "--tenant", "acme", "--latest", "--target", warehouse)
	sql(`UPDATE customers SET name = 'renamed' WHERE id = 2`)
	sql(`DELETE FROM customers WHERE id = 3`)
	sql(`INSERT INTO customers VALUES (100, 'new')`)
	tl("read", "--tenant", "acme")
	tl("load", "--tenant", "acme", "--latest", "--target", warehouse)
	var snaps []ops.Summary
	if err := json.Unmarshal([]byte(tl("snapshots", "--tenant", "acme", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %v %+v", err, snaps)
	}
	newer, older := snaps[0].SnapshotID, snaps[1].SnapshotID
	if lv := live(t, warehouse); lv["acme"] != newer {
		t.Fatalf("warehouse live %v, want %s", lv, newer)
	}

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startProcess(t, env, "run.log", filepath.Join(bin, "tenantlake"), "run", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--schedule", "0 0 1 1 *")
	waitHTTP(t, base+"/Snapshots", 30*time.Second)

	// The JSON API: the diff of the two snapshots; bad input refused.
	get := func(path, accept string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := get("/Snapshots?"+url.Values{"tenant": {"acme"}, "from": {older}, "to": {newer}, "table": {"customers"}}.Encode(), "")
	var res diff.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || len(res.Tables) != 1 ||
		res.Tables[0].Inserted != 1 || res.Tables[0].Deleted != 1 || res.Tables[0].Updated != 1 {
		t.Errorf("diff JSON: %d %s", code, body)
	}
	for _, q := range []string{"tenant=ACME", "tenant=acme&from=yesterday&to=" + newer, "tenant=acme&from=" + older + "&to=" + newer + "&table=nosuch", "tenant=acme&color=red"} {
		jc, jb := get("/Snapshots?"+q, "application/json")
		hc, hb := get("/Snapshots?"+q, "text/html")
		var je httpErrorBody
		if err := json.Unmarshal([]byte(jb), &je); err != nil || jc != 400 || hc != 400 || je.Error == "" ||
			!strings.Contains(hb, `id="error"`) || !strings.Contains(hb, htmlEscape(je.Error)) {
			t.Errorf("%s: JSON %d %s; page %d, want both 400 with the same message", q, jc, jb, hc)
		}
	}

	bctx, dialogs := browser(t)
	bctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	var tenants, scripts string
	var ids []string
	var nscripts int
	err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/Snapshots"),
		chromedp.WaitVisible(`#tenants`, chromedp.ByQuery),
		chromedp.Text(`#tenants`, &tenants, chromedp.ByQuery),
		screenshot(t, bctx, "1-tenants.png"),
		chromedp.Click(`#tenants a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#timeline`, chromedp.ByQuery),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('tr.snap')).map(r => r.dataset.snapshot)`, &ids),
		chromedp.Click(`tr.tables details summary`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('script').length`, &nscripts),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('script')).map(s => s.textContent.slice(0, 40)).join('|')`, &scripts),
		screenshot(t, bctx, "2-timeline.png"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tenants, "acme") {
		t.Errorf("tenant list: %q", tenants)
	}
	if strings.Join(ids, " ") != newer+" "+older {
		t.Errorf("timeline: %v, want %s then %s", ids, newer, older)
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		if err := chromedp.Run(bctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	row := `tr.snap[data-snapshot="` + newer + `"]`
	if s := text(row); !strings.Contains(s, "live in postgres") || !strings.Contains(s, "loaded") || !strings.Contains(s, "checks passed") {
		t.Errorf("newest snapshot's row: %q", s)
	}
	if s := text(`tr.tables details`); !strings.Contains(s, hostile) || !strings.Contains(s, "customers") || !strings.Contains(s, "20") {
		t.Errorf("rows per table of the newest snapshot: %q", s)
	}
	if nscripts != 1 {
		t.Errorf("%d script elements on the page, want only the console's own: %s", nscripts, scripts)
	}

	// The diff of the preselected pair: the older to the newer.
	var counts []string
	err = chromedp.Run(bctx,
		chromedp.Click(`#diff-button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#diff`, chromedp.ByQuery),
		chromedp.Evaluate(`['inserted','deleted','updated'].map(c => document.querySelector('#diff tr[data-table="customers"] .' + c).textContent)`, &counts),
		screenshot(t, bctx, "3-diff.png"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(counts, " ") != "1 1 1" {
		t.Errorf("diff counts of customers (inserted deleted updated): %v, want 1 1 1", counts)
	}
	if s := text(`#diff`); !strings.Contains(s, "What changed from "+older+" to "+newer) || !strings.Contains(s, hostile) || !strings.Contains(s, "unchanged") {
		t.Errorf("diff view: %q", s)
	}

	// Replay the older snapshot from the page: preview, request, outcome.
	var preview, outcome string
	err = chromedp.Run(bctx,
		chromedp.Click(`input[name=replay][value="`+older+`"]`, chromedp.ByQuery),
		chromedp.Click(`#preview`, chromedp.ByQuery),
		chromedp.WaitVisible(`#plan-preview`, chromedp.ByQuery),
		chromedp.Text(`#plan`, &preview, chromedp.ByQuery),
		screenshot(t, bctx, "4-replay-preview.png"),
		chromedp.Click(`#request`, chromedp.ByQuery),
		chromedp.WaitVisible(`#plan-requested`, chromedp.ByQuery),
		chromedp.WaitVisible(`#outcome[data-done="true"]`, chromedp.ByQuery),
		chromedp.Text(`#outcome`, &outcome, chromedp.ByQuery),
		screenshot(t, bctx, "5-replay-outcome.png"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preview, "Would load snapshot "+older+" into postgres") || !strings.Contains(preview, hostile) {
		t.Errorf("replay preview: %q", preview)
	}
	if !strings.Contains(outcome, "postgres: loaded") || !strings.Contains(outcome, "live now: "+older) {
		t.Errorf("replay outcome: %q", outcome)
	}
	if lv := live(t, warehouse); lv["acme"] != older {
		t.Errorf("after the replay the warehouse has %v live, want %s", lv, older)
	}
	// Reloaded, the timeline says so.
	err = chromedp.Run(bctx,
		chromedp.Reload(),
		chromedp.WaitVisible(`#timeline`, chromedp.ByQuery),
		screenshot(t, bctx, "6-timeline-after-replay.png"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := text(`tr.snap[data-snapshot="` + older + `"]`); !strings.Contains(s, "live in postgres") || !strings.Contains(s, "loaded") {
		t.Errorf("older snapshot's row after the replay: %q", s)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialog(s) opened: a hostile name ran as script", n)
	}
}

type httpErrorBody struct {
	Error string `json:"error"`
}

// htmlEscape escapes s as html/template does in text.
func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;")
	return r.Replace(s)
}
