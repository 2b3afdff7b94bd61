package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// ReplayRequest asks to reload a tenant from a stored snapshot: the Replay
// function's JSON body and `tenantlake replay`'s flags. Exactly one of At
// and Snapshot is given.
type ReplayRequest struct {
	Tenant   string   `json:"tenant"`
	At       string   `json:"at,omitempty"`       // RFC 3339, a date (end of that day, UTC) or a snapshot id
	Snapshot string   `json:"snapshot,omitempty"` // a snapshot id
	Tables   []string `json:"tables,omitempty"`   // destination table names; empty: all
	Target   string   `json:"target,omitempty"`   // one configured target; empty: every target
	DryRun   bool     `json:"dry_run,omitempty"`
}

// ReplayPlan says what a replay loads where; Published says it was
// requested (false for a dry run).
type ReplayPlan struct {
	Tenant       string        `json:"tenant"`
	SnapshotID   string        `json:"snapshot_id"`
	SnapshotTime time.Time     `json:"snapshot_time"`
	Tables       []ReplayTable `json:"tables"`
	Targets      []string      `json:"targets"`
	RequestID    string        `json:"request_id,omitempty"`
	DryRun       bool          `json:"dry_run"`
	Published    bool          `json:"published"`
}

// ReplayTable is one table a replay loads.
type ReplayTable struct {
	Table  string `json:"table"`
	Source string `json:"source"`
	Rows   int64  `json:"rows"`
}

// Replay resolves req to a committed snapshot (the newest at or before At,
// or Snapshot), checks its tables and target, and, unless it is a dry run,
// publishes snapshot.committed with reason replay, which the targets' Load
// functions load like any snapshot (a replay replaces a newer live snapshot
// on purpose). Every problem with the request is an ErrRejected error saying
// what is wrong, and then nothing is published.
func (o *Ops) Replay(ctx context.Context, req ReplayRequest) (*ReplayPlan, error) {
	if err := tenant.ValidateID(req.Tenant); err != nil {
		return nil, rejected("tenant: %v", err)
	}
	if (req.At == "") == (req.Snapshot == "") {
		return nil, rejected("give exactly one of at and snapshot")
	}
	var targets []string
	switch {
	case req.Target != "":
		if _, ok := o.target(req.Target); !ok {
			return nil, rejected("target %.60q is not configured (targets: %s)", req.Target, strings.Join(o.targetNames(), ", "))
		}
		targets = []string{req.Target}
	case len(o.Targets) == 0:
		return nil, rejected("no targets are configured")
	default:
		targets = o.targetNames()
	}
	snaps, err := o.Lake.Snapshots(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, rejected("tenant %s has no snapshots in the lake", req.Tenant)
	}
	var id string
	if req.Snapshot != "" {
		if _, err := lake.ParseSnapshotID(req.Snapshot); err != nil {
			return nil, rejected("snapshot: %v", err)
		}
		id = req.Snapshot
	} else {
		at, err := lake.ParseAsOf(req.At)
		if err != nil {
			return nil, rejected("at: %v", err)
		}
		s, err := o.Lake.Resolve(ctx, req.Tenant, at)
		if errors.Is(err, lake.ErrNotFound) {
			return nil, rejected("tenant %s has no snapshot at or before %s (its first is %s)", req.Tenant, at.UTC().Format(time.RFC3339Nano), snaps[len(snaps)-1].SnapshotID)
		}
		if err != nil {
			return nil, err
		}
		id = s.SnapshotID
	}
	m, err := o.Lake.Manifest(ctx, req.Tenant, id)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, rejected("tenant %s has no committed snapshot %s", req.Tenant, id)
	}
	if err != nil {
		return nil, err
	}
	plan := &ReplayPlan{Tenant: req.Tenant, SnapshotID: id, Targets: targets, DryRun: req.DryRun, Tables: []ReplayTable{}}
	plan.SnapshotTime, _ = lake.ParseSnapshotID(id)
	seen := map[string]bool{}
	for _, name := range req.Tables {
		t := m.Table(name)
		if t == nil {
			return nil, rejected("snapshot %s of tenant %s has no table %.80q", id, req.Tenant, name)
		}
		if seen[name] {
			return nil, rejected("table %q is listed twice", name)
		}
		seen[name] = true
	}
	for _, t := range m.Tables {
		if len(req.Tables) == 0 || seen[t.Name] {
			plan.Tables = append(plan.Tables, ReplayTable{Table: t.Name, Source: t.Source, Rows: t.Rows})
		}
	}
	if len(req.Tables) > 0 {
		for _, name := range targets {
			if t, _ := o.target(name); strings.HasPrefix(t.URL, "postgres") {
				return nil, rejected("target %s (a PostgreSQL warehouse) loads whole snapshots only: leave tables out", name)
			}
		}
	}
	if req.DryRun {
		return plan, nil
	}
	plan.RequestID = newReplayID()
	tables := req.Tables
	if len(tables) > 0 {
		tables = slices.Clone(tables)
	}
	ev := &events.SnapshotCommitted{
		Tenant: req.Tenant, SnapshotID: id, ManifestURL: o.Lake.ManifestURL(req.Tenant, id),
		Reason: writers.ReasonReplay, Target: req.Target, Tables: tables, RequestID: plan.RequestID,
	}
	if o.Events == nil {
		return nil, errors.New("replay: no events publisher configured")
	}
	if err := o.publish(ctx, o.Topics.Snapshots, ev); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	plan.Published = true
	o.log().Info("replay requested", "tenant", req.Tenant, "snapshot", id, "target", req.Target, "request_id", plan.RequestID, "tables", len(plan.Tables))
	return plan, nil
}

func (o *Ops) targetNames() []string { return config.Config{Targets: o.Targets}.TargetNames() }

func (o *Ops) target(name string) (config.Target, bool) {
	return config.Config{Targets: o.Targets}.Target(name)
}

// newReplayID is a unique request id for one replay.
func newReplayID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return "replay-" + lake.SnapshotID(time.Now()) + "-" + hex.EncodeToString(b[:])
}
