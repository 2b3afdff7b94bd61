package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/tenant"
)

// execute runs the tenantlake command line with args and returns what it
// printed on stdout. Flags are reset to their defaults first, as in a fresh
// process.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	reset := func(fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if sv, ok := f.Value.(pflag.SliceValue); ok && (f.DefValue == "[]" || f.DefValue == "") {
				// Set would append "[]" as a value
				if err := sv.Replace(nil); err != nil {
					t.Fatalf("reset flag --%s: %v", f.Name, err)
				}
				f.Changed = false
				return
			}
			if err := f.Value.Set(f.DefValue); err != nil {
				t.Fatalf("reset flag --%s: %v", f.Name, err)
			}
			f.Changed = false
		})
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		reset(c.Flags())
		reset(c.PersistentFlags())
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustExecute(t *testing.T, args ...string) string {
	t.Helper()
	out, err := execute(t, args...)
	if err != nil {
		t.Fatalf("tenantlake %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fixture is a lake written by the test:
//
//	acme:    20261118T010000.000Z, 20261119T010000.000Z, 20261121T020304.123Z committed,
//	         20261122T000000.000Z parts only (a crashed read)
//	globex:  20261120T050000.000Z committed
type fixture struct {
	dir, url string
}

const (
	acme1, acme2, acme3, acmeOrphan = "20261118T010000.000Z", "20261119T010000.000Z", "20261121T020304.123Z", "20261122T000000.000Z"
	globex1                         = "20261120T050000.000Z"
)

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, url: "file://" + dir}
	ctx := context.Background()
	l, err := lake.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	for i, id := range []string{acme1, acme2, acme3} {
		writeSnapshot(t, l, "acme", id, int64(100*(i+1)), true)
	}
	writeSnapshot(t, l, "acme", acmeOrphan, 7, false)
	writeSnapshot(t, l, "globex", globex1, 42, true)
	return f
}

// writeSnapshot writes a snapshot with two tables: customers (rows rows, two
// parts) and coupons (empty), and commits it if commit is set.
func writeSnapshot(t *testing.T, l *lake.Lake, tn, id string, rows int64, commit bool) {
	t.Helper()
	ctx := context.Background()
	started, _ := lake.ParseSnapshotID(id)
	// A read that takes no time: the lake refuses old ids on the real clock.
	s, err := l.WithClock(func() time.Time { return started }).NewSnapshot(ctx, tn, id)
	if err != nil {
		t.Fatal(err)
	}
	part := func(table string, n int, rows int64) lake.File {
		p, err := s.CreatePart(ctx, table, n)
		if err != nil {
			t.Fatal(err)
		}
		// Not Parquet: the catalog commands never open parts.
		if _, err := fmt.Fprintf(p, "part %d of %s: %d rows", n, table, rows); err != nil {
			t.Fatal(err)
		}
		p.SetRows(rows)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		return p.File()
	}
	half := rows / 2
	minID, maxID := "1", fmt.Sprint(rows)
	m := &lake.Manifest{
		Tenant: tn, SnapshotID: id, StartedAt: started, CommittedAt: started.Add(3 * time.Second), ToolVersion: "test",
		Source: lake.Source{Kind: "postgres", Database: "tl_" + tn, ServerVersion: "15.18", TxSnapshot: "812:812:", LSN: "0/1A2B3C4"},
		Tables: []lake.Table{
			{
				Source: "public.customers", Name: "customers", PrimaryKey: []string{"id"}, Rows: rows,
				Columns: []lake.Column{
					{Source: "id", Name: "id", SourceType: "bigint", ParquetType: "INT64", BigQueryType: "INT64", Profile: lake.Profile{Min: &minID, Max: &maxID}},
					{Source: "email", Name: "email", SourceType: "text", ParquetType: "BYTE_ARRAY STRING", BigQueryType: "STRING", Nullable: true, Profile: lake.Profile{Nulls: 3}},
				},
				Files: []lake.File{part("customers", 0, half), part("customers", 1, rows-half)},
			},
			{
				Source: "public.coupons", Name: "coupons", PrimaryKey: []string{"code"},
				Columns: []lake.Column{{Source: "code", Name: "code", SourceType: "text", ParquetType: "BYTE_ARRAY STRING", BigQueryType: "STRING"}},
				Files:   []lake.File{part("coupons", 0, 0)},
			},
		},
		Skipped: []lake.Skipped{{Source: "public.geo", Reason: "column shape has unsupported type geometry"}},
	}
	if commit {
		if err := s.Commit(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshots(t *testing.T) {
	f := newFixture(t)
	out := mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SNAPSHOT") {
		t.Fatalf("want a header and 3 snapshots, got:\n%s", out)
	}
	for i, id := range []string{acme3, acme2, acme1} {
		if !strings.HasPrefix(lines[i+1], id) {
			t.Errorf("line %d = %q, want snapshot %s (newest first)", i+1, lines[i+1], id)
		}
	}
	if !strings.Contains(lines[1], "2026-11-21 02:03:04.123") || !strings.Contains(lines[1], " 300 ") {
		t.Errorf("newest line %q lacks its time or its 300 rows", lines[1])
	}
	if strings.Contains(out, acmeOrphan) {
		t.Errorf("uncommitted snapshot %s listed:\n%s", acmeOrphan, out)
	}

	var got []ops.Summary
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "acme", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("JSON: %d snapshots, want 3", len(got))
	}
	for i, want := range []struct {
		id   string
		rows int64
	}{{acme3, 300}, {acme2, 200}, {acme1, 100}} {
		s := got[i]
		if s.SnapshotID != want.id || s.Rows != want.rows || s.Tables != 2 || s.Files != 3 || s.Skipped != 1 || s.Bytes == 0 {
			t.Errorf("JSON snapshot %d = %+v, want id %s, %d rows, 2 tables, 3 files, 1 skipped", i, s, want.id, want.rows)
		}
	}

	out = mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "initech")
	if !strings.Contains(out, "tenant initech has no committed snapshot") {
		t.Errorf("tenant without snapshots: %q", out)
	}
	if out := mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "initech", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("tenant without snapshots, JSON: %q, want []", out)
	}
	if _, err := execute(t, "snapshots", "--lake", f.url, "--tenant", "../acme"); !errors.Is(err, tenant.ErrInvalidID) {
		t.Errorf("hostile tenant id: %v, want ErrInvalidID", err)
	}
	if _, err := execute(t, "snapshots", "--lake", f.url); err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Errorf("no --tenant: %v, want an error asking for it", err)
	}
}

