package laketest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// Run runs the lake conformance suite. newFixture must return a fresh,
// empty lake each time it is called; every subtest gets its own and runs in
// parallel with the others.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Fixture)
	}{
		{"CommitListRoundTrip", testCommitListRoundTrip},
		{"SnapshotsNewestFirst", testSnapshotsNewestFirst},
		{"ResolveAsOf", testResolveAsOf},
		{"UncommittedInvisible", testUncommittedInvisible},
		{"SecondCommitExists", testSecondCommitExists},
		{"ConcurrentCommitsOneWins", testConcurrentCommits},
		{"SecondCreatePartExists", testSecondCreatePart},
		{"CommitChecksParts", testCommitChecksParts},
		{"CancelledPartLeavesNothing", testCancelledPart},
		{"OpenPartReadAtVerify", testOpenPartVerify},
		{"Ledger", testLedger},
		{"GCPolicy", testGCPolicy},
		{"GCDryRun", testGCDryRun},
		{"CrashedReadSweptAfterGrace", testCrashedRead},
		{"HostileNames", testHostileNames},
		{"ReadMustCommitWithinMaxReadDuration", testCommitExpires},
		{"OrphanGraceByIDTimeAndMinimum", testOrphanGrace},
		{"GCKeepsSnapshotsLiveInTargets", testGCKeepsLive},
		{"TamperedPartsAreCorrupt", testTamperedParts},
		{"CheckStored", testCheckStored},
		{"ReadsAndSweepsRace", testReadsAndSweepsRace},
		{"ClaimSnapshotTakesNextMillisecond", testClaimSnapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newFixture(t))
		})
	}
}

// Snapshot ids the suite uses, oldest first.
const (
	id1 = "20261120T100000.000Z"
	id2 = "20261121T020304.123Z"
	id3 = "20261121T235959.999Z"
	id4 = "20261122T000000.000Z"
)

var tables = []string{"orders", "order_items", "empty_table"}

