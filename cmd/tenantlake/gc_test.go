package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/writers"
)

// TestGCFlagErrors: every bad gc flag is refused, naming the flag, before
// anything is deleted; a grace below lake.MinOrphanGrace is bad.
func TestGCFlagErrors(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--orphan-grace", "-1h"}, "--orphan-grace -1h0m0s: must be at least 1h0m0s"},
		{[]string{"--orphan-grace", "0s"}, "--orphan-grace 0s: must be at least 1h0m0s"},
		{[]string{"--orphan-grace", "59m"}, "--orphan-grace 59m0s"},
		{[]string{"--orphan-grace", "-1d"}, "--orphan-grace"},
		{[]string{"--orphan-grace", "soon"}, "--orphan-grace"},
		{[]string{"--keep-within", "-1h"}, "--keep-within -1h0m0s: must not be negative"},
		{[]string{"--keep-within", "3 weeks"}, "--keep-within"},
		{[]string{"--keep-last", "-1"}, "--keep-last -1: must not be negative"},
		{[]string{"--keep-last", "many"}, "--keep-last"},
	} {
		args := append([]string{"gc", "--lake", f.url, "--tenant", "acme"}, c.args...)
		_, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("tenantlake %s: %v, want an error naming %q", strings.Join(args[1:], " "), err, c.flag)
		}
	}
	var reps []lake.GCReport
	if err := json.Unmarshal([]byte(mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--orphan-grace", "36500d", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || len(reps[0].Kept) != 3 || len(reps[0].SweptOrphans) != 0 {
		t.Errorf("after refused gc runs: %+v, want everything still there", reps)
	}
}

// TestGCKeepsLiveSnapshots: gc --keep-last 1 after a replay keeps the
// snapshot that the warehouse's ledger says is live, and says so; --force
// deletes it.
func TestGCKeepsLiveSnapshots(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	l, err := lake.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, r := range []writers.Outcome{
		{Tenant: "acme", SnapshotID: acme3, Target: "warehouse", Outcome: writers.OutcomeLoaded, LoadID: "load_1", Live: acme3, FinishedAt: now.Add(-time.Hour)},
		{Tenant: "acme", SnapshotID: acme1, Target: "warehouse", Reason: writers.ReasonReplay, Outcome: writers.OutcomeLoaded, LoadID: "load_2", PreviousLive: acme3, Live: acme1, FinishedAt: now},
	} {
		if err := l.WriteLedger(ctx, "acme", "warehouse", r.SnapshotID, r.LoadID, r); err != nil {
			t.Fatalf("ledger record %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out := mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "1")
	if !strings.Contains(out, "acme: kept snapshot "+acme1+": it is live in warehouse") || !strings.Contains(out, "acme: deleted snapshot "+acme2) || strings.Contains(out, "deleted snapshot "+acme1) {
		t.Errorf("gc --keep-last 1 after a replay:\n%s\nwant %s kept as live in warehouse and %s deleted", out, acme1, acme2)
	}
	var reps []lake.GCReport
	if err := json.Unmarshal([]byte(mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "1", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || len(reps[0].Protected) != 1 || reps[0].Protected[0].SnapshotID != acme1 || strings.Join(reps[0].Kept, ",") != acme3+","+acme1 {
		t.Errorf("gc --json: %+v, want %s protected and kept", reps, acme1)
	}
	out = mustExecute(t, "gc", "--lake", f.url, "--tenant", "acme", "--keep-last", "1", "--force")
	if !strings.Contains(out, "acme: deleted snapshot "+acme1+" although it is live in warehouse (--force)") {
		t.Errorf("gc --force:\n%s\nwant %s deleted", out, acme1)
	}
	var snaps []ops.Summary
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "acme", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].SnapshotID != acme3 {
		t.Errorf("after gc --force: snapshots %+v, want only %s", snaps, acme3)
	}
}
