package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
)

// TestStableNamesRules: without a previous snapshot the names are
// uniqueNames'; with one, an item keeps its previous name, and a name the
// previous snapshot used is never given to another item.
func TestStableNamesRules(t *testing.T) {
	srcs := []string{"Foo", "foo", "FOO"}
	if got, want := stableNames(srcs, srcs, nil), uniqueNames(srcs); !reflect.DeepEqual(got, want) {
		t.Errorf("no previous snapshot: %v, want uniqueNames' %v", got, want)
	}
	cases := []struct {
		keys []string
		prev map[string]string
		want []string
	}{
		// "Foo" dropped: "foo" keeps foo_2, and "foo" (Foo's) is not reused.
		{[]string{"foo"}, map[string]string{"Foo": "foo", "foo": "foo_2"}, []string{"foo_2"}},
		// A new "FOO" gets neither Foo's old name nor foo's.
		{[]string{"FOO", "foo"}, map[string]string{"Foo": "foo", "foo": "foo_2"}, []string{"foo_3", "foo_2"}},
		// Nothing previous applies: plain rules.
		{[]string{"a", "A"}, map[string]string{"b": "b"}, []string{"a", "a_2"}},
		// A kept name wins over a new item that maps to it; the new one gets a suffix.
		{[]string{"x_2", "x"}, map[string]string{"x": "x_2"}, []string{"x_2_2", "x_2"}},
	}
	for _, c := range cases {
		if got := stableNames(c.keys, c.keys, c.prev); !reflect.DeepEqual(got, c.want) {
			t.Errorf("stableNames(%v, prev %v) = %v, want %v", c.keys, c.prev, got, c.want)
		}
	}
}

// TestStableNames: destination table and column names stay the same across
// snapshots of a tenant when colliding source names come and go, so a
// destination never silently holds another source's rows.
func TestStableNames(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE "Foo" (v text)`,
		`INSERT INTO "Foo" VALUES ('from Foo')`,
		`CREATE TABLE foo (v text)`,
		`INSERT INTO foo VALUES ('from foo')`,
		`CREATE TABLE cols ("Id" int, id int, other int)`,
		`INSERT INTO cols VALUES (1, 2, 3)`,
	)
	ctx := context.Background()
	admin := pgtest.Connect(t, dsn)
	lk := openLake(t)
	read := func() *lake.Manifest {
		t.Helper()
		m, err := New(Options{}).Read(ctx, lk, tn)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	names := func(m *lake.Manifest) map[string]string {
		out := map[string]string{}
		for _, tb := range m.Tables {
			out[tb.Source] = tb.Name
		}
		return out
	}
	colNames := func(m *lake.Manifest) map[string]string {
		out := map[string]string{}
		for _, c := range m.Table("cols").Columns {
			out[c.Source] = c.Name
		}
		return out
	}
	check := func(what string, got, want map[string]string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}

	m1 := read()
	check("first snapshot", names(m1), map[string]string{`public."Foo"`: "foo", "public.foo": "foo_2", "public.cols": "cols"})
	check("first snapshot columns", colNames(m1), map[string]string{"Id": "id", "id": "id_2", "other": "other"})

	// Foo goes, FOO comes; a column goes.
	mustExec(t, admin, `DROP TABLE "Foo"`)
	mustExec(t, admin, `CREATE TABLE "FOO" (v text)`)
	mustExec(t, admin, `INSERT INTO "FOO" VALUES ('from FOO')`)
	mustExec(t, admin, `ALTER TABLE cols DROP COLUMN "Id", ADD COLUMN "ID" int`)
	m2 := read()
	check("second snapshot", names(m2), map[string]string{"public.foo": "foo_2", `public."FOO"`: "foo_3", "public.cols": "cols"})
	check("second snapshot columns", colNames(m2), map[string]string{"id": "id_2", "other": "other", "ID": "id_3"})
	if m2.Table("foo") != nil {
		t.Error(`destination foo, public."Foo"'s in the previous snapshot, is reused`)
	}
	rows, _ := readTable(t, lk, m2.Table("foo_2"))
	if len(rows) != 1 || rows[0]["v"] != "from foo" {
		t.Errorf("foo_2 holds %v, want public.foo's row", rows)
	}
	rows, _ = readTable(t, lk, m2.Table("cols"))
	if len(rows) != 1 || rows[0]["id_2"] != "2" || rows[0]["id_3"] != "NULL" {
		t.Errorf("cols holds %v, want id in id_2 and the new ID in id_3", rows)
	}

	// Unchanged sources keep their names, though "foo" is free by now.
	m3 := read()
	check("third snapshot", names(m3), names(m2))
	check("third snapshot columns", colNames(m3), colNames(m2))

	// A fresh tenant with the same tables gets plain names: names depend on
	// the tenant's own history only.
	fresh := tn
	fresh.ID = "fresh"
	m4, err := New(Options{}).Read(ctx, lk, fresh)
	if err != nil {
		t.Fatal(err)
	}
	check("another tenant", names(m4), map[string]string{`public."FOO"`: "foo", "public.foo": "foo_2", "public.cols": "cols"})
}

// TestStableNamesBadPrevious: a previous manifest that cannot be read fails
// the read rather than guessing names, and commits nothing.
func TestStableNamesBadPrevious(t *testing.T) {
	tn, _ := newTenant(t, "acme", `CREATE TABLE t (v int)`)
	ctx := context.Background()
	dir := t.TempDir()
	const id = "20200101T000000.000Z"
	folder := filepath.Join(dir, "tenant=acme", "snapshot="+id)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	// A newer manifest format than this build reads.
	manifest := fmt.Sprintf(`{"format_version": %d, "tenant": "acme", "snapshot_id": %q, "tables": []}`, lake.FormatVersion+1, id)
	if err := os.WriteFile(filepath.Join(folder, "_manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	lk, err := lake.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	}()
	_, err = New(Options{}).Read(ctx, lk, tn)
	if !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "previous snapshot "+id) || !strings.Contains(err.Error(), "tenant acme") {
		t.Fatalf("read with an unreadable previous manifest: %v, want an error naming it", err)
	}
	snaps, err := lk.Snapshots(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 {
		t.Errorf("snapshots %v, want only the unreadable one", snaps)
	}
}
