// Package diff compares two committed snapshots of one tenant from the lake
// alone: per table the rows inserted, deleted and updated, and the columns
// added, dropped or retyped. It never touches the tenant's database.
//
// # What is compared
//
// Tables are matched by destination name (the reader keeps a table's name
// across a tenant's snapshots). A table in only one snapshot is "added" (all
// its rows inserted) or "dropped" (all deleted). Columns are matched by
// destination name too: a column in only one snapshot is added or dropped,
// one whose source type, Parquet type or nullability differs is retyped.
//
// Rows are compared on the columns both snapshots have. When both snapshots
// give the table the same primary key, rows are matched by key: a key in only
// the newer snapshot is an insert, one in only the older a delete, one in both
// whose other columns differ an update (so a changed key is a delete and an
// insert). Otherwise (no primary key, or a primary key that changed) the table
// is compared as a multiset of whole rows: identical rows are counted, and a
// row that appears twice in the older snapshot and three times in the newer is
// one insert. An added or dropped column is reported once, in the table's
// columns, never as an update of every row.
//
// Values compare exactly: the bytes of their Parquet encoding (floats bit for
// bit, NULL never equal to a value, NULL and an empty string distinct). A
// retyped column compares values by their canonical text (docs/types.md), so
// integer 5 and bigint 5 are one value, as are numeric 1.50 and 1.500.
//
// # Memory
//
// A small table (a few MiB encoded) is compared in memory. A larger one is
// streamed once per side, both sides at once, into spill files,
// hash-partitioned by key (or by whole row) into partitions of about 4 MiB,
// which are compared one at a time; a partition larger than
// Options.MemoryBytes (many duplicate rows, skewed keys) is partitioned again
// by another hash. So memory stays bounded, whatever the tables' sizes, by a
// partition, a row group of each side and the spill files' write buffers.
// Spill files go to Options.TempDir and are removed before Snapshots returns.
//
// Every part is checked against its manifest's size and SHA-256 before it is
// parsed (lake.OpenPart); a part that differs fails the diff with an error
// wrapping lake.ErrCorrupt.
package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/tenantlake/tenantlake/lake"
)

// Error kinds, matched with errors.Is.
var (
	// ErrUnsupported: a column's Parquet type is one this build does not know.
	ErrUnsupported = errors.New("cannot compare")
	// ErrCorruptValue: a value does not have the size its type requires.
	ErrCorruptValue = errors.New("corrupt value")
	// ErrNoTable: Options.Tables names a table neither snapshot has.
	ErrNoTable = errors.New("no such table")
)

// DefaultMemoryBytes is the memory budget of Options that set none.
const DefaultMemoryBytes = 64 << 20

// Options say what to compare and how.
type Options struct {
	// Tables are destination table names to compare; empty: every table of
	// either snapshot. A name neither snapshot has fails with ErrNoTable.
	Tables []string
	// TempDir holds the spill files ("": the system's temporary folder).
	TempDir string
	// MemoryBytes bounds the encoded rows of one partition held in memory
	// (0: DefaultMemoryBytes); a larger partition is partitioned again.
	MemoryBytes int64
	// Rows, when set, receives every changed row, table by table. An error
	// it returns stops the diff and is returned.
	Rows func(Change) error
}

// Result is the difference between two snapshots of one tenant.
type Result struct {
	Tenant string  `json:"tenant"`
	From   string  `json:"from"` // snapshot id of the older side
	To     string  `json:"to"`   // snapshot id of the newer side
	Tables []Table `json:"tables"`
}

// Changed reports whether any table differs.
func (r *Result) Changed() bool {
	for _, t := range r.Tables {
		if t.Status != StatusUnchanged {
			return true
		}
	}
	return false
}

// Table statuses.
const (
	StatusAdded     = "added"     // only in the newer snapshot
	StatusDropped   = "dropped"   // only in the older snapshot
	StatusChanged   = "changed"   // rows or columns differ
	StatusUnchanged = "unchanged" // same columns, same rows
)

// How rows were matched.
const (
	CompareKey  = "key"  // by primary key
	CompareRows = "rows" // as a multiset of whole rows
)

// Table is one table's difference.
type Table struct {
	Table  string `json:"table"`  // destination name
	Source string `json:"source"` // source name (of the newer side, when it has the table)
	Status string `json:"status"`
	// Compare says how rows were matched ("" for an added or dropped table).
	Compare string   `json:"compare,omitempty"`
	Key     []string `json:"key,omitempty"`  // the primary key rows were matched by
	Note    string   `json:"note,omitempty"` // why rows were compared as a multiset, when the key changed
	// RowsFrom and RowsTo are the table's rows in each snapshot.
	RowsFrom int64 `json:"rows_from"`
	RowsTo   int64 `json:"rows_to"`
	Inserted int64 `json:"inserted"`
	Deleted  int64 `json:"deleted"`
	Updated  int64 `json:"updated"`

	ColumnsAdded   []Column `json:"columns_added,omitempty"`
	ColumnsDropped []Column `json:"columns_dropped,omitempty"`
	ColumnsRetyped []Retype `json:"columns_retyped,omitempty"`
}

