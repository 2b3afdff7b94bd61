package writertest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/changes"
)

// ChangesHarness is implemented by a Harness whose target can keep change
// tables (package writers/changes); the ChangeTables case fails for a
// Harness without it.
type ChangesHarness interface {
	Harness
	// NewChangesWriter is NewWriter with change tables switched on.
	NewChangesWriter(ctx context.Context, t *testing.T) (writers.Writer, error)
	// ChangeRows returns every row of tenant's change table name in w's
	// target, in any order, with the columns of changes.Columns: strings,
	// snapshot_time a time.Time, key, row_before and row_after their JSON
	// text as a string, or nil for NULL. A change table that does not exist
	// has no rows (no error).
	ChangeRows(ctx context.Context, w writers.Writer, tenant, name string) ([][]any, error)
}

// changesHarness swaps NewWriter for NewChangesWriter.
type changesHarness struct{ ChangesHarness }

func (h changesHarness) NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	return h.NewChangesWriter(ctx, t)
}

func (h changesHarness) Omissions() []Omission {
	if o, ok := h.ChangesHarness.(Omitter); ok {
		return o.Omissions()
	}
	return nil
}

// testChangeTables: a first load records no changes; a load of a newer
// snapshot appends exactly the rows package diff finds (checked also against
// the known mutation), a table added to the snapshot all inserts; a
// redelivery appends nothing; a replay appends the changes back, including
// the deletes of a dropped table's rows.
func testChangeTables(t *testing.T, h Harness) {
	ch, ok := h.(ChangesHarness)
	if !ok {
		t.Fatalf("harness %T does not implement writertest.ChangesHarness", h)
	}
	e := newEnv(t, changesHarness{ch})
	src := e.newSource("acme")
	old := e.read(src)
	first := e.load("acme", old, writers.ReasonScheduled)
	e.wantOutcome(first, writers.OutcomeLoaded, old.m.SnapshotID)
	if first.Changes == nil || first.Changes.Note == "" || len(first.Changes.Rows) > 0 {
		t.Fatalf("first load: changes %+v; want a note and no rows", first.Changes)
	}
	corpus, extra := changes.TableName("corpus", 63), changes.TableName("extra", 63)
	e.wantChangeRows(ch, "acme", corpus, nil)

	e.exec(src, append(mutateSQL, `CREATE TABLE extra (k text PRIMARY KEY, v int)`, `INSERT INTO extra VALUES ('a', 1)`)...)
	cur := e.read(src)
	out := e.load("acme", cur, writers.ReasonScheduled)
	e.wantOutcome(out, writers.OutcomeLoaded, cur.m.SnapshotID)
	if out.Changes == nil || out.Changes.From != old.m.SnapshotID || out.Changes.Rows[corpus] != 3 || out.Changes.Rows[extra] != 1 {
		t.Fatalf("load of %s: changes %+v; want from %s, 3 rows in %s and 1 in %s", cur.m.SnapshotID, out.Changes, old.m.SnapshotID, corpus, extra)
	}
	// What the mutation did, known independently of package diff.
	ops := map[string]string{}
	for _, r := range e.wantChangeRows(ch, "acme", corpus, e.diffRows(old, cur, out.LoadID, "corpus")) {
		ops[r[4].(string)+" "+fmt.Sprint(r[5])] = fmt.Sprint(r[7])
	}
	if len(ops) != 3 || !strings.Contains(ops[`update {"id":4}`], `"t":"changed"`) || !strings.Contains(ops[`insert {"id":5}`], `"t":"new row"`) || ops[`delete {"id":1}`] != "<nil>" {
		t.Errorf("change rows of corpus (operation key → row_after): %v; want the update of id 4, the insert of id 5 and the delete of id 1", ops)
	}
	e.wantChangeRows(ch, "acme", extra, e.diffRows(old, cur, out.LoadID, "extra"))

	again := e.load("acme", cur, writers.ReasonScheduled)
	e.wantOutcome(again, writers.OutcomeAlreadyLive, cur.m.SnapshotID)
	back := e.load("acme", old, writers.ReasonReplay)
	e.wantOutcome(back, writers.OutcomeLoaded, old.m.SnapshotID)
	if back.Changes == nil || back.Changes.From != cur.m.SnapshotID || back.Changes.Rows[corpus] != 3 || back.Changes.Rows[extra] != 1 {
		t.Fatalf("replay of %s: changes %+v; want from %s, 3 rows in %s and 1 in %s", old.m.SnapshotID, back.Changes, cur.m.SnapshotID, corpus, extra)
	}
	e.wantChangeRows(ch, "acme", corpus, append(e.diffRows(old, cur, out.LoadID, "corpus"), e.diffRows(cur, old, back.LoadID, "corpus")...))
	e.wantChangeRows(ch, "acme", extra, append(e.diffRows(old, cur, out.LoadID, "extra"), e.diffRows(cur, old, back.LoadID, "extra")...))
	e.wantLive("acme", old)
}

