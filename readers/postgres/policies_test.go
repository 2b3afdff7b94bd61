package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPolicyUnmatched: a policy that names no column of a read table fails
// the read with ErrPolicy, naming the policy and saying whether the table
// or the column is missing, and commits nothing; a policy for a table that
// exists but is not read (left out by the tenant's patterns, a view without
// Views) is not an error.
func TestPolicyUnmatched(t *testing.T) {
	tn, _ := newTenant(t, "acme",
		`CREATE TABLE t (id int PRIMARY KEY, v date)`,
		`INSERT INTO t VALUES (1, '2024-01-01')`,
		`CREATE TABLE hidden (v date)`,
		`CREATE TABLE nocols ()`,
		`CREATE VIEW vw AS SELECT v FROM t`,
	)
	tn.Exclude = []string{"public.hidden"}
	ctx := context.Background()
	ok := map[string]Policy{"public.t.v": PolicyNull, "public.hidden.v": PolicyNull, "public.vw.v": PolicyString}
	lk := openLake(t)
	if _, err := New(Options{Policies: ok}).Read(ctx, lk, tn); err != nil {
		t.Fatalf("policies for a read column, an excluded table and an unread view: %v", err)
	}

	cases := []struct {
		policies map[string]Policy
		want     []string
	}{
		{map[string]Policy{"nosuch.table.col": PolicyNull}, []string{`policy "nosuch.table.col": the database has no table nosuch.table`}},
		{map[string]Policy{"public.t.nosuch": PolicyNull, "public.t.v": PolicyNull}, []string{`policy "public.t.nosuch": table public.t has no column "nosuch"`}},
		{map[string]Policy{"public.T.v": PolicyString}, []string{`policy "public.T.v": the database has no table public.T`}},
		{map[string]Policy{"public.nocols.x": PolicyNull, "public.tt.v": PolicyNull}, []string{
			`policy "public.nocols.x": table public.nocols has no column "x"`,
			`policy "public.tt.v": the database has no table public.tt`,
		}},
	}
	for _, c := range cases {
		lk := openLake(t)
		_, err := New(Options{Policies: c.policies}).Read(ctx, lk, tn)
		if !errors.Is(err, ErrPolicy) {
			t.Errorf("policies %v: %v, want ErrPolicy", c.policies, err)
			continue
		}
		for _, s := range append(c.want, "tenant acme") {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("policies %v: error %q does not contain %q", c.policies, err, s)
			}
		}
		noSnapshots(t, lk, "acme")
	}
}
