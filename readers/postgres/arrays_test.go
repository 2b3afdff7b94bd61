package postgres

import (
	"context"
	"strings"
	"testing"
)

// TestArrayBounds: an array whose dimensions do not all start at 1 cannot be
// carried as JSON, so it fails the read naming tenant, table, column and key
// (one- and multi-dimensional, through a domain too); the null policy writes
// NULL and the string policy carries the text output, bounds included.
// Arrays starting at 1 are carried as to_json() prints them, as before.
func TestArrayBounds(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE DOMAIN intarr AS int[]`,
		`CREATE TABLE good (id int PRIMARY KEY, a int[], m text[], d intarr)`,
		`INSERT INTO good VALUES
			(1, '{7,8}', '{{a,b},{c,NULL}}', '{1}'),
			(2, '[1:2]={5,6}', '[1:1][1:2]={{x,y}}', '[1:3]={1,2,3}'),
			(3, '{}', '{}', '{}'),
			(4, NULL, NULL, NULL),
			(5, '{NULL}', '{{NULL}}', '{}')`,
		`CREATE TABLE zero (id int PRIMARY KEY, a int[])`,
		`INSERT INTO zero VALUES (1, '{1,2}'), (2, '[0:1]={7,8}')`,
		`CREATE TABLE multi (k text PRIMARY KEY, a int[])`,
		`INSERT INTO multi VALUES ('ok', '{{1},{2}}'), ('moved', '[2:3][1:1]={{1},{2}}')`,
		`CREATE TABLE inner_dim (id int PRIMARY KEY, a int[])`,
		`INSERT INTO inner_dim VALUES (9, '[1:2][0:0]={{1},{2}}')`,
		`CREATE TABLE dom (a intarr)`,
		`INSERT INTO dom VALUES ('{1}'), ('[-3:-2]={4,5}')`,
		`CREATE TYPE holder AS (n int, a int[])`,
		`CREATE TYPE outer_t AS (h holder, hs holder[])`,
		`CREATE TABLE nested (id int PRIMARY KEY, h holder, hs holder[], o outer_t)`,
		`INSERT INTO nested VALUES
			(1, ROW(1, '{1,2}'), ARRAY[ROW(2, '{3}')::holder, NULL], ROW(ROW(1, '{{1},{2}}'), ARRAY[ROW(1, '{}')::holder])),
			(2, NULL, '{}', ROW(NULL, NULL)),
			(3, ROW(NULL, NULL), '{NULL}', NULL)`,
		`CREATE TABLE in_field (id int PRIMARY KEY, h holder)`,
		`INSERT INTO in_field VALUES (1, ROW(1, '{1}')), (2, ROW(1, '[0:1]={1,2}'))`,
		`CREATE TABLE in_element (id int PRIMARY KEY, hs holder[])`,
		`INSERT INTO in_element VALUES (1, ARRAY[ROW(1, '{1}')::holder]), (2, ARRAY[ROW(1, '{1}')::holder, ROW(2, '[2:2]={5}')::holder])`,
		`CREATE TABLE deep (id int PRIMARY KEY, o outer_t)`,
		`INSERT INTO deep VALUES (1, ROW(NULL, ARRAY[ROW(1, '{1}')::holder])), (2, ROW(NULL, ARRAY[ROW(1, '[1:1][5:5]={{1}}')::holder]))`,
	)
	ctx := context.Background()

	// Arrays that start at 1 are exactly to_json()'s text.
	good := tn
	good.Include = []string{"public.good", "public.nested"}
	lk := openLake(t)
	m, err := New(Options{}).Read(ctx, lk, good)
	if err != nil {
		t.Fatal(err)
	}
	nested, _ := readTable(t, lk, m.Table("nested"))
	wantNested := byKey(t, expectedRows(t, dsn, "nested", [][3]string{{"id", "int", "id"}, {"h", "json", "h"}, {"hs", "json", "hs"}, {"o", "json", "o"}}), "id")
	for id, row := range byKey(t, nested, "id") {
		for k, v := range wantNested[id] {
			if row[k] != v {
				t.Errorf("nested row %s column %s: lake %q, PostgreSQL to_json %q", id, k, row[k], v)
			}
		}
	}
	if len(nested) != 3 {
		t.Errorf("nested: %d rows", len(nested))
	}
	tb := m.Table("good")
	for _, c := range tb.Columns[1:] {
		if c.BigQueryType != "JSON" || c.Policy != "" {
			t.Errorf("column %s: %s policy %q, want JSON without policy", c.Name, c.BigQueryType, c.Policy)
		}
	}
	rows, _ := readTable(t, lk, tb)
	want := byKey(t, expectedRows(t, dsn, "good", [][3]string{{"id", "int", "id"}, {"a", "json", "a"}, {"m", "json", "m"}, {"d", "json", "d"}}), "id")
	have := byKey(t, rows, "id")
	if len(have) != 5 || len(want) != 5 {
		t.Fatalf("read %d rows, PostgreSQL has %d", len(have), len(want))
	}
	for id, w := range want {
		for k, v := range w {
			if have[id][k] != v {
				t.Errorf("row %s column %s: lake %q, PostgreSQL to_json %q", id, k, have[id][k], v)
			}
		}
	}
	if have["2"]["a"] != "[5,6]" || have["3"]["a"] != "[]" || have["4"]["a"] != "NULL" {
		t.Errorf("rows 2-4 of column a: %q %q %q", have["2"]["a"], have["3"]["a"], have["4"]["a"])
	}

	const inside = "an array inside the value has bounds not starting at 1"
	cases := []struct {
		table, column, key, msg, text string
	}{
		{"zero", "a", "(id)=(2)", "bounds [0:1]", "[0:1]={7,8}"},
		{"multi", "a", `(k)=("moved")`, "bounds [2:3][1:1]", "[2:3][1:1]={{1},{2}}"},
		{"inner_dim", "a", "(id)=(9)", "bounds [1:2][0:0]", "[1:2][0:0]={{1},{2}}"},
		{"dom", "a", "ctid=(0,2)", "bounds [-3:-2]", "[-3:-2]={4,5}"},
		{"in_field", "h", "(id)=(2)", inside, `(1,"[0:1]={1,2}")`},
		{"in_element", "hs", "(id)=(2)", inside, `{"(1,{1})","(2,[2:2]={5})"}`},
		{"deep", "o", "(id)=(2)", inside, `(,"{""(1,[1:1][5:5]={{1}})""}")`},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			one := tn
			one.Include = []string{"public." + c.table}
			lk := openLake(t)
			_, err := New(Options{}).Read(ctx, lk, one)
			if err == nil {
				t.Fatal("read succeeded")
			}
			for _, s := range []string{"tenant acme", "table public." + c.table, "column " + c.column, c.key, c.msg} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			noSnapshots(t, lk, "acme")

			key := "public." + c.table + "." + c.column
			lk = openLake(t)
			m, err := New(Options{Policies: map[string]Policy{key: PolicyNull}}).Read(ctx, lk, one)
			if err != nil {
				t.Fatalf("policy null: %v", err)
			}
			col := m.Tables[0].Columns[len(m.Tables[0].Columns)-1]
			if col.Policy != "null" || col.Profile.Nulls != 1 || col.BigQueryType != "JSON" {
				t.Errorf("policy null: column %+v", col)
			}
			rows, _ := readTable(t, lk, &m.Tables[0])
			nulls := 0
			for _, r := range rows {
				if r[c.column] == "NULL" {
					nulls++
				}
			}
			if len(rows) == 0 || nulls != 1 {
				t.Errorf("policy null: %d NULLs in %v", nulls, rows)
			}

			lk = openLake(t)
			m, err = New(Options{Policies: map[string]Policy{key: PolicyString}}).Read(ctx, lk, one)
			if err != nil {
				t.Fatalf("policy string: %v", err)
			}
			col = m.Tables[0].Columns[len(m.Tables[0].Columns)-1]
			if col.Policy != "string" || col.BigQueryType != "STRING" {
				t.Errorf("policy string: column %+v", col)
			}
			rows, _ = readTable(t, lk, &m.Tables[0])
			found := false
			for _, r := range rows {
				found = found || r[c.column] == c.text
			}
			if !found {
				t.Errorf("policy string: no row holds %q: %v", c.text, rows)
			}
		})
	}
}