// diffRows is the change rows package diff gives for table from snapshot
// from to snapshot to, as ChangeRows returns them.
func (e *env) diffRows(from, to *snapshot, loadID, table string) [][]any {
	e.t.Helper()
	at, err := lake.ParseSnapshotID(to.m.SnapshotID)
	if err != nil {
		e.t.Fatal(err)
	}
	var rows [][]any
	_, err = diff.Snapshots(e.ctx, e.lk, from.m, to.m, diff.Options{Tables: []string{table}, Rows: func(c diff.Change) error {
		row := []any{loadID, from.m.SnapshotID, to.m.SnapshotID, at, c.Op}
		for _, r := range []*diff.Row{c.Key, c.Before, c.After} {
			if r == nil {
				row = append(row, nil)
				continue
			}
			b, err := r.MarshalJSON()
			if err != nil {
				return err
			}
			row = append(row, string(b))
		}
		rows = append(rows, row)
		return nil
	}})
	if err != nil {
		e.t.Fatalf("diff of %s from %s to %s: %v", table, from.m.SnapshotID, to.m.SnapshotID, err)
	}
	return rows
}

// wantChangeRows checks that tenant's change table name holds exactly the
// rows want (in any order; JSON compared as values, so key order and
// spacing aside), and returns the rows read.
func (e *env) wantChangeRows(ch ChangesHarness, tenantID, name string, want [][]any) [][]any {
	e.t.Helper()
	got, err := ch.ChangeRows(e.ctx, e.w, tenantID, name)
	if err != nil {
		e.t.Fatalf("change rows of %s.%s: %v", tenantID, name, err)
	}
	norm := func(rows [][]any) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			if len(r) != len(changes.Columns) {
				e.t.Fatalf("change table %s: a row has %d values, want %d", name, len(r), len(changes.Columns))
			}
			cells := make([]string, len(r))
			for j, v := range r {
				switch v := v.(type) {
				case nil:
					cells[j] = "NULL"
				case time.Time:
					cells[j] = v.UTC().Format(time.RFC3339Nano)
				case string:
					cells[j] = v
					if j >= 5 { // key, row_before, row_after
						var x any
						d := json.NewDecoder(strings.NewReader(v))
						d.UseNumber() // numbers as written, never rounded to float64
						if err := d.Decode(&x); err != nil {
							e.t.Fatalf("change table %s column %s: %q is not JSON: %v", name, changes.Columns[j], v, err)
						}
						b, _ := json.Marshal(x) // sorted keys
						cells[j] = string(b)
					}
				default:
					e.t.Fatalf("change table %s column %s: a %T, want a string or time", name, changes.Columns[j], v)
				}
			}
			out[i] = strings.Join(cells, " | ")
		}
		sort.Strings(out)
		return out
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		e.t.Errorf("change table %s of %s:\ngot:\n%s\nwant:\n%s", name, tenantID, strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	return got
}