func mustManifest(t *testing.T, lk *lake.Lake, tenant, id string) *lake.Manifest {
	t.Helper()
	m, err := lk.Manifest(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func snapshotIDs(t *testing.T, lk *lake.Lake, tenant string) []string {
	t.Helper()
	snaps, err := lk.Snapshots(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, s := range snaps {
		if s.Tenant != tenant {
			t.Errorf("Snapshots(%s) listed a snapshot of %s", tenant, s.Tenant)
		}
		if want, _ := lake.ParseSnapshotID(s.SnapshotID); !s.Time.Equal(want) {
			t.Errorf("snapshot %s has time %v", s.SnapshotID, s.Time)
		}
		ids = append(ids, s.SnapshotID)
	}
	return ids
}

func tenants(t *testing.T, lk *lake.Lake) []string {
	t.Helper()
	ts, err := lk.Tenants(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want one wrapping %q", what, err, kind)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// keysUnder returns the keys of f's bucket that start with the lake key
// prefix p.
func keysUnder(t *testing.T, f Fixture, p string) []string {
	t.Helper()
	var out []string
	for _, k := range f.Keys(t) {
		if strings.HasPrefix(k, f.Root+p) {
			out = append(out, k)
		}
	}
	return out
}

func testCommitListRoundTrip(t *testing.T, f Fixture) {
	ctx := context.Background()
	want := WriteSnapshot(t, f.Lake, "acme", id2, tables, 2, 3, 1)
	equal(t, "Tenants", tenants(t, f.Lake), []string{"acme"})
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{id2})
	got := mustManifest(t, f.Lake, "acme", id2)
	equal(t, "manifest read back", got, want)
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	if tab := got.Table("order_items"); tab == nil || len(tab.Files) != 3 || tab.Rows != 6 {
		t.Errorf("Table(order_items) = %+v, want 3 files holding 6 rows", tab)
	}
	if got.Table("missing") != nil {
		t.Error("Table(missing) is not nil")
	}
	// Every object of the snapshot is where the layout says.
	var wantKeys []string
	for _, tab := range want.Tables {
		for i, file := range tab.Files {
			if k := lake.PartKey("acme", id2, tab.Name, i); file.Path != k {
				t.Errorf("part %d of %s at %q, want %q", i, tab.Name, file.Path, k)
			}
			wantKeys = append(wantKeys, f.Root+file.Path)
			if err := f.Lake.Verify(ctx, file); err != nil {
				t.Error(err)
			}
		}
	}
	wantKeys = append(wantKeys, f.Root+lake.ManifestKey("acme", id2), f.Root+lake.ClaimKey("acme", id2))
	equal(t, "objects in the bucket", sortedCopy(f.Keys(t)), sortedCopy(wantKeys))
	if u := f.Lake.ManifestURL("acme", id2); !strings.HasSuffix(u, "/"+lake.ManifestKey("acme", id2)) {
		t.Errorf("ManifestURL = %q", u)
	}
}

func testSnapshotsNewestFirst(t *testing.T, f Fixture) {
	for _, id := range []string{id3, id1, id4, id2} {
		WriteSnapshot(t, f.Lake, "acme", id, tables[:1])
	}
	WriteSnapshot(t, f.Lake, "beta", id2, tables[:1])
	equal(t, "Snapshots(acme)", snapshotIDs(t, f.Lake, "acme"), []string{id4, id3, id2, id1})
	equal(t, "Snapshots(beta)", snapshotIDs(t, f.Lake, "beta"), []string{id2})
	equal(t, "Snapshots(nobody)", snapshotIDs(t, f.Lake, "nobody"), []string{})
	equal(t, "Tenants", tenants(t, f.Lake), []string{"acme", "beta"})
	latest, err := f.Lake.Latest(context.Background(), "acme")
	if err != nil || latest.SnapshotID != id4 {
		t.Errorf("Latest(acme) = %v, %v; want %s", latest.SnapshotID, err, id4)
	}
	_, err = f.Lake.Latest(context.Background(), "nobody")
	wantErr(t, "Latest(nobody)", err, lake.ErrNotFound)
}

func testResolveAsOf(t *testing.T, f Fixture) {
	ctx := context.Background()
	for _, id := range []string{id1, id2, id3, id4} {
		WriteSnapshot(t, f.Lake, "acme", id, tables[:1])
	}
	cases := []struct {
		asOf string
		want string // "" means ErrNotFound
	}{
		{id2, id2},                             // a snapshot id: that snapshot
		{"2026-11-21T02:03:04.123Z", id2},      // exactly its time
		{"2026-11-21T02:03:04.122Z", id1},      // a millisecond before it
		{"2026-11-21T12:00:00Z", id2},          // between two snapshots
		{"2026-11-21T04:03:04.123+02:00", id2}, // an offset east of UTC
		{"2026-11-21T21:00:00-03:00", id4},     // an offset west of UTC: midnight UTC
		{"2026-11-21", id3},                    // a date: the end of that day in UTC
		{"2026-11-20", id1},
		{"2026-11-19", ""},                     // a day before the oldest
		{"2026-11-20T09:59:59.999Z", ""},       // just before the oldest
		{"2030-01-01T00:00:00Z", id4},          // after the newest
		{"2026-11-22T00:00:00.000Z", id4},      // exactly the newest
		{"2026-11-21T23:59:59.9999Z", id3},     // finer than a millisecond
		{"2026-11-22T01:00:00+01:00", id4},     // the same instant as id4, written in +01:00
		{"2026-11-22T00:59:59.999+01:00", id3}, // a millisecond before it
		{"20261121T020304.124Z", id2},          // a snapshot id that is not stored
		{"20261120T095959.999Z", ""},           // a snapshot id before the oldest
		{"2026-11-21T02:03:04.123456Z", id2},   // microseconds after id2
	}
	for _, c := range cases {
		at, err := lake.ParseAsOf(c.asOf)
		if err != nil {
			t.Errorf("ParseAsOf(%q): %v", c.asOf, err)
			continue
		}
		got, err := f.Lake.Resolve(ctx, "acme", at)
		if c.want == "" {
			wantErr(t, "Resolve as of "+c.asOf, err, lake.ErrNotFound)
			continue
		}
		if err != nil || got.SnapshotID != c.want {
			t.Errorf("Resolve as of %s = %q, %v; want %s", c.asOf, got.SnapshotID, err, c.want)
		}
	}
	for _, bad := range []string{"", "2026-11-21T02:03:04", "yesterday", "2026-13-01", "21/11/2026", "20261121T020304Z"} {
		_, err := lake.ParseAsOf(bad)
		wantErr(t, "ParseAsOf("+bad+")", err, lake.ErrInvalid)
	}
	_, err := f.Lake.Resolve(ctx, "nobody", time.Now())
	wantErr(t, "Resolve(nobody)", err, lake.ErrNotFound)
}

func testUncommittedInvisible(t *testing.T, f Fixture) {
	ctx := context.Background()
	committed := WriteSnapshot(t, f.Lake, "acme", id2, tables)
	WriteParts(t, f.Lake, "acme", id3, tables) // newer, never committed
	WriteParts(t, f.Lake, "ghost", id1, tables)
	equal(t, "Tenants", tenants(t, f.Lake), []string{"acme"})
	all, err := f.Lake.TenantFolders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "TenantFolders", all, []string{"acme", "ghost"})
	equal(t, "Snapshots(acme)", snapshotIDs(t, f.Lake, "acme"), []string{id2})
	equal(t, "Snapshots(ghost)", snapshotIDs(t, f.Lake, "ghost"), []string{})
	got, err := f.Lake.Resolve(ctx, "acme", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || got.SnapshotID != id2 {
		t.Errorf("Resolve(acme, 2030) = %q, %v; want %s", got.SnapshotID, err, id2)
	}
	_, err = f.Lake.Resolve(ctx, "ghost", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	wantErr(t, "Resolve(ghost)", err, lake.ErrNotFound)
	t1, _ := lake.ParseSnapshotID(id1)
	since, err := f.Lake.SnapshotsSince(ctx, "acme", t1)
	if err != nil || len(since) != 1 || since[0].SnapshotID != id2 {
		t.Errorf("SnapshotsSince(acme, %s) = %v, %v; want only %s", id1, since, err, id2)
	}
	t3, _ := lake.ParseSnapshotID(id3)
	if since, err := f.Lake.SnapshotsSince(ctx, "acme", t3); err != nil || len(since) != 0 {
		t.Errorf("SnapshotsSince(acme, %s) = %v, %v; want none", id3, since, err)
	}
	_, err = f.Lake.Manifest(ctx, "acme", id3)
	wantErr(t, "Manifest of uncommitted acme snapshot", err, lake.ErrNotFound)
	_, err = f.Lake.Manifest(ctx, "ghost", id1)
	wantErr(t, "Manifest of uncommitted ghost snapshot", err, lake.ErrNotFound)
	equal(t, "committed manifest", mustManifest(t, f.Lake, "acme", id2), committed)
}

func testSecondCommitExists(t *testing.T, f Fixture) {
	ctx := context.Background()
	s, first := StartSnapshot(t, f.Lake, "acme", id2, tables)
	// A second read of the same id loses before it writes anything, while
	// the first is still writing and once it has committed.
	before := f.Keys(t)
	clock := f.Other(t).WithClock(ClockAt(t, id2))
	_, err := clock.NewSnapshot(ctx, "acme", id2)
	wantErr(t, "NewSnapshot of a snapshot id another read took", err, lake.ErrExists)
	if want := "another read of tenant acme took snapshot id " + id2; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("NewSnapshot of a taken id: %v; want it to say %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), ".tmp") {
		t.Errorf("NewSnapshot of a taken id: %v; it names a temporary file", err)
	}
	equal(t, "objects after a losing NewSnapshot", f.Keys(t), before)
	if err := s.Commit(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := *first
	second.ToolVersion = "second"
	err = s.Commit(ctx, &second)
	wantErr(t, "second Commit", err, lake.ErrExists)
	equal(t, "manifest after a second commit", mustManifest(t, f.Lake, "acme", id2), first)
	_, err = clock.NewSnapshot(ctx, "acme", id2)
	wantErr(t, "NewSnapshot of a committed snapshot", err, lake.ErrExists)
}

// testConcurrentCommits races NewSnapshot of one id from several lakes on
// the same storage (as separate processes would), then Commit of the
// winner's snapshot from several goroutines: exactly one of each wins.
func testConcurrentCommits(t *testing.T, f Fixture) {
	ctx := context.Background()
	const racers = 8
	var (
		claims [racers]*lake.Snapshot
		errs   [racers]error
		others [racers]*lake.Lake
	)
	for i := range racers {
		others[i] = f.Other(t).WithClock(ClockAt(t, id2))
	}
	race(racers, func(i int) { claims[i], errs[i] = others[i].NewSnapshot(ctx, "acme", id2) })
	var s *lake.Snapshot
	for i, err := range errs {
		switch {
		case err == nil && s != nil:
			t.Errorf("two racers claimed %s; racer %d second", id2, i)
		case err == nil:
			s = claims[i]
		default:
			wantErr(t, "losing NewSnapshot", err, lake.ErrExists)
		}
	}
	if s == nil {
		t.Fatal("no racer claimed the snapshot id")
	}
	base := writeTables(t, s, "acme", id2, tables)
	var mans [racers]*lake.Manifest
	for i := range racers {
		m := *base
		m.ToolVersion = "racer " + string(rune('a'+i))
		mans[i] = &m
	}
	race(racers, func(i int) { errs[i] = s.Commit(ctx, mans[i]) })
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both committed", winner, i)
		case err == nil:
			winner = i
		default:
			wantErr(t, "losing Commit", err, lake.ErrExists)
		}
	}
	if winner < 0 {
		t.Fatal("no racer committed")
	}
	equal(t, "stored manifest", mustManifest(t, f.Lake, "acme", id2), mans[winner])
	if f.Requests != nil {
		// gcsblob asks GCS to create every object only if it does not exist.
		uploads := 0
		for _, r := range f.Requests() {
			if r.Method == "POST" && strings.HasPrefix(r.Path, "/upload/") {
				uploads++
				if g := r.Query["ifGenerationMatch"]; len(g) != 1 || g[0] != "0" {
					t.Errorf("upload of %v sent ifGenerationMatch=%v, want 0", r.Query["name"], g)
				}
			}
		}
		if want := racers + len(tables) + racers; uploads > want {
			t.Errorf("the fake GCS saw %d uploads, want at most %d", uploads, want)
		}
	}
}

// race runs fn(0..n-1) in n goroutines released at once, and waits.
func race(n int, fn func(i int)) {
	var start, done sync.WaitGroup
	ready := make(chan struct{})
	for i := range n {
		start.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			start.Done()
			<-ready
			fn(i)
		}()
	}
	start.Wait()
	close(ready)
	done.Wait()
}

// writeTables writes one part of each table to s and returns the manifest
// that commits them.
func writeTables(t *testing.T, s *lake.Snapshot, tenant, id string, tables []string) *lake.Manifest {
	t.Helper()
	ctx := context.Background()
	start, _ := lake.ParseSnapshotID(id)
	m := &lake.Manifest{FormatVersion: lake.FormatVersion, Tenant: tenant, SnapshotID: id, StartedAt: start, CommittedAt: start, ToolVersion: "laketest"}
	for _, table := range tables {
		p, err := s.CreatePart(ctx, table, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Write(PartBytes(tenant, id, table, 0)); err != nil {
			t.Fatal(err)
		}
		p.SetRows(1)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		m.Tables = append(m.Tables, lake.Table{Source: "public." + table, Name: table,
			Columns: []lake.Column{{Source: "id", Name: "id", SourceType: "bigint", ParquetType: "INT64", BigQueryType: "INT64"}},
			Rows:    1, Files: []lake.File{p.File()}})
	}
	return m
}

func testSecondCreatePart(t *testing.T, f Fixture) {
	ctx := context.Background()
	s, m := StartSnapshot(t, f.Lake, "acme", id2, tables[:1])
	p, err := s.CreatePart(ctx, tables[0], 0)
	if err == nil {
		if _, err = p.Write([]byte("a different part")); err != nil {
			t.Fatal(err)
		}
		err = p.Close()
	}
	wantErr(t, "second CreatePart", err, lake.ErrExists)
	if err := f.Lake.Verify(ctx, m.Tables[0].Files[0]); err != nil {
		t.Errorf("the first part changed: %v", err)
	}
}

func testCommitChecksParts(t *testing.T, f Fixture) {
	ctx := context.Background()
	s, m := StartSnapshot(t, f.Lake, "acme", id2, tables[:1])
	missing := *m
	missing.Tables = []lake.Table{m.Tables[0]}
	missing.Tables[0].Files = append([]lake.File{}, m.Tables[0].Files...)
	missing.Tables[0].Files[0].Path = lake.PartKey("acme", id2, tables[0], 7)
	wantErr(t, "Commit of a missing part", s.Commit(ctx, &missing), lake.ErrNotFound)
	short := *m
	short.Tables = []lake.Table{m.Tables[0]}
	short.Tables[0].Files = append([]lake.File{}, m.Tables[0].Files...)
	short.Tables[0].Files[0].Bytes++
	wantErr(t, "Commit of a part with the wrong size", s.Commit(ctx, &short), lake.ErrInvalid)
	newer := *m
	newer.FormatVersion = lake.FormatVersion + 1
	wantErr(t, "Commit of a newer format", s.Commit(ctx, &newer), lake.ErrInvalid)
	other := *m
	other.Tenant = "beta"
	wantErr(t, "Commit of another tenant's manifest", s.Commit(ctx, &other), lake.ErrInvalid)
	if keys := keysUnder(t, f, lake.ManifestKey("acme", id2)); len(keys) != 0 {
		t.Errorf("failed commits wrote %v", keys)
	}
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{})
}

func testCancelledPart(t *testing.T, f Fixture) {
	s, err := f.Lake.WithClock(ClockAt(t, id2)).NewSnapshot(context.Background(), "acme", id2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := s.CreatePart(ctx, "orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for range 4 {
		if _, err := p.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := p.Close(); err == nil {
		t.Error("Close after cancel succeeded")
	}
	equal(t, "objects after a cancelled upload (only the claim)", f.Keys(t), []string{f.Root + lake.ClaimKey("acme", id2)})
}

func testOpenPartVerify(t *testing.T, f Fixture) {
	ctx := context.Background()
	m := WriteSnapshot(t, f.Lake, "acme", id2, tables[:1], 2)
	file := m.Tables[0].Files[1]
	want := PartBytes("acme", id2, tables[0], 1)
	r, err := f.Lake.OpenPart(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(want)) {
		t.Errorf("Size = %d, want %d", r.Size(), len(want))
	}
	all, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || string(all) != string(want) {
		t.Errorf("read %q, %v; want %q", all, err, want)
	}
	buf := make([]byte, 5)
	if n, err := r.ReadAt(buf, 3); n != 5 || err != nil || string(buf) != string(want[3:8]) {
		t.Errorf("ReadAt(5 bytes, 3) = %d, %v, %q; want %q", n, err, buf[:n], want[3:8])
	}
	tail := make([]byte, 10)
	off := r.Size() - 4
	if n, err := r.ReadAt(tail, off); n != 4 || !errors.Is(err, io.EOF) || string(tail[:n]) != string(want[off:]) {
		t.Errorf("ReadAt past the end = %d, %v, %q; want 4, EOF, %q", n, err, tail[:n], want[off:])
	}
	if n, err := r.ReadAt(buf, r.Size()); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt(size) = %d, %v; want 0, EOF", n, err)
	}
	seq, err := io.ReadAll(r)
	if err != nil || string(seq) != string(want) {
		t.Errorf("Read = %q, %v", seq, err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := f.Lake.Verify(ctx, file); err != nil {
		t.Error(err)
	}
	other := file
	other.SHA256 = m.Tables[0].Files[0].SHA256
	wantErr(t, "Verify with another part's checksum", f.Lake.Verify(ctx, other), lake.ErrCorrupt)
	longer := file
	longer.Bytes++
	wantErr(t, "Verify with the wrong size", f.Lake.Verify(ctx, longer), lake.ErrCorrupt)
	_, err = f.Lake.OpenPart(ctx, longer)
	wantErr(t, "OpenPart with the wrong size", err, lake.ErrCorrupt)
	// The stored bytes change behind the lake's back.
	flipped := append([]byte{}, want...)
	flipped[0] ^= 1
	f.Overwrite(t, file.Path, flipped)
	wantErr(t, "Verify of a part with a flipped bit", f.Lake.Verify(ctx, file), lake.ErrCorrupt)
	f.Overwrite(t, file.Path, want[1:])
	_, err = f.Lake.OpenPart(ctx, file)
	wantErr(t, "OpenPart of a truncated part", err, lake.ErrCorrupt)
	wantErr(t, "Verify of a truncated part", f.Lake.Verify(ctx, file), lake.ErrCorrupt)
	gone := file
	gone.Path = lake.PartKey("acme", id2, tables[0], 9)
	_, err = f.Lake.OpenPart(ctx, gone)
	wantErr(t, "OpenPart of a missing part", err, lake.ErrNotFound)
	wantErr(t, "Verify of a missing part", f.Lake.Verify(ctx, gone), lake.ErrNotFound)
}

func testLedger(t *testing.T, f Fixture) {
	ctx := context.Background()
	type record struct {
		Snapshot string `json:"snapshot"`
		Outcome  string `json:"outcome"`
	}
	writes := []struct {
		id, load string
		rec      record
	}{
		{id3, "load_2", record{id3, "loaded"}},
		{id1, "load_1", record{id1, "quarantined"}},
		{id3, "load_1", record{id3, "failed"}},
	}
	for _, w := range writes {
		if err := f.Lake.WriteLedger(ctx, "acme", "bigquery", w.id, w.load, w.rec); err != nil {
			t.Fatal(err)
		}
	}
	err := f.Lake.WriteLedger(ctx, "acme", "bigquery", id3, "load_2", record{id3, "again"})
	wantErr(t, "second WriteLedger of the same load", err, lake.ErrExists)
	raw, err := f.Lake.Ledger(ctx, "acme", "bigquery")
	if err != nil {
		t.Fatal(err)
	}
	var got []record
	for _, r := range raw {
		var rec record
		if err := json.Unmarshal(r, &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	equal(t, "Ledger", got, []record{writes[1].rec, writes[2].rec, writes[0].rec})
	empty, err := f.Lake.Ledger(ctx, "acme", "postgres")
	if err != nil || len(empty) != 0 {
		t.Errorf("Ledger of a target with no loads = %v, %v", empty, err)
	}
	// Ledger records do not make a tenant or a snapshot.
	equal(t, "Tenants", tenants(t, f.Lake), []string(nil))
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{})
}

// days is a series of snapshots, one per offset in days before now.
func days(now time.Time, offsets ...int) []string {
	var ids []string
	for _, d := range offsets {
		ids = append(ids, lake.SnapshotID(now.Add(-time.Duration(d)*24*time.Hour)))
	}
	return ids
}

func testGCPolicy(t *testing.T, f Fixture) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
	ids := days(now, 10, 5, 3, 1, 0) // oldest first
	newestFirst := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	cases := []struct {
		name string
		p    lake.Policy
		keep int // the newest keep snapshots stay
	}{
		{"no rule keeps all", lake.Policy{}, 5},
		{"keep last 2", lake.Policy{KeepLast: 2}, 2},
		{"keep within 4 days", lake.Policy{KeepWithin: 4 * 24 * time.Hour}, 3},
		{"either rule keeps", lake.Policy{KeepLast: 4, KeepWithin: 4 * 24 * time.Hour}, 4},
		{"the newest is always kept", lake.Policy{KeepWithin: time.Hour}, 1},
		{"keep last 1", lake.Policy{KeepLast: 1, KeepWithin: time.Minute}, 1},
	}
	bystander := WriteSnapshot(t, f.Lake, "bystander", ids[0], tables[:1])
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lk := f.Lake
			tenant := "t" + string(rune('a'+i))
			var mans []*lake.Manifest
			for _, id := range ids {
				mans = append(mans, WriteSnapshot(t, lk, tenant, id, tables[:2], 2, 2))
			}
			before := len(requests(f))
			rep, err := lk.GC(ctx, tenant, c.p, now)
			if err != nil {
				t.Fatal(err)
			}
			kept, deleted := newestFirst[:c.keep], append([]string{}, newestFirst[c.keep:]...)
			equal(t, "kept", rep.Kept, kept)
			equal(t, "deleted", rep.DeletedSnapshots, deleted)
			equal(t, "swept", rep.SweptOrphans, []string{})
			if rep.DeletedObjects != 6*len(deleted) || rep.DryRun || rep.Tenant != tenant {
				t.Errorf("report %+v: want %d objects deleted for real", rep, 6*len(deleted))
			}
			equal(t, "Snapshots after GC", snapshotIDs(t, lk, tenant), kept)
			for _, id := range deleted {
				if keys := keysUnder(t, f, lake.SnapshotPrefix(tenant, id)); len(keys) != 0 {
					t.Errorf("snapshot %s deleted but %v left", id, keys)
				}
			}
			for i, id := range ids {
				if contains(kept, id) {
					equal(t, "kept manifest "+id, mustManifest(t, lk, tenant, id), mans[i])
					verifyAll(t, lk, mans[i])
				}
			}
			equal(t, "bystander", mustManifest(t, lk, "bystander", ids[0]), bystander)
			if f.Requests != nil {
				checkManifestDeletedFirst(t, requests(f)[before:], tenant, deleted)
			}
		})
	}
}

// requests returns the requests the fake GCS has received so far, or nil
// for other backends.
func requests(f Fixture) []Request {
	if f.Requests == nil {
		return nil
	}
	return f.Requests()
}

func verifyAll(t *testing.T, lk *lake.Lake, m *lake.Manifest) {
	t.Helper()
	for _, tab := range m.Tables {
		for _, file := range tab.Files {
			if err := lk.Verify(context.Background(), file); err != nil {
				t.Error(err)
			}
		}
	}
}

// checkManifestDeletedFirst checks, from the requests the fake GCS received,
// that each deleted snapshot lost its manifest before any of its parts.
func checkManifestDeletedFirst(t *testing.T, reqs []Request, tenant string, deleted []string) {
	t.Helper()
	for _, id := range deleted {
		var order []string
		for _, r := range reqs {
			if r.Method == "DELETE" && strings.Contains(r.Path, lake.SnapshotPrefix(tenant, id)) {
				order = append(order, r.Path)
			}
		}
		if len(order) != 6 || !strings.HasSuffix(order[0], lake.ManifestKey(tenant, id)) || !strings.HasSuffix(order[5], lake.ClaimKey(tenant, id)) {
			t.Errorf("DELETE requests for snapshot %s: %v; want the manifest first, then 4 parts, then the claim", id, order)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

func testGCDryRun(t *testing.T, f Fixture) {
	ctx := context.Background()
	now := time.Now()
	ids := days(now, 3, 2, 1)
	for _, id := range ids {
		WriteSnapshot(t, f.Lake, "acme", id, tables[:1])
	}
	WriteParts(t, f.Lake, "acme", lake.SnapshotID(now.Add(-time.Hour)), tables[:1])
	before := f.Keys(t)
	rep, err := f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1, DryRun: true}, now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "dry run kept", rep.Kept, []string{ids[2]})
	equal(t, "dry run would delete", rep.DeletedSnapshots, []string{ids[1], ids[0]})
	equal(t, "dry run would sweep", rep.SweptOrphans, []string{lake.SnapshotID(now.Add(-time.Hour))})
	if !rep.DryRun || rep.DeletedObjects != 8 {
		t.Errorf("dry run report %+v: want DryRun and 8 objects", rep)
	}
	equal(t, "objects after a dry run", f.Keys(t), before)
}

// testCrashedRead is the crash test: a read wrote parts and died before its
// manifest. Its parts are invisible, kept while its id is younger than the
// grace period (a read may still be running), and swept after it; the
// committed snapshot beside them is untouched. A tenant whose only snapshot
// crashed is swept by GCAll.
func testCrashedRead(t *testing.T, f Fixture) {
	ctx := context.Background()
	good := WriteSnapshot(t, f.Lake, "acme", id2, tables, 2, 1, 1)
	WriteParts(t, f.Lake, "acme", id3, tables, 3, 1, 1) // crashed: no manifest
	WriteParts(t, f.Lake, "ghost", id1, tables)         // a first read that crashed
	goodKeys := keysUnder(t, f, lake.SnapshotPrefix("acme", id2))
	crashed := keysUnder(t, f, lake.SnapshotPrefix("acme", id3))
	if len(crashed) != 6 {
		t.Fatalf("crashed read left %v, want its claim and 5 parts", crashed)
	}
	equal(t, "Snapshots with a crashed read", snapshotIDs(t, f.Lake, "acme"), []string{id2})
	equal(t, "Tenants with a crashed read", tenants(t, f.Lake), []string{"acme"})

	const grace = time.Hour
	p := lake.Policy{KeepLast: 1, OrphanGrace: grace}
	written, _ := lake.ParseSnapshotID(id3) // by the id's time, not the objects'
	rep, err := f.Lake.GC(ctx, "acme", p, written.Add(grace-time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept within the grace period", rep.SweptOrphans, []string{})
	equal(t, "crashed parts within the grace period", keysUnder(t, f, lake.SnapshotPrefix("acme", id3)), crashed)

	rep, err = f.Lake.GC(ctx, "acme", p, written.Add(grace+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept after the grace period", rep.SweptOrphans, []string{id3})
	equal(t, "kept", rep.Kept, []string{id2})
	if rep.DeletedObjects != 6 {
		t.Errorf("deleted %d objects, want 6", rep.DeletedObjects)
	}
	equal(t, "crashed parts after the grace period: GC's seal", keysUnder(t, f, lake.SnapshotPrefix("acme", id3)), []string{f.Root + lake.ManifestKey("acme", id3)})
	equal(t, "committed snapshot's objects", keysUnder(t, f, lake.SnapshotPrefix("acme", id2)), goodKeys)
	equal(t, "committed manifest", mustManifest(t, f.Lake, "acme", id2), good)
	verifyAll(t, f.Lake, good)

	reps, err := f.Lake.GCAll(ctx, p, written.Add(grace+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[1].Tenant != "ghost" || !reflect.DeepEqual(reps[1].SweptOrphans, []string{id1}) {
		t.Errorf("GCAll reports %+v; want ghost's %s swept", reps, id1)
	}
	equal(t, "GCAll left of ghost: the seal", keysUnder(t, f, "tenant=ghost/"), []string{f.Root + lake.ManifestKey("ghost", id1)})
	equal(t, "Tenants after GCAll", tenants(t, f.Lake), []string{"acme"})
	if _, err := f.Lake.GCAll(ctx, p, written.Add(grace+lake.SealKeep)); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnder(t, f, "tenant=ghost/"); len(keys) != 0 {
		t.Errorf("GCAll after SealKeep left %v", keys)
	}
}

// Hostile names: tenant ids and table names that try to leave their folder,
// look like another tenant, or are not ids at all.
var (
	hostileTenants = []string{
		"../x", "..", "a/b", "/abs", "", "Acme", "ACME", "\u0430cme", // Cyrillic а
		"acme\u200b", "acme ", " acme", "acme\x00", "acme\n", "1acme", "_acme", "ac-me", "ac.me",
		"tenant=acme", "acme/../beta", "%2e%2e", "a" + strings.Repeat("b", tenant.MaxIDLength),
	}
	hostileNames = []string{"../t", "..", "a/b", "", "/t", "t/", "t.x", "1t", "t-x", "t x", "t=x", "\u0430", "t\x00", strings.Repeat("t", 301)}
)

func testHostileNames(t *testing.T, f Fixture) {
	ctx := context.Background()
	lk := f.Lake
	s, good := StartSnapshot(t, lk, "acme", id2, tables[:1])
	now := time.Now()
	for _, bad := range hostileTenants {
		_, err := lk.NewSnapshot(ctx, bad, id2)
		wantErr(t, "NewSnapshot("+bad+")", err, lake.ErrInvalid)
		_, err = lk.Snapshots(ctx, bad)
		wantErr(t, "Snapshots("+bad+")", err, lake.ErrInvalid)
		_, err = lk.Latest(ctx, bad)
		wantErr(t, "Latest("+bad+")", err, lake.ErrInvalid)
		_, err = lk.Resolve(ctx, bad, now)
		wantErr(t, "Resolve("+bad+")", err, lake.ErrInvalid)
		_, err = lk.Manifest(ctx, bad, id2)
		wantErr(t, "Manifest("+bad+")", err, lake.ErrInvalid)
		_, err = lk.GC(ctx, bad, lake.Policy{}, now)
		wantErr(t, "GC("+bad+")", err, lake.ErrInvalid)
		err = lk.WriteLedger(ctx, bad, "bigquery", id2, "load", "x")
		wantErr(t, "WriteLedger("+bad+")", err, lake.ErrInvalid)
		_, err = lk.Ledger(ctx, bad, "bigquery")
		wantErr(t, "Ledger("+bad+")", err, lake.ErrInvalid)
		m := *good
		m.Tenant = bad
		wantErr(t, "Validate of a manifest for "+bad, m.Validate(), lake.ErrInvalid)
		wantErr(t, "Commit of a manifest for "+bad, s.Commit(ctx, &m), lake.ErrInvalid)
	}
	for _, bad := range hostileNames {
		_, err := s.CreatePart(ctx, bad, 0)
		wantErr(t, "CreatePart(table "+bad+")", err, lake.ErrInvalid)
		err = lk.WriteLedger(ctx, "acme", bad, id2, "load", "x")
		wantErr(t, "WriteLedger(target "+bad+")", err, lake.ErrInvalid)
		err = lk.WriteLedger(ctx, "acme", "bigquery", id2, bad, "x")
		wantErr(t, "WriteLedger(load id "+bad+")", err, lake.ErrInvalid)
		_, err = lk.Ledger(ctx, "acme", bad)
		wantErr(t, "Ledger(target "+bad+")", err, lake.ErrInvalid)
		m := *good
		m.Tables = []lake.Table{good.Tables[0]}
		m.Tables[0].Name = bad
		wantErr(t, "Commit of a table named "+bad, s.Commit(ctx, &m), lake.ErrInvalid)
	}
	for _, bad := range []string{"../x", "", "20261121T020304.123", "20261121T020304Z", "2026-11-21T02:03:04.123Z", id2 + "/..", "../" + id2} {
		_, err := lk.NewSnapshot(ctx, "acme", bad)
		wantErr(t, "NewSnapshot(id "+bad+")", err, lake.ErrInvalid)
		_, err = lk.Manifest(ctx, "acme", bad)
		wantErr(t, "Manifest(id "+bad+")", err, lake.ErrInvalid)
		err = lk.WriteLedger(ctx, "acme", "bigquery", bad, "load", "x")
		wantErr(t, "WriteLedger(id "+bad+")", err, lake.ErrInvalid)
	}
	_, err := s.CreatePart(ctx, "orders", -1)
	wantErr(t, "CreatePart(-1)", err, lake.ErrInvalid)
	// A bad file path in a manifest: outside its table, or its snapshot.
	for _, path := range []string{
		lake.PartKey("acme", id2, "other", 0),
		lake.PartKey("beta", id2, tables[0], 0),
		lake.SnapshotPrefix("acme", id2) + "table=" + tables[0] + "/../../x",
		"../" + good.Tables[0].Files[0].Path,
	} {
		m := *good
		m.Tables = []lake.Table{good.Tables[0]}
		m.Tables[0].Files = []lake.File{good.Tables[0].Files[0]}
		m.Tables[0].Files[0].Path = path
		wantErr(t, "Commit of a file at "+path, s.Commit(ctx, &m), lake.ErrInvalid)
	}
	// Everything in the bucket is the one honest snapshot's claim and part.
	want := sortedCopy([]string{f.Root + lake.ClaimKey("acme", id2), f.Root + good.Tables[0].Files[0].Path})
	equal(t, "objects in the whole bucket after hostile calls", f.Keys(t), want)
}

// testCommitExpires: a read commits within MaxReadDuration of its id's time
// or not at all, by the lake's clock; a refused commit writes nothing.
func testCommitExpires(t *testing.T, f Fixture) {
	ctx := context.Background()
	start, _ := lake.ParseSnapshotID(id2)
	var now time.Time
	lk := f.Lake.WithClock(func() time.Time { return now })
	now = start
	s, err := lk.NewSnapshot(ctx, "acme", id2)
	if err != nil {
		t.Fatal(err)
	}
	m := writeTables(t, s, "acme", id2, tables[:1])
	now = start.Add(lake.MaxReadDuration)
	err = s.Commit(ctx, m)
	wantErr(t, "Commit MaxReadDuration after the id", err, lake.ErrExpired)
	if err != nil && !strings.Contains(err.Error(), "acme/"+id2) {
		t.Errorf("expired Commit: %v; want it to name the snapshot", err)
	}
	if keys := keysUnder(t, f, lake.ManifestKey("acme", id2)); len(keys) != 0 {
		t.Errorf("an expired commit wrote %v", keys)
	}
	equal(t, "Snapshots after an expired commit", snapshotIDs(t, f.Lake, "acme"), []string{})
	now = start.Add(lake.MaxReadDuration - time.Millisecond)
	if err := s.Commit(ctx, m); err != nil {
		t.Errorf("Commit a millisecond within MaxReadDuration: %v", err)
	}
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{id2})
	// A read may not even start a snapshot whose id is that old.
	before := f.Keys(t)
	now, _ = lake.ParseSnapshotID(id3)
	now = now.Add(lake.MaxReadDuration)
	_, err = lk.NewSnapshot(ctx, "acme", id3)
	wantErr(t, "NewSnapshot of an expired id", err, lake.ErrExpired)
	equal(t, "objects after NewSnapshot of an expired id", f.Keys(t), before)
}

// testOrphanGrace: an orphan is swept by its id's age, never by its
// objects' times, and only with a grace of at least MinOrphanGrace.
func testOrphanGrace(t *testing.T, f Fixture) {
	ctx := context.Background()
	WriteSnapshot(t, f.Lake, "acme", id1, tables[:1])
	late, m := StartSnapshot(t, f.Lake, "acme", id2, tables[:1]) // its objects are new, its id is old
	before := f.Keys(t)
	for _, g := range []time.Duration{-time.Hour, time.Nanosecond, time.Minute, lake.MaxReadDuration, lake.MinOrphanGrace - time.Nanosecond} {
		_, err := f.Lake.GC(ctx, "acme", lake.Policy{OrphanGrace: g}, time.Now())
		wantErr(t, fmt.Sprintf("GC with grace %s", g), err, lake.ErrInvalid)
		_, err = f.Lake.GCAll(ctx, lake.Policy{OrphanGrace: g}, time.Now())
		wantErr(t, fmt.Sprintf("GCAll with grace %s", g), err, lake.ErrInvalid)
	}
	equal(t, "objects after refused GCs", f.Keys(t), before)
	at, _ := lake.ParseSnapshotID(id2)
	p := lake.Policy{OrphanGrace: lake.MinOrphanGrace}
	rep, err := f.Lake.GC(ctx, "acme", p, at.Add(lake.MinOrphanGrace-time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept a millisecond within the grace", rep.SweptOrphans, []string{})
	rep, err = f.Lake.GC(ctx, "acme", lake.Policy{}, at.Add(lake.DefaultOrphanGrace-time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept within the default grace", rep.SweptOrphans, []string{})
	rep, err = f.Lake.GC(ctx, "acme", p, at.Add(lake.MinOrphanGrace))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept once the id is as old as the grace", rep.SweptOrphans, []string{id2})
	seal := []string{f.Root + lake.ManifestKey("acme", id2)}
	equal(t, "objects of the swept orphan: the seal", keysUnder(t, f, lake.SnapshotPrefix("acme", id2)), seal)
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{id1})
	equal(t, "Tenants", tenants(t, f.Lake), []string{"acme"})
	_, err = f.Lake.Manifest(ctx, "acme", id2)
	wantErr(t, "Manifest of a sealed snapshot", err, lake.ErrNotFound)
	// A read whose own clock still says it may commit (a skewed clock)
	// cannot: the seal took the manifest's place.
	err = late.Commit(ctx, m)
	wantErr(t, "Commit of a sealed snapshot", err, lake.ErrExpired)
	equal(t, "objects after a late commit", keysUnder(t, f, lake.SnapshotPrefix("acme", id2)), seal)
	rep, err = f.Lake.GC(ctx, "acme", p, at.Add(lake.MinOrphanGrace+lake.SealKeep-time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept again within SealKeep", rep.SweptOrphans, []string{})
	equal(t, "the seal within SealKeep", keysUnder(t, f, lake.SnapshotPrefix("acme", id2)), seal)
	rep, err = f.Lake.GC(ctx, "acme", p, at.Add(lake.MinOrphanGrace+lake.SealKeep))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "swept after SealKeep", rep.SweptOrphans, []string{id2})
	equal(t, "objects after SealKeep", keysUnder(t, f, lake.SnapshotPrefix("acme", id2)), []string(nil))
}

// testGCKeepsLive: a snapshot that a target's newest ledger record says is
// live survives retention (reported as protected) unless forced.
func testGCKeepsLive(t *testing.T, f Fixture) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
	ids := days(now, 4, 3, 2, 1) // oldest first
	for _, id := range ids {
		WriteSnapshot(t, f.Lake, "acme", id, tables[:1])
	}
	type rec struct {
		Outcome    string    `json:"outcome"`
		Live       string    `json:"live,omitempty"`
		LoadID     string    `json:"load_id"`
		FinishedAt time.Time `json:"finished_at"`
	}
	write := func(target, id, load string, finished time.Time, live string) {
		t.Helper()
		if err := f.Lake.WriteLedger(ctx, "acme", target, id, load, rec{"loaded", live, load, finished}); err != nil {
			t.Fatal(err)
		}
	}
	// warehouse: ids[3] loaded, then a replay of ids[0] (its record sorts
	// first by key, but is the newest by time).
	write("warehouse", ids[3], "load_2", now.Add(-time.Hour), ids[3])
	write("warehouse", ids[0], "load_3", now.Add(-time.Minute), ids[0])
	// bq: ids[1] was live once; ids[2] is live now, then a failed load of
	// ids[3] still says ids[2].
	write("bq", ids[1], "load_1", now.Add(-48*time.Hour), ids[1])
	write("bq", ids[2], "load_2", now.Add(-24*time.Hour), ids[2])
	write("bq", ids[3], "load_4", now.Add(-30*time.Minute), ids[2])
	rep, err := f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "kept", rep.Kept, []string{ids[3], ids[2], ids[0]})
	equal(t, "protected", rep.Protected, []lake.Protected{{SnapshotID: ids[2], Targets: []string{"bq"}}, {SnapshotID: ids[0], Targets: []string{"warehouse"}}})
	equal(t, "deleted", rep.DeletedSnapshots, []string{ids[1]})
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{ids[3], ids[2], ids[0]})
	rep, err = f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1, Force: true, DryRun: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "forced: deleted", rep.DeletedSnapshots, []string{ids[2], ids[0]})
	equal(t, "forced: protected", rep.Protected, []lake.Protected{{SnapshotID: ids[2], Targets: []string{"bq"}, Forced: true}, {SnapshotID: ids[0], Targets: []string{"warehouse"}, Forced: true}})
	// A ledger record GC cannot read stops it before it deletes anything.
	if err := f.Lake.WriteLedger(ctx, "acme", "bq", ids[3], "load_5", "not an outcome"); err != nil {
		t.Fatal(err)
	}
	_, err = f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1, Force: true}, now)
	wantErr(t, "GC with an unreadable ledger record", err, lake.ErrInvalid)
	equal(t, "Snapshots after a GC stopped by the ledger", snapshotIDs(t, f.Lake, "acme"), []string{ids[3], ids[2], ids[0]})
}

// testTamperedParts: a committed part overwritten with another snapshot's
// part of the same size, or with one byte of its Parquet footer flipped, is
// refused by OpenPart and StreamPart with ErrCorrupt naming the part.
func testTamperedParts(t *testing.T, f Fixture) {
	ctx := context.Background()
	// Two snapshots whose parts have the same size and different bytes.
	m1 := WriteSnapshot(t, f.Lake, "acme", id1, tables[:1])
	m2 := WriteSnapshot(t, f.Lake, "acme", id2, tables[:1])
	file1, file2 := m1.Tables[0].Files[0], m2.Tables[0].Files[0]
	if file1.Bytes != file2.Bytes || file1.SHA256 == file2.SHA256 {
		t.Fatalf("parts %+v and %+v: want the same size, other bytes", file1, file2)
	}
	data2 := PartBytes("acme", id2, tables[0], 0)
	for _, c := range []struct {
		what string
		data []byte
	}{
		{"another snapshot's part of the same size", PartBytes("acme", id1, tables[0], 0)},
		{"a flipped byte in the footer", flipNearEnd(data2)},
	} {
		f.Overwrite(t, file2.Path, c.data)
		_, err := f.Lake.OpenPart(ctx, file2)
		wantCorrupt(t, "OpenPart of "+c.what, err, file2.Path)
		s, err := f.Lake.StreamPart(ctx, file2)
		if err != nil {
			t.Fatalf("StreamPart of %s: %v", c.what, err)
		}
		got, err := io.ReadAll(s)
		wantCorrupt(t, "StreamPart of "+c.what, err, file2.Path)
		if len(got) != len(c.data) {
			t.Errorf("StreamPart of %s: read %d bytes before failing, want all %d", c.what, len(got), len(c.data))
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		wantCorrupt(t, "Verify of "+c.what, f.Lake.Verify(ctx, file2), file2.Path)
	}
	// Untouched parts open, stream and read back exactly.
	r, err := f.Lake.OpenPart(ctx, file1)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || string(all) != string(PartBytes("acme", id1, tables[0], 0)) {
		t.Errorf("OpenPart of an untouched part read %q, %v", all, err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	s, err := f.Lake.StreamPart(ctx, file1)
	if err != nil {
		t.Fatal(err)
	}
	all, err = io.ReadAll(s)
	if err != nil || string(all) != string(PartBytes("acme", id1, tables[0], 0)) {
		t.Errorf("StreamPart of an untouched part read %q, %v", all, err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	// A path that is no part key never reaches the bucket.
	for _, path := range []string{"../x", lake.ManifestKey("acme", id1), file1.Path + "/..", "tenant=acme/snapshot=" + id1 + "/table=orders/part-1.parquet"} {
		bad := file1
		bad.Path = path
		_, err := f.Lake.OpenPart(ctx, bad)
		wantErr(t, "OpenPart("+path+")", err, lake.ErrInvalid)
		_, err = f.Lake.StreamPart(ctx, bad)
		wantErr(t, "StreamPart("+path+")", err, lake.ErrInvalid)
		wantErr(t, "CheckStored("+path+")", f.Lake.CheckStored(ctx, bad), lake.ErrInvalid)
	}
}

// flipNearEnd returns data with one bit flipped in its last bytes, where a
// Parquet file keeps its footer.
func flipNearEnd(data []byte) []byte {
	c := append([]byte{}, data...)
	c[len(c)-3] ^= 0x10
	return c
}

func wantCorrupt(t *testing.T, what string, err error, path string) {
	t.Helper()
	wantErr(t, what, err, lake.ErrCorrupt)
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("%s: %v; want it to name %s", what, err, path)
	}
}

// testCheckStored: on GCS, CheckStored compares the CRC-32C that GCS stores
// with the one the manifest recorded, without downloading the part; on other
// lakes it reads the part. A mismatch is ErrCorrupt either way.
func testCheckStored(t *testing.T, f Fixture) {
	ctx := context.Background()
	m := WriteSnapshot(t, f.Lake, "acme", id2, tables[:1], 2)
	good, victim := m.Tables[0].Files[0], m.Tables[0].Files[1]
	if len(good.CRC32C) != 8 {
		t.Fatalf("part %s: crc32c %q, want 8 hex digits", good.Path, good.CRC32C)
	}
	before := len(requests(f))
	if err := f.Lake.CheckStored(ctx, good); err != nil {
		t.Errorf("CheckStored of an untouched part: %v", err)
	}
	data := PartBytes("acme", id2, tables[0], 1)
	f.Overwrite(t, victim.Path, flipNearEnd(data))
	wantCorrupt(t, "CheckStored of a part with a flipped bit", f.Lake.CheckStored(ctx, victim), victim.Path)
	if f.Requests != nil {
		for _, r := range requests(f)[before:] {
			if len(r.Query["alt"]) > 0 && r.Query["alt"][0] == "media" {
				t.Errorf("CheckStored on GCS downloaded %s", r.Path)
			}
		}
	}
	// A manifest written before CRC-32C were recorded: the part is read.
	old := victim
	old.CRC32C = ""
	wantCorrupt(t, "CheckStored without a recorded crc32c", f.Lake.CheckStored(ctx, old), victim.Path)
	f.Overwrite(t, victim.Path, data)
	if err := f.Lake.CheckStored(ctx, old); err != nil {
		t.Errorf("CheckStored without a recorded crc32c, part restored: %v", err)
	}
	wrongCRC := good
	wrongCRC.CRC32C = "00000000"
	if f.Requests != nil {
		wantCorrupt(t, "CheckStored with another crc32c", f.Lake.CheckStored(ctx, wrongCRC), good.Path)
	}
	longer := good
	longer.Bytes++
	wantCorrupt(t, "CheckStored with another size", f.Lake.CheckStored(ctx, longer), good.Path)
	gone := good
	gone.Path = lake.PartKey("acme", id2, tables[0], 9)
	wantErr(t, "CheckStored of a missing part", f.Lake.CheckStored(ctx, gone), lake.ErrNotFound)
}

// testClaimSnapshot: two reads that start in the same millisecond get two
// snapshots, the second the next free millisecond; neither writes into the
// other's.
func testClaimSnapshot(t *testing.T, f Fixture) {
	ctx := context.Background()
	start, _ := lake.ParseSnapshotID(id2)
	lk := f.Lake.WithClock(func() time.Time { return start.Add(time.Second) })
	first, err := lk.ClaimSnapshot(ctx, "acme", start.Add(400*time.Microsecond))
	if err != nil || first.ID() != id2 {
		t.Fatalf("first ClaimSnapshot: %v, %v; want %s", first, err, id2)
	}
	_, err = lk.NewSnapshot(ctx, "acme", id2)
	wantErr(t, "NewSnapshot of the same id", err, lake.ErrExists)
	second, err := f.Other(t).WithClock(func() time.Time { return start.Add(time.Second) }).ClaimSnapshot(ctx, "acme", start)
	next := lake.SnapshotID(start.Add(time.Millisecond))
	if err != nil || second.ID() != next {
		t.Fatalf("second ClaimSnapshot in the same millisecond: %v, %v; want %s", second, err, next)
	}
	m1 := writeTables(t, first, "acme", id2, tables[:1])
	m2 := writeTables(t, second, "acme", next, tables[:1])
	for _, c := range []struct {
		s *lake.Snapshot
		m *lake.Manifest
	}{{first, m1}, {second, m2}} {
		if err := c.s.Commit(ctx, c.m); err != nil {
			t.Fatal(err)
		}
		verifyAll(t, f.Lake, c.m)
	}
	equal(t, "Snapshots", snapshotIDs(t, f.Lake, "acme"), []string{next, id2})
}

// testReadsAndSweepsRace runs many reads (claim, several parts over two
// tables, commit) and sweeps of the same tenant at once, on a shared virtual
// clock that every step of a read advances, so reads routinely run past
// MaxReadDuration and sweeps see their ids older than the grace while they
// still write. Whatever the interleaving, every committed snapshot must be
// listed, complete and verified; nothing listed may miss a part.
func testReadsAndSweepsRace(t *testing.T, f Fixture) {
	ctx := context.Background()
	base := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // virtual nanoseconds since base
	now := func() time.Time { return base.Add(time.Duration(clock.Load())) }
	advance := func(rng *rand.Rand) { clock.Add(int64(time.Duration(rng.IntN(9)) * time.Minute)) }
	const readers, reads, sweepers = 6, 12, 2
	var (
		mu        sync.Mutex
		committed = map[string]*lake.Manifest{}
		expired   int
		wg        sync.WaitGroup
		errs      = make(chan error, readers+sweepers)
		done      atomic.Bool
		swept     atomic.Int64
	)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			lk := f.Other(t).WithClock(now)
			for range reads {
				id := lake.SnapshotID(now())
				s, err := lk.NewSnapshot(ctx, "acme", id)
				for errors.Is(err, lake.ErrExists) { // another read took this millisecond
					t0, _ := lake.ParseSnapshotID(id)
					id = lake.SnapshotID(t0.Add(time.Millisecond))
					s, err = lk.NewSnapshot(ctx, "acme", id)
				}
				if errors.Is(err, lake.ErrExpired) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				m, err := racePartsAndCommit(ctx, s, id, rng, advance)
				switch {
				case errors.Is(err, lake.ErrExpired):
					mu.Lock()
					expired++
					mu.Unlock()
				case err != nil:
					errs <- err
					return
				case m != nil:
					mu.Lock()
					committed[id] = m
					mu.Unlock()
				}
			}
		}()
	}
	var sw sync.WaitGroup
	for range sweepers {
		sw.Add(1)
		go func() {
			defer sw.Done()
			lk := f.Other(t)
			for !done.Load() {
				rep, err := lk.GC(ctx, "acme", lake.Policy{OrphanGrace: lake.MinOrphanGrace}, now())
				if err != nil {
					errs <- err
					return
				}
				swept.Add(int64(len(rep.SweptOrphans)))
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	sw.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A last sweep, long after every read and past SealKeep: only committed
	// snapshots remain.
	rep, err := f.Lake.GC(ctx, "acme", lake.Policy{OrphanGrace: lake.MinOrphanGrace}, now().Add(lake.MinOrphanGrace+lake.SealKeep))
	if err != nil {
		t.Fatal(err)
	}
	swept.Add(int64(len(rep.SweptOrphans)))
	listed := snapshotIDs(t, f.Lake, "acme")
	t.Logf("%d committed, %d commits refused as expired, %d orphans swept, %d listed", len(committed), expired, swept.Load(), len(listed))
	if len(listed) != len(committed) {
		t.Errorf("%d snapshots listed, %d committed", len(listed), len(committed))
	}
	for _, id := range listed {
		want := committed[id]
		if want == nil {
			t.Errorf("snapshot %s is listed but its commit did not succeed", id)
			continue
		}
		equal(t, "manifest "+id, mustManifest(t, f.Lake, "acme", id), want)
		verifyAll(t, f.Lake, want)
	}
	for _, k := range f.Keys(t) {
		k = strings.TrimPrefix(k, f.Root)
		if id, _, _ := strings.Cut(strings.TrimPrefix(k, "tenant=acme/snapshot="), "/"); committed[id] == nil {
			t.Errorf("object %s left by an uncommitted read after the last sweep", k)
		}
	}
}

// racePartsAndCommit writes two tables of one to three parts each to s,
// advancing the virtual clock before each part, and commits; one read in
// eight crashes instead (returns nil, nil without committing).
func racePartsAndCommit(ctx context.Context, s *lake.Snapshot, id string, rng *rand.Rand, advance func(*rand.Rand)) (*lake.Manifest, error) {
	start, _ := lake.ParseSnapshotID(id)
	m := &lake.Manifest{FormatVersion: lake.FormatVersion, Tenant: "acme", SnapshotID: id, StartedAt: start, CommittedAt: start, ToolVersion: "race"}
	for _, table := range []string{"orders", "items"} {
		tab := lake.Table{Source: "public." + table, Name: table,
			Columns: []lake.Column{{Source: "id", Name: "id", SourceType: "bigint", ParquetType: "INT64", BigQueryType: "INT64"}}}
		for n := range 1 + rng.IntN(3) {
			advance(rng)
			p, err := s.CreatePart(ctx, table, n)
			if err != nil {
				return nil, err
			}
			if _, err := p.Write(PartBytes("acme", id, table, n)); err != nil {
				return nil, err
			}
			p.SetRows(1)
			if err := p.Close(); err != nil {
				return nil, err
			}
			tab.Files = append(tab.Files, p.File())
			tab.Rows++
		}
		m.Tables = append(m.Tables, tab)
	}
	if rng.IntN(8) == 0 {
		return nil, nil
	}
	advance(rng)
	if err := s.Commit(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}
