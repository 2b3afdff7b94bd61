package laketest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
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
	wantKeys = append(wantKeys, f.Root+lake.ManifestKey("acme", id2))
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
	_, err = f.Lake.Manifest(ctx, "acme", id3)
	wantErr(t, "Manifest of uncommitted acme snapshot", err, lake.ErrNotFound)
	_, err = f.Lake.Manifest(ctx, "ghost", id1)
	wantErr(t, "Manifest of uncommitted ghost snapshot", err, lake.ErrNotFound)
	equal(t, "committed manifest", mustManifest(t, f.Lake, "acme", id2), committed)
}

func testSecondCommitExists(t *testing.T, f Fixture) {
	ctx := context.Background()
	first := WriteParts(t, f.Lake, "acme", id2, tables)
	late, err := f.Lake.NewSnapshot(ctx, "acme", id2) // started before the first commit
	if err != nil {
		t.Fatal(err)
	}
	commit(t, f.Lake, first)
	second := *first
	second.ToolVersion = "second"
	err = late.Commit(ctx, &second)
	wantErr(t, "second Commit", err, lake.ErrExists)
	equal(t, "manifest after a second commit", mustManifest(t, f.Lake, "acme", id2), first)
	_, err = f.Lake.NewSnapshot(ctx, "acme", id2)
	wantErr(t, "NewSnapshot of a committed snapshot", err, lake.ErrExists)
}

func testConcurrentCommits(t *testing.T, f Fixture) {
	ctx := context.Background()
	base := WriteParts(t, f.Lake, "acme", id2, tables)
	const racers = 8
	var (
		start  sync.WaitGroup
		done   sync.WaitGroup
		errs   [racers]error
		snaps  [racers]*lake.Snapshot
		mans   [racers]*lake.Manifest
		ready  = make(chan struct{})
		others [racers]*lake.Lake
	)
	for i := range racers {
		others[i] = f.Other(t)
		s, err := others[i].NewSnapshot(ctx, "acme", id2)
		if err != nil {
			t.Fatal(err)
		}
		m := *base
		m.ToolVersion = "racer " + string(rune('a'+i))
		snaps[i], mans[i] = s, &m
	}
	for i := range racers {
		start.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			start.Done()
			<-ready
			errs[i] = snaps[i].Commit(ctx, mans[i])
		}()
	}
	start.Wait()
	close(ready)
	done.Wait()
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
		if want := len(tables) + racers; uploads != want {
			t.Errorf("the fake GCS saw %d uploads, want %d", uploads, want)
		}
	}
}

func testSecondCreatePart(t *testing.T, f Fixture) {
	ctx := context.Background()
	m := WriteParts(t, f.Lake, "acme", id2, tables[:1])
	s, err := f.Lake.NewSnapshot(ctx, "acme", id2)
	if err != nil {
		t.Fatal(err)
	}
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
	m := WriteParts(t, f.Lake, "acme", id2, tables[:1])
	s, err := f.Lake.NewSnapshot(ctx, "acme", id2)
	if err != nil {
		t.Fatal(err)
	}
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
	s, err := f.Lake.NewSnapshot(context.Background(), "acme", id2)
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
	if keys := f.Keys(t); len(keys) != 0 {
		t.Errorf("a cancelled upload left %v", keys)
	}
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
			if rep.DeletedObjects != 5*len(deleted) || rep.DryRun || rep.Tenant != tenant {
				t.Errorf("report %+v: want %d objects deleted for real", rep, 5*len(deleted))
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
		if len(order) != 5 || !strings.HasSuffix(order[0], lake.ManifestKey(tenant, id)) {
			t.Errorf("DELETE requests for snapshot %s: %v; want the manifest first, then 4 parts", id, order)
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
	if !rep.DryRun || rep.DeletedObjects != 5 {
		t.Errorf("dry run report %+v: want DryRun and 5 objects", rep)
	}
	equal(t, "objects after a dry run", f.Keys(t), before)
}

// testCrashedRead is the crash test: a read wrote parts and died before its
// manifest. Its parts are invisible, kept during the grace period (a read may
// still be running), and swept after it; the committed snapshot beside them
// is untouched. A tenant whose only snapshot crashed is swept by GCAll.
func testCrashedRead(t *testing.T, f Fixture) {
	ctx := context.Background()
	good := WriteSnapshot(t, f.Lake, "acme", id2, tables, 2, 1, 1)
	WriteParts(t, f.Lake, "acme", id3, tables, 3, 1, 1) // crashed: no manifest
	WriteParts(t, f.Lake, "ghost", id1, tables)         // a first read that crashed
	goodKeys := keysUnder(t, f, lake.SnapshotPrefix("acme", id2))
	crashed := keysUnder(t, f, lake.SnapshotPrefix("acme", id3))
	if len(crashed) != 5 {
		t.Fatalf("crashed read left %v, want 5 parts", crashed)
	}
	equal(t, "Snapshots with a crashed read", snapshotIDs(t, f.Lake, "acme"), []string{id2})
	equal(t, "Tenants with a crashed read", tenants(t, f.Lake), []string{"acme"})

	const grace = time.Hour
	p := lake.Policy{KeepLast: 1, OrphanGrace: grace}
	written := time.Now()
	rep, err := f.Lake.GC(ctx, "acme", p, written.Add(grace/2))
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
	if rep.DeletedObjects != 5 {
		t.Errorf("deleted %d objects, want 5", rep.DeletedObjects)
	}
	equal(t, "crashed parts after the grace period", keysUnder(t, f, lake.SnapshotPrefix("acme", id3)), []string(nil))
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
	if keys := keysUnder(t, f, "tenant=ghost/"); len(keys) != 0 {
		t.Errorf("GCAll left %v", keys)
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
	good := WriteParts(t, lk, "acme", id2, tables[:1])
	s, err := lk.NewSnapshot(ctx, "acme", id2)
	if err != nil {
		t.Fatal(err)
	}
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
	_, err = s.CreatePart(ctx, "orders", -1)
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
	// Everything in the bucket is the one honest snapshot's part.
	want := []string{f.Root + good.Tables[0].Files[0].Path}
	equal(t, "objects in the whole bucket after hostile calls", f.Keys(t), want)
}