func TestShow(t *testing.T) {
	f := newFixture(t)
	out := mustExecute(t, "show", "--lake", f.url, "--tenant", "acme", "--snapshot", acme2)
	for _, want := range []string{
		"snapshot     " + acme2, "postgres database tl_acme, server 15.18", "812:812:", "0/1A2B3C4",
		"2 tables, 200 rows, 3 files", "public.customers", "public.geo: column shape has unsupported type geometry",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show --snapshot %s: output lacks %q:\n%s", acme2, want, out)
		}
	}
	if !containsFields(out, "customers", "public.customers", "200", "2") || !containsFields(out, "coupons", "public.coupons", "0", "1") {
		t.Errorf("show: table lines wrong:\n%s", out)
	}

	cols := mustExecute(t, "show", "--lake", f.url, "--tenant", "acme", "--snapshot", acme2, "--columns")
	if !containsFields(cols, "email", "text", "BYTE_ARRAY", "STRING", "STRING", "true", "3") || !containsFields(cols, "id", "bigint", "INT64", "INT64", "false", "0", "1", "200") {
		t.Errorf("show --columns: column lines wrong:\n%s", cols)
	}

	for at, want := range map[string]string{
		"":                          acme3, // newest
		"2026-11-19":                acme2, // end of that day
		"2026-11-19T00:59:59Z":      acme1,
		"2026-11-19T02:00:00+01:00": acme2, // 01:00 UTC, exactly acme2
		acme3:                       acme3,
		"2030-01-01":                acme3, // the orphan is never chosen
	} {
		args := []string{"show", "--lake", f.url, "--tenant", "acme", "--json"}
		if at != "" {
			args = append(args, "--at", at)
		}
		var m lake.Manifest
		if err := json.Unmarshal([]byte(mustExecute(t, args...)), &m); err != nil {
			t.Fatal(err)
		}
		if m.SnapshotID != want || m.Tenant != "acme" || m.Table("customers") == nil {
			t.Errorf("show --at %q: snapshot %s, want %s", at, m.SnapshotID, want)
		}
	}

	_, err := execute(t, "show", "--lake", f.url, "--tenant", "acme", "--at", "2026-11-17")
	if !errors.Is(err, lake.ErrNotFound) || !strings.Contains(err.Error(), "acme") || !strings.Contains(err.Error(), acme1) {
		t.Errorf("show before the oldest: %v, want ErrNotFound naming the tenant and the oldest snapshot", err)
	}
	_, err = execute(t, "show", "--lake", f.url, "--tenant", "acme", "--snapshot", acmeOrphan)
	if !errors.Is(err, lake.ErrNotFound) || !strings.Contains(err.Error(), "tenant acme snapshot "+acmeOrphan) {
		t.Errorf("show uncommitted snapshot: %v, want ErrNotFound naming tenant and snapshot", err)
	}
	if _, err := execute(t, "show", "--lake", f.url, "--tenant", "acme", "--at", "yesterday"); !errors.Is(err, lake.ErrInvalid) {
		t.Errorf("show --at yesterday: %v, want ErrInvalid", err)
	}
	if _, err := execute(t, "show", "--lake", f.url, "--tenant", "acme", "--at", "2026-11-19", "--snapshot", acme1); err == nil {
		t.Error("show with both --at and --snapshot succeeded")
	}
	if _, err := execute(t, "show", "--lake", f.url, "--tenant", "initech"); !errors.Is(err, lake.ErrNotFound) || !strings.Contains(err.Error(), "initech") {
		t.Errorf("show tenant without snapshots: %v", err)
	}
}

