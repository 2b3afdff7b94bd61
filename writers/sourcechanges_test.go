package writers

import (
	"reflect"
	"testing"

	"github.com/tenantlake/tenantlake/lake"
)

func TestSourceChanges(t *testing.T) {
	cols := func(pairs ...string) []lake.Column {
		var out []lake.Column
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, lake.Column{Source: pairs[i], Name: pairs[i+1]})
		}
		return out
	}
	prev := &lake.Manifest{SnapshotID: "20261120T000000.000Z", Tables: []lake.Table{
		{Source: `public."Foo"`, Name: "foo", Columns: cols("v", "v")},
		{Source: "public.foo", Name: "foo_2", Columns: cols("v", "v")},
		{Source: "public.t", Name: "t", Columns: cols("Id", "id", "id", "id_2", "x", "x")},
		{Source: "public.gone", Name: "gone", Columns: cols("v", "v")},
	}}
	next := &lake.Manifest{SnapshotID: "20261122T000000.000Z", Tables: []lake.Table{
		{Source: `public."FOO"`, Name: "foo", Columns: cols("v", "v")},
		{Source: "public.foo", Name: "foo_2", Columns: cols("v", "v", "w", "w")},
		{Source: "public.t", Name: "t", Columns: cols("ID", "id", "id", "id_2")},
		{Source: "public.new", Name: "new", Columns: cols("v", "v")},
	}}
	want := []string{
		`table foo held public."Foo" in snapshot 20261120T000000.000Z and holds public."FOO" now`,
		`column t.id held source column "Id" in snapshot 20261120T000000.000Z and holds "ID" now`,
	}
	if got := SourceChanges(prev, next); !reflect.DeepEqual(got, want) {
		t.Errorf("SourceChanges = %q, want %q", got, want)
	}
	if got := SourceChanges(next, next); len(got) != 0 {
		t.Errorf("same snapshot: %q, want none", got)
	}
	if got := SourceChanges(nil, next); got != nil {
		t.Errorf("no previous snapshot: %q, want none", got)
	}
}