// Column is a column added or dropped.
type Column struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Type   string `json:"type"` // source type, " NOT NULL" appended when not nullable
}

// Retype is a column whose type changed.
type Retype struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	From   string `json:"from"` // as Column.Type
	To     string `json:"to"`
}

// Change operations.
const (
	OpInsert = "insert"
	OpDelete = "delete"
	OpUpdate = "update"
)

// Change is one changed row: an insert has After, a delete Before, an update
// both. Key holds the primary key's columns: the key rows were matched by,
// or, for a table only one snapshot has or whose primary key changed, the
// key of the row's own snapshot (nil when that snapshot gives the table none).
// Values are rendered as JSON by jsonValue's rules: integers, booleans and
// finite floats as JSON values, JSON columns as their JSON, everything else
// (decimals exactly, text, bytes as \x hex, dates and times) as strings.
type Change struct {
	Table  string `json:"table"`
	Op     string `json:"op"`
	Key    *Row   `json:"key,omitempty"`
	Before *Row   `json:"before,omitempty"`
	After  *Row   `json:"after,omitempty"`
}

// Row is an ordered set of column values; it marshals as a JSON object whose
// members are in column order.
type Row struct {
	Names  []string
	Values []json.RawMessage
}

// MarshalJSON implements json.Marshaler.
func (r *Row) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range r.Names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(r.Values[i])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Get returns the value of column name, or nil.
func (r *Row) Get(name string) json.RawMessage {
	if i := slices.Index(r.Names, name); i >= 0 {
		return r.Values[i]
	}
	return nil
}

// Snapshots compares snapshot from with snapshot to, both committed
// manifests of one tenant in lk. from is usually the older one; the result
// is from's rows turned into to's. ctx cancels the diff (spill files are
// removed all the same).
func Snapshots(ctx context.Context, lk *lake.Lake, from, to *lake.Manifest, opt Options) (*Result, error) {
	if from.Tenant != to.Tenant {
		return nil, fmt.Errorf("diff: snapshots of two tenants (%s, %s)", from.Tenant, to.Tenant)
	}
	if opt.MemoryBytes <= 0 {
		opt.MemoryBytes = DefaultMemoryBytes
	}
	names := tableNames(from, to)
	if len(opt.Tables) > 0 {
		seen := map[string]bool{}
		for _, n := range opt.Tables {
			if from.Table(n) == nil && to.Table(n) == nil {
				return nil, fmt.Errorf("diff: %w: neither snapshot %s nor %s of tenant %s has table %.80q", ErrNoTable, from.SnapshotID, to.SnapshotID, from.Tenant, n)
			}
			seen[n] = true
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !seen[n] })
	}
	res := &Result{Tenant: from.Tenant, From: from.SnapshotID, To: to.SnapshotID, Tables: []Table{}}
	for _, n := range names {
		e := &engine{ctx: ctx, lk: lk, opt: opt}
		t, err := e.table(from.Table(n), to.Table(n))
		if err != nil {
			return nil, fmt.Errorf("diff of tenant %s table %s (%s → %s): %w", from.Tenant, n, from.SnapshotID, to.SnapshotID, err)
		}
		res.Tables = append(res.Tables, t)
	}
	return res, nil
}

// tableNames lists the destination names of both manifests, to's order
// first, then tables only from has.
func tableNames(from, to *lake.Manifest) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range []*lake.Manifest{to, from} {
		for _, t := range m.Tables {
			if !seen[t.Name] {
				seen[t.Name] = true
				names = append(names, t.Name)
			}
		}
	}
	return names
}

func typeOf(c lake.Column) string {
	if c.Nullable {
		return c.SourceType
	}
	return c.SourceType + " NOT NULL"
}

// Schema compares the columns of two versions of a table: added, dropped
// and retyped columns, in column order.
func schema(from, to *lake.Table) (added, dropped []Column, retyped []Retype) {
	for _, c := range to.Columns {
		i := colIndex(from, c.Name)
		if i < 0 {
			added = append(added, Column{Name: c.Name, Source: c.Source, Type: typeOf(c)})
			continue
		}
		f := from.Columns[i]
		if f.SourceType != c.SourceType || f.ParquetType != c.ParquetType || f.Nullable != c.Nullable {
			retyped = append(retyped, Retype{Name: c.Name, Source: c.Source, From: typeOf(f), To: typeOf(c)})
		}
	}
	for _, c := range from.Columns {
		if colIndex(to, c.Name) < 0 {
			dropped = append(dropped, Column{Name: c.Name, Source: c.Source, Type: typeOf(c)})
		}
	}
	return added, dropped, retyped
}

func colIndex(t *lake.Table, name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// sortedKeys returns m's keys in byte order, so deletes are reported in a
// deterministic order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
