// Package changes computes the change rows a write strategy appends to a
// target's change tables (the target option changes=true): for each table of
// a tenant, "<table>_changes" gets one row per row inserted, deleted or
// updated when a load replaces the live snapshot, computed from the lake
// alone by package diff, from the snapshot live before the load to the one it
// makes live. Analysts so get a daily change history without change data
// capture on the source.
//
// # The change table
//
// Both targets give it the same columns, in this order (Columns):
//
//	load_id               the load that made the change live
//	previous_snapshot_id  the snapshot live before it
//	snapshot_id           the snapshot it made live
//	snapshot_time         snapshot_id's time (when the source was read)
//	operation             insert, delete or update
//	key                   the primary key's columns, as a JSON object (NULL for a table without one)
//	row_before            the whole row before (NULL for an insert), as a JSON object
//	row_after             the whole row after (NULL for a delete), as a JSON object
//
// Rows are rendered as JSON by package diff's rules: integers, booleans and
// finite floats as JSON values, JSON columns as their JSON, everything else
// (decimals exactly, text, bytes as \x hex, dates and times) as strings, so
// no value is rounded. The JSON columns are json in PostgreSQL (the text kept
// as written) and STRING in BigQuery (PARSE_JSON them in a query), so the
// table's columns never change when the source table's do.
//
// What counts as a change is package diff's: rows matched by primary key
// (a changed key is a delete and an insert), tables without one as a
// multiset of whole rows; a column added or dropped is not an update of
// every row (the new column shows in the following changes' rows). A table
// added to the snapshot has every row inserted, a table dropped every row
// deleted; a replay of an older snapshot records the changes back to it.
//
// # What is not recorded
//
// The first load of a tenant into a target has nothing to compare with and
// records no change rows (the live tables are the baseline). Nor does a
// load whose previous live snapshot is no longer in the lake (retention
// deleted it): its outcome says so. The change tables of a load that does
// not make its snapshot live (quarantined, failed, stale) are not changed.
package changes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/lake"
)

// Suffix ends the name of a table's change table.
const Suffix = "_changes"

// Columns are the change table's columns, in order.
var Columns = []string{"load_id", "previous_snapshot_id", "snapshot_id", "snapshot_time", "operation", "key", "row_before", "row_after"}

// Row is one row of a change table. Key, Before and After are JSON objects,
// or nil for SQL NULL.
type Row struct {
	LoadID       string
	Previous     string
	Snapshot     string
	SnapshotTime time.Time
	Operation    string // diff.OpInsert, diff.OpDelete or diff.OpUpdate
	Key          []byte
	Before       []byte
	After        []byte
}

// TableName is the change table of table: table+Suffix, or, when that is
// longer than maxLen bytes (PostgreSQL allows 63), table cut, a hash of the
// whole name and Suffix, so two long names never share a change table.
func TableName(table string, maxLen int) string {
	if len(table)+len(Suffix) <= maxLen {
		return table + Suffix
	}
	h := sha256.Sum256([]byte(table))
	tail := "_" + hex.EncodeToString(h[:4]) + Suffix
	return table[:maxLen-len(tail)] + tail
}

// Check refuses a snapshot that has a table with the name of one of its
// tables' change tables, or two tables with one change table: the two would
// be one table in the target.
func Check(m *lake.Manifest, maxLen int) error {
	owner := map[string]string{}
	for _, t := range m.Tables {
		c := TableName(t.Name, maxLen)
		if m.Table(c) != nil {
			return fmt.Errorf("%w: snapshot %s of tenant %s has a table %s, the name of table %s's change table: switch off changes for this target, or rename one of the tables", lake.ErrInvalid, m.SnapshotID, m.Tenant, c, t.Name)
		}
		if o, ok := owner[c]; ok {
			return fmt.Errorf("%w: snapshot %s of tenant %s has tables %s and %s, whose change tables are both named %s: switch off changes for this target, or rename one of the tables", lake.ErrInvalid, m.SnapshotID, m.Tenant, o, t.Name, c)
		}
		owner[c] = t.Name
	}
	return nil
}