// containsFields reports whether some line of out holds fields in order,
// each as a whole whitespace-separated word, starting at the line's first.
func containsFields(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		words := strings.Fields(line)
		i := 0
		for _, w := range words {
			if i < len(fields) && w == fields[i] {
				i++
			} else if i == 0 {
				break
			}
		}
		if i == len(fields) {
			return true
		}
	}
	return false
}

func TestTenants(t *testing.T) {
	f := newFixture(t)
	reg := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(reg, []byte(`tenants:
  - tenant_id: acme
    connection: postgres://app:hunter2@db.internal:5432/tl_acme
    include: ["public.*"]
    exclude: [public.audit_log]
  - tenant_id: globex
    connection: env:GLOBEX_DSN
    is_active: false
  - tenant_id: initech
    connection: file:/run/secrets/initech
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A tenant with data in the lake that the registry no longer lists.
	l, err := lake.Open(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	writeSnapshot(t, l, "umbrella", acme1, 5, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	out := mustExecute(t, "tenants", "--lake", f.url, "--registry", reg)
	if strings.Contains(out, "hunter2") {
		t.Fatalf("tenants shows a password:\n%s", out)
	}
	for _, want := range [][]string{
		{"acme", "true", "public.*", "public.audit_log", "postgres://app:xxxxx@db.internal:5432/tl_acme", "3", acme3},
		{"globex", "false", "all", "-", "env:GLOBEX_DSN", "1", globex1},
		{"initech", "true", "all", "-", "file:/run/secrets/initech", "0", "-"},
		{"umbrella", "not", "in", "registry", "all", "-", "-", "1", acme1},
	} {
		if !containsFields(out, want...) {
			t.Errorf("tenants: no line %q in:\n%s", want, out)
		}
	}

	var lines []tenantLine
	if err := json.Unmarshal([]byte(mustExecute(t, "tenants", "--lake", f.url, "--registry", reg, "--json")), &lines); err != nil {
		t.Fatal(err)
	}
	want := []tenantLine{
		{ID: "acme", InRegistry: true, Active: true, Include: []string{"public.*"}, Exclude: []string{"public.audit_log"}, Connection: "postgres://app:xxxxx@db.internal:5432/tl_acme", Snapshots: 3, Newest: acme3},
		{ID: "globex", InRegistry: true, Include: []string{}, Exclude: []string{}, Connection: "env:GLOBEX_DSN", Snapshots: 1, Newest: globex1},
		{ID: "initech", InRegistry: true, Active: true, Include: []string{}, Exclude: []string{}, Connection: "file:/run/secrets/initech"},
		{ID: "umbrella", Include: []string{}, Exclude: []string{}, Snapshots: 1, Newest: acme1},
	}
	if fmt.Sprintf("%+v", lines) != fmt.Sprintf("%+v", want) {
		t.Errorf("tenants --json = %+v\nwant %+v", lines, want)
	}

	if _, err := execute(t, "tenants", "--lake", f.url); err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("tenants without a registry: %v, want an error naming --registry", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("tenants:\n  - tenant_id: ../acme\n    connection: postgres://u:hunter2@h/d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, "tenants", "--lake", f.url, "--registry", bad); !errors.Is(err, tenant.ErrInvalidID) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("registry with a bad id: %v, want ErrInvalidID without the password", err)
	}
}

func TestGC(t *testing.T) {
	f := newFixture(t)
	orphanDir := filepath.Join(f.dir, "tenant=acme", "snapshot="+acmeOrphan)
	snapshotIDs := func(tn string) []string {
		var got []ops.Summary
		if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", f.url, "--tenant", tn, "--json")), &got); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.SnapshotID)
		}
		return ids
	}

	// A dry run reports and deletes nothing.
	out := mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "1", "--dry-run")
	for _, want := range []string{"dry run: nothing was deleted", "acme: would delete snapshot " + acme1, "acme: would delete snapshot " + acme2, "acme: would delete orphan parts of uncommitted snapshot " + acmeOrphan} {
		if !strings.Contains(out, want) {
			t.Errorf("gc --dry-run: output lacks %q:\n%s", want, out)
		}
	}
	if ids := snapshotIDs("acme"); len(ids) != 3 {
		t.Fatalf("after a dry run: snapshots %v, want all 3", ids)
	}
	if parts, _ := filepath.Glob(filepath.Join(orphanDir, "*", "*.parquet")); len(parts) != 3 {
		t.Fatalf("after a dry run: orphan parts %v, want 3", parts)
	}

	// Orphans whose ids are younger than the grace survive; the age rule
	// keeps everything younger than the oldest snapshot's age.
	var reps []lake.GCReport
	if err := json.Unmarshal([]byte(mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "1", "--keep-within", "36500d", "--orphan-grace", "36500d", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || len(reps[0].Kept) != 3 || len(reps[0].DeletedSnapshots) != 0 || len(reps[0].SweptOrphans) != 0 {
		t.Fatalf("gc with a long age rule: %+v, want everything kept", reps)
	}

	// A tenant whose only read crashed.
	l, err := lake.Open(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	writeSnapshot(t, l, "hooli", acme1, 9, false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Keep the newest one; sweep the crashed reads.
	if err := json.Unmarshal([]byte(mustExecute(t, "gc", "--lake", f.url, "--all", "--keep-last", "1", "--orphan-grace", "1h", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 || reps[0].Tenant != "acme" || reps[1].Tenant != "globex" || reps[2].Tenant != "hooli" {
		t.Fatalf("gc --all: reports %+v, want acme, globex and hooli", reps)
	}
	if fmt.Sprint(reps[2].SweptOrphans) != fmt.Sprint([]string{acme1}) {
		t.Errorf("gc --all, hooli: %+v, want its orphan swept", reps[2])
	}
	if fmt.Sprint(reps[0].DeletedSnapshots) != fmt.Sprint([]string{acme2, acme1}) || fmt.Sprint(reps[0].SweptOrphans) != fmt.Sprint([]string{acmeOrphan}) || reps[0].DryRun {
		t.Errorf("gc --all, acme: %+v", reps[0])
	}
	if ids := snapshotIDs("acme"); fmt.Sprint(ids) != fmt.Sprint([]string{acme3}) {
		t.Errorf("after gc: acme snapshots %v, want only %s", ids, acme3)
	}
	if ids := snapshotIDs("globex"); fmt.Sprint(ids) != fmt.Sprint([]string{globex1}) {
		t.Errorf("after gc: globex snapshots %v, want %s kept (the newest is always kept)", ids, globex1)
	}
	if parts, _ := filepath.Glob(filepath.Join(orphanDir, "*", "*.parquet")); len(parts) > 0 {
		t.Errorf("after gc: orphan parts remain: %v", parts)
	}

	for _, args := range [][]string{
		{"gc", "--lake", f.url},
		{"gc", "--lake", f.url, "--all", "--tenant", "acme"},
		{"gc", "--lake", f.url, "--tenant", "acme", "--keep-within", "3 weeks"},
		{"gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "-1"},
	} {
		if _, err := execute(t, args...); err == nil {
			t.Errorf("tenantlake %s succeeded, want an error", strings.Join(args[1:], " "))
		}
	}
	if _, err := execute(t, "gc", "--lake", f.url, "--tenant", "Acme"); !errors.Is(err, tenant.ErrInvalidID) {
		t.Errorf("gc --tenant Acme: %v, want ErrInvalidID", err)
	}
}

func TestHelp(t *testing.T) {
	for _, name := range []string{"tenants", "snapshots", "show", "gc"} {
		out := mustExecute(t, name, "--help")
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "tenantlake "+name) || !strings.Contains(out, "--json") {
			t.Errorf("%s --help lacks examples or flags:\n%s", name, out)
		}
	}
}
