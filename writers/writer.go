// Package writers defines write strategies: each loads one committed lake
// snapshot into one target (a BigQuery project, a PostgreSQL warehouse),
// following DESIGN.md:
//
//  1. load every table into staging, with the schema from the manifest;
//  2. validate the staged tables against the manifest (row counts always;
//     column profiles and schema unless switched off);
//  3. promote, so analysts see the old snapshot or the new one, never a mix;
//     on a validation failure nothing is promoted (quarantined);
//  4. record what is live and write the ledger.
//
// Write strategies live in sub-packages (writers/bigquery, writers/postgres)
// and all pass the conformance suite in writers/writertest.
package writers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantlake/tenantlake/lake"
)

// Reasons for a load, as in the snapshots topic of DESIGN.md.
const (
	ReasonScheduled = "scheduled"
	ReasonManual    = "manual"
	ReasonReplay    = "replay"
)

// Outcomes of a load, as in the loads topic of DESIGN.md.
const (
	OutcomeLoaded      = "loaded"        // validated and promoted; the snapshot is live
	OutcomeQuarantined = "quarantined"   // validation failed; nothing promoted, staging kept
	OutcomeFailed      = "failed"        // an error stopped the load; nothing promoted
	OutcomeStale       = "skipped-stale" // a scheduled load older than the live snapshot
	OutcomeAlreadyLive = "already-live"  // the snapshot is already live (a redelivery)
)

// Request asks a write strategy to load one committed snapshot.
type Request struct {
	Tenant     string
	SnapshotID string
	Reason     string   // ReasonScheduled, ReasonManual or ReasonReplay
	Tables     []string // destination table names to load; empty means all
	RequestID  string   // for the ledger and logs
}

// Outcome is what a load did. It is written to the lake's ledger and the
// target's ledger table, and published on the loads topic.
type Outcome struct {
	Tenant       string        `json:"tenant"`
	SnapshotID   string        `json:"snapshot_id"`
	Target       string        `json:"target"`
	Reason       string        `json:"reason"`
	RequestID    string        `json:"request_id,omitempty"`
	LoadID       string        `json:"load_id"`
	Outcome      string        `json:"outcome"`
	Message      string        `json:"message,omitempty"`       // why, for anything but loaded
	PreviousLive string        `json:"previous_live,omitempty"` // the live snapshot before this load
	Live         string        `json:"live,omitempty"`          // the live snapshot after this load
	Tables       []TableResult `json:"tables"`
	// SourceChanges lists the destination tables and columns that hold
	// another source table or column than in the snapshot live before
	// (writers.SourceChanges): analysts' queries may mean something else now.
	SourceChanges []string `json:"source_changes,omitempty"`
	// AllTenantsStale lists, for a load that made its snapshot live, the
	// tables whose slice of the combined all-tenants table could not be
	// replaced, each with why: the tenant's live tables are the snapshot's,
	// its rows in those combined tables are still the previous snapshot's
	// (or missing) until its next load or a rebuild (RebuildAllTenants).
	AllTenantsStale []string `json:"all_tenants_stale,omitempty"`
	// Changes says what the load appended to the target's change tables
	// (package writers/changes), for a target that keeps them; nil for
	// one that does not, or a load that did not make its snapshot live.
	Changes    *ChangeSummary `json:"changes,omitempty"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
}

// ChangeSummary is what a load appended to the change tables.
type ChangeSummary struct {
	// From is the snapshot the changes were computed from (the previous
	// live one); empty when none were.
	From string `json:"from,omitempty"`
	// LoadID is the load whose promotion the change rows belong to (their
	// load_id): this load, or the load whose interrupted promotion of the
	// same snapshot this one completes.
	LoadID string `json:"load_id,omitempty"`
	// Rows counts the change rows appended per change table; a table
	// without changes is not listed.
	Rows map[string]int64 `json:"rows,omitempty"`
	// Note says why no change rows were recorded, when none were.
	Note string `json:"note,omitempty"`
}

// TableResult is one table's part of an Outcome.
type TableResult struct {
	Table      string   `json:"table"`
	SourceRows int64    `json:"source_rows"`    // rows read from the source (manifest)
	LakeRows   int64    `json:"lake_rows"`      // rows in the lake's parts (manifest files)
	TargetRows int64    `json:"target_rows"`    // rows counted in the staged table
	Checks     []Check  `json:"checks"`         // validation results
	Jobs       []string `json:"jobs,omitempty"` // job ids (BigQuery)
}

// Check is one validation check of one table.
type Check struct {
	Name     string `json:"name"` // "rows", "schema", "profile:<column>:<figure>"
	OK       bool   `json:"ok"`
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
}

// Writer is a write strategy bound to one target.
//
// Load loads req's snapshot from lk and returns what it did. It is idempotent:
// loading a snapshot that is already live returns OutcomeAlreadyLive and
// changes nothing; a scheduled or manual load of a snapshot older than the
// live one returns OutcomeStale; a replay replaces the live snapshot on
// purpose. A validation failure is not an error: it returns
// OutcomeQuarantined and leaves the live tables exactly as they were. An
// error means the load did not complete; the live tables are then unchanged
// and the load can be retried. Cancelling ctx stops the load with an error,
// leaving the previous snapshot live.
//
// Live returns the live snapshot id of tenant, or "" when none is live.
type Writer interface {
	Target() string
	Load(ctx context.Context, lk *lake.Lake, req Request) (*Outcome, error)
	Live(ctx context.Context, tenant string) (string, error)
	Close() error
}

// NewLoadID returns a unique id for one call of Load: "load_", the start
// time (sortable), then random hex; [a-z0-9_] only, so it fits lake keys,
// BigQuery labels and job ids.
func NewLoadID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	now := time.Now().UTC()
	return fmt.Sprintf("load_%s%06d_%s", now.Format("20060102t150405"), now.Nanosecond()/1000, hex.EncodeToString(b[:]))
}

// FailedChecks describes the failed checks of tables in one line ("" when
// every check passed), for an Outcome's message.
func FailedChecks(tables []TableResult) string {
	var failed []string
	for _, t := range tables {
		for _, c := range t.Checks {
			if !c.OK {
				failed = append(failed, fmt.Sprintf("%s %s: expected %s, got %s", t.Table, c.Name, c.Expected, c.Actual))
			}
		}
	}
	return strings.Join(failed, "; ")
}

// StillCommitted fails when snapshot id of tenant is no longer committed in
// lk: its manifest is gone (retention, gc, deletes the manifest first)
// since the load read it. A writer calls it right before the step that
// makes the snapshot live, so that a snapshot deleted while it was being
// loaded is not made live (a gc that deletes it between this check and
// that step, milliseconds later, is not caught).
func StillCommitted(ctx context.Context, lk *lake.Lake, tenant, id string) error {
	if _, err := lk.Manifest(ctx, tenant, id); err != nil {
		if errors.Is(err, lake.ErrNotFound) {
			return fmt.Errorf("snapshot %s of %s was deleted from the lake while it was being loaded (by gc?): nothing promoted", id, tenant)
		}
		return fmt.Errorf("check that snapshot %s of %s is still in the lake: %w", id, tenant, err)
	}
	return nil
}