// CheckBase refuses a snapshot m that has a table with the name of the
// change table of a table that base, the snapshot live before it, has and
// m drops: that change table gets the dropped table's deletes.
func CheckBase(base, m *lake.Manifest, maxLen int) error {
	for _, t := range base.Tables {
		if m.Table(t.Name) != nil {
			continue
		}
		if c := TableName(t.Name, maxLen); m.Table(c) != nil {
			return fmt.Errorf("%w: snapshot %s of tenant %s has a table %s, the name of the change table of table %s, which the live snapshot %s has and this one drops: switch off changes for this target, or rename the table", lake.ErrInvalid, m.SnapshotID, m.Tenant, c, t.Name, base.SnapshotID)
		}
	}
	return nil
}

// Base returns the manifest to compute a load's changes from: that of
// previous, the snapshot live before the load. It returns nil and a note
// (for writers.ChangeSummary.Note) when there is none to compare with: no snapshot was
// live (a first load), or the lake no longer holds it.
func Base(ctx context.Context, lk *lake.Lake, tenant, previous string) (*lake.Manifest, string, error) {
	if previous == "" {
		return nil, "first load of the tenant into this target: nothing to compare with, no change rows", nil
	}
	m, err := lk.Manifest(ctx, tenant, previous)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, "the previous live snapshot " + previous + " is no longer in the lake: no change rows", nil
	}
	if errors.Is(err, lake.ErrCorrupt) {
		return nil, "", corruptBase(previous, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("change rows: manifest of the previous live snapshot %s: %w", previous, err)
	}
	return m, "", nil
}

// Compute diffs snapshot from to snapshot to (package diff, spill files in
// the system's temporary folder) and calls emit with each change row, table
// by table, tables in diff's order: the tables named (nil: every table of
// either snapshot). loadID is the load that makes to live. An error emit
// returns stops Compute and is returned. A part of from that does not match
// its manifest fails Compute with an error naming from that does not wrap
// lake.ErrCorrupt (to's parts are verified when they are staged).
func Compute(ctx context.Context, lk *lake.Lake, from, to *lake.Manifest, tables []string, loadID string, emit func(table string, r Row) error) error {
	at, err := lake.ParseSnapshotID(to.SnapshotID)
	if err != nil {
		return err
	}
	_, err = diff.Snapshots(ctx, lk, from, to, diff.Options{Tables: tables, Rows: func(c diff.Change) error {
		r := Row{LoadID: loadID, Previous: from.SnapshotID, Snapshot: to.SnapshotID, SnapshotTime: at, Operation: c.Op}
		var err error
		if r.Key, err = rowJSON(c.Key); err != nil {
			return err
		}
		if r.Before, err = rowJSON(c.Before); err != nil {
			return err
		}
		if r.After, err = rowJSON(c.After); err != nil {
			return err
		}
		return emit(c.Table, r)
	}})
	if errors.Is(err, lake.ErrCorrupt) {
		// The writers verify to's parts while staging them, before the
		// change rows are computed: the corrupt part is from's. It is not
		// to's fault, so the error no longer matches lake.ErrCorrupt (which
		// quarantines to).
		return corruptBase(from.SnapshotID, err)
	}
	if err != nil {
		return fmt.Errorf("change rows from %s to %s: %w", from.SnapshotID, to.SnapshotID, err)
	}
	return nil
}

// corruptBase is the error of a load whose previous live snapshot does not
// match its manifest. It does not wrap lake.ErrCorrupt: the snapshot being
// loaded is sound, and must not be reported quarantined.
func corruptBase(previous string, err error) error {
	return fmt.Errorf("change rows: the previous live snapshot %s does not match its manifest (%v), so the changes from it cannot be computed: restore it, or switch off changes for this target to load without change rows", previous, err)
}

func rowJSON(r *diff.Row) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	return r.MarshalJSON()
}
