package functions

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
)

//go:embed console.html
var consoleFS embed.FS

var consoleTmpl = template.Must(template.New("console.html").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"sub":  func(a, b int) int { return a - b },
	"add":  func(a, b int) int { return a + b },
	"join": strings.Join,
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
}).ParseFS(consoleFS, "console.html"))

// consolePage is what console.html renders.
type consolePage struct {
	Nonce     string
	Path      string // the console's own path, for forms
	APIPath   string // the Snapshots JSON API's path, which the script polls
	ReplayURL string
	Error     string
	Tenants   []string // the picker, when no tenant is chosen
	Tenant    string
	History   *ops.History
	Limit     int // the page's limit parameter (0: the default), kept by the older page's link
	Rows      []consoleSnapshot
	Live      map[string]string // target → live snapshot id, from the newest load record on the page
	From, To  string
	Tables    []string
	Diff      *diff.Result
}

// consoleSnapshot is one snapshot of the timeline.
type consoleSnapshot struct {
	ops.HistorySnapshot
	// Newer is the id of the next newer snapshot on the page ("" for the
	// newest): the JavaScript asks for this one snapshot with before=Newer.
	Newer     string
	TableRows []lake.Table
	// Last is each target's last load of this snapshot (targets in order).
	Last []consoleLoad
}

type consoleLoad struct {
	Target string
	Load   *ops.LoadRecord
}

// wantsHTML reports whether r asks for a web page (a browser's navigation)
// rather than JSON: its Accept header names text/html before any JSON.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == "text/html":
			return true
		case mt == "application/json", strings.HasSuffix(mt, "+json"):
			return false
		}
	}
	return false
}

// consoleParams are the query parameters the console and the Snapshots
// JSON API accept; table may repeat.
var consoleParams = map[string]bool{"tenant": true, "before": true, "limit": true, "from": true, "to": true, "table": true}

// checkParams refuses unknown and repeated parameters.
func checkParams(q url.Values) error {
	for k, v := range q {
		if !consoleParams[k] {
			return fmt.Errorf("%w: unknown parameter %.40q (want tenant, before, limit, from, to, table)", ops.ErrRejected, k)
		}
		if len(v) != 1 && k != "table" {
			return fmt.Errorf("%w: parameter %s given %d times", ops.ErrRejected, k, len(v))
		}
	}
	return nil
}

// Console serves the analysts' console: a web page over the same operations
// as the JSON API (ops.History, ops.Diff, and the Replay function, which
// its JavaScript calls), with the same validation. GET ?tenant=T shows the
// tenant's snapshots (newest first, before/limit page as in the JSON API)
// with rows per table and every target's loads; &from=S1&to=S2 (snapshot
// ids or times, as ops.DiffRequest; table repeatable) adds their diff. A
// rejected request is shown on the page with status 400. Every value from
// the lake (table and column names, messages) is escaped by html/template;
// the page's script and style carry a per-response nonce, and its Content
// Security Policy allows nothing else.
func (h *Handlers) Console(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	p := &consolePage{Nonce: nonce(), Path: r.URL.Path, ReplayURL: h.ReplayURL}
	if p.APIPath = strings.TrimSuffix(p.Path, "/console"); p.APIPath == "" {
		p.APIPath = "/"
	}
	if p.ReplayURL == "" {
		p.ReplayURL = "/" + config.FunctionReplay
	}
	status := http.StatusOK
	if err := h.consoleData(r, p); err != nil {
		status = http.StatusInternalServerError
		msg := err.Error()
		if errors.Is(err, ops.ErrRejected) {
			status = http.StatusBadRequest
			msg = strings.TrimPrefix(msg, ops.ErrRejected.Error()+": ")
		} else {
			h.log().ErrorContext(r.Context(), "console failed", "path", r.URL.Path, "err", msg)
		}
		p.Error = msg
	}
	var buf bytes.Buffer
	if err := consoleTmpl.Execute(&buf, p); err != nil {
		h.log().ErrorContext(r.Context(), "console template", "err", err.Error())
		http.Error(w, "console: cannot render the page", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	connect := "'self'"
	if u, err := url.Parse(p.ReplayURL); err == nil && u.Scheme != "" && u.Host != "" {
		connect += " " + u.Scheme + "://" + u.Host
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+p.Nonce+"'; style-src 'nonce-"+p.Nonce+"'; connect-src "+connect+"; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
}

func (h *Handlers) consoleData(r *http.Request, p *consolePage) error {
	ctx := r.Context()
	q := r.URL.Query()
	if err := checkParams(q); err != nil {
		return err
	}
	p.Tenant, p.From, p.To, p.Tables = q.Get("tenant"), q.Get("from"), q.Get("to"), q["table"]
	if p.Tenant == "" {
		if p.From != "" || p.To != "" {
			return fmt.Errorf("%w: choose a tenant", ops.ErrRejected)
		}
		ts, err := h.Ops.Lake.Tenants(ctx)
		p.Tenants = ts
		return err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	hist, err := h.Ops.History(ctx, p.Tenant, q.Get("before"), limit)
	if err != nil {
		return err
	}
	p.History, p.Limit = hist, limit
	p.Live = map[string]string{}
	newest := map[string]time.Time{}
	for i, s := range hist.Snapshots {
		row := consoleSnapshot{HistorySnapshot: s}
		if i > 0 {
			row.Newer = hist.Snapshots[i-1].SnapshotID
		} else if q.Get("before") != "" {
			row.Newer = q.Get("before")
		}
		m, err := h.Ops.Lake.Manifest(ctx, p.Tenant, s.SnapshotID)
		if err != nil && !errors.Is(err, lake.ErrNotFound) { // deleted by retention meanwhile: no tables to show
			return err
		}
		if m != nil {
			row.TableRows = m.Tables
		}
		for _, target := range hist.Targets {
			cl := consoleLoad{Target: target}
			if loads := s.Loads[target]; len(loads) > 0 {
				last := loads[len(loads)-1]
				cl.Load = &last
				for _, l := range loads {
					if l.Live != "" && l.FinishedAt.After(newest[target]) {
						newest[target], p.Live[target] = l.FinishedAt, l.Live
					}
				}
			}
			row.Last = append(row.Last, cl)
		}
		p.Rows = append(p.Rows, row)
	}
	if p.From == "" && p.To == "" {
		return nil
	}
	res, err := h.Ops.Diff(ctx, ops.DiffRequest{Tenant: p.Tenant, From: p.From, To: p.To, Tables: p.Tables}, diff.Options{})
	p.Diff = res
	return err
}

// LiveTargets lists, sorted, the targets in which snapshot id is live.
func (p *consolePage) LiveTargets(id string) []string {
	var out []string
	for t, s := range p.Live {
		if s == id {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// OlderPage is the query of the next, older page of the timeline.
func (p *consolePage) OlderPage() string {
	if p.History == nil || p.History.Next == "" {
		return ""
	}
	q := url.Values{"tenant": {p.Tenant}, "before": {p.History.Next}}
	if p.Limit > 0 {
		q.Set("limit", fmt.Sprint(p.Limit))
	}
	return "?" + q.Encode()
}

func parseLimit(s string) (int, error) {
	limit := 0
	if s != "" {
		if _, err := fmt.Sscanf(s, "%d", &limit); err != nil || fmt.Sprint(limit) != s {
			return 0, fmt.Errorf("%w: limit %.40q is not a number", ops.ErrRejected, s)
		}
	}
	return limit, nil
}

// nonce is a fresh value for the page's Content Security Policy.
func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}
