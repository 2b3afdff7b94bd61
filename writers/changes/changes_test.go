package changes

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/lake"
)

func manifest(id string, tables ...string) *lake.Manifest {
	m := &lake.Manifest{Tenant: "acme", SnapshotID: id}
	for _, t := range tables {
		m.Tables = append(m.Tables, lake.Table{Name: t})
	}
	return m
}

// TestCheck: a table named like another's change table is refused, and so
// are two tables whose change tables would have one name (a table named
// like a long table's shortened change table, minus the suffix).
func TestCheck(t *testing.T) {
	long := strings.Repeat("a", 60)
	short := strings.TrimSuffix(TableName(long, 63), Suffix)
	for _, c := range []struct {
		tables []string
		bad    string
	}{
		{[]string{"x", "y"}, ""},
		{[]string{"x", "x_changes"}, "x_changes"},
		{[]string{long, short}, TableName(long, 63)},
		{[]string{long, long[:59] + "b"}, ""},
	} {
		err := Check(manifest("20261121T020304.123Z", c.tables...), 63)
		if c.bad == "" && err != nil || c.bad != "" && (!errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("Check(%v): %v; want refused naming %q", c.tables, err, c.bad)
		}
	}
}

// TestCheckBase: a snapshot that drops x and has x_changes is refused (x's
// deletes go to x_changes); one that keeps x is left to Check.
func TestCheckBase(t *testing.T) {
	base := manifest("20261121T020304.123Z", "x", "y")
	if err := CheckBase(base, manifest("20261122T020304.123Z", "y", "x_changes"), 63); !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "x_changes") {
		t.Errorf("CheckBase, x dropped, x_changes added: %v; want refused", err)
	}
	if err := CheckBase(base, manifest("20261122T020304.123Z", "y", "z_changes"), 63); err != nil {
		t.Errorf("CheckBase, z_changes added: %v", err)
	}
}
