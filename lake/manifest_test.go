package lake_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/lake/laketest"
)

func TestSnapshotID(t *testing.T) {
	east := time.FixedZone("+02:00", 2*3600)
	at := time.Date(2026, 11, 21, 4, 3, 4, 123_987_654, east)
	id := lake.SnapshotID(at)
	if id != "20261121T020304.123Z" {
		t.Fatalf("SnapshotID(%v) = %q, want 20261121T020304.123Z (UTC, truncated to the ms)", at, id)
	}
	back, err := lake.ParseSnapshotID(id)
	if err != nil || !back.Equal(at.Truncate(time.Millisecond)) || back.Location() != time.UTC {
		t.Errorf("ParseSnapshotID(%q) = %v, %v", id, back, err)
	}
	if s := lake.ShortSnapshotID(id); s != "20261121t020304123z" || !regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString(s) {
		t.Errorf("ShortSnapshotID(%q) = %q", id, s)
	}
	// Lexical order is time order, including across a whole second.
	times := []time.Time{
		time.Date(2026, 11, 21, 2, 3, 4, 999e6, time.UTC),
		time.Date(2026, 11, 21, 2, 3, 5, 0, time.UTC),
		time.Date(2026, 11, 21, 2, 3, 5, 1e6, time.UTC),
		time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var ids []string
	for _, tm := range times {
		ids = append(ids, lake.SnapshotID(tm))
	}
	if !sort.StringsAreSorted(ids) {
		t.Errorf("ids out of order: %v", ids)
	}
	for _, bad := range []string{"", "20261121T020304Z", "20261121T020304.12Z", "20261121T020304.1234Z", "20261121t020304.123z", "2026-11-21T02:03:04.123Z", "20261321T020304.123Z", "20261121T020304.123Z/", " 20261121T020304.123Z"} {
		if _, err := lake.ParseSnapshotID(bad); !errors.Is(err, lake.ErrInvalid) {
			t.Errorf("ParseSnapshotID(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func validManifest(t *testing.T) *lake.Manifest {
	t.Helper()
	f := laketest.Mem(t)
	return laketest.WriteParts(t, f.Lake, "acme", "20261121T020304.123Z", []string{"orders", "items"}, 2, 1)
}

func TestManifestValidate(t *testing.T) {
	if err := validManifest(t).Validate(); err != nil {
		t.Fatalf("a valid manifest: %v", err)
	}
	cases := map[string]func(m *lake.Manifest){
		"format version 0":        func(m *lake.Manifest) { m.FormatVersion = 0 },
		"a newer format version":  func(m *lake.Manifest) { m.FormatVersion = lake.FormatVersion + 1 },
		"no tenant":               func(m *lake.Manifest) { m.Tenant = "" },
		"a bad snapshot id":       func(m *lake.Manifest) { m.SnapshotID = "2026-11-21" },
		"a repeated table":        func(m *lake.Manifest) { m.Tables[1].Name = m.Tables[0].Name },
		"a bad table name":        func(m *lake.Manifest) { m.Tables[1].Name = "../items" },
		"a repeated column":       func(m *lake.Manifest) { m.Tables[0].Columns[1].Name = m.Tables[0].Columns[0].Name },
		"an empty column name":    func(m *lake.Manifest) { m.Tables[0].Columns[1].Name = "" },
		"rows not adding up":      func(m *lake.Manifest) { m.Tables[0].Rows++ },
		"no files":                func(m *lake.Manifest) { m.Tables[1].Files = nil; m.Tables[1].Rows = 0 },
		"negative rows":           func(m *lake.Manifest) { m.Tables[0].Files[0].Rows = -1; m.Tables[0].Rows -= 2 },
		"a file of another table": func(m *lake.Manifest) { m.Tables[1].Files[0].Path = m.Tables[0].Files[0].Path },
		"a file in a subfolder":   func(m *lake.Manifest) { m.Tables[1].Files[0].Path += "/x" },
		"a file of another tenant": func(m *lake.Manifest) {
			m.Tables[1].Files[0].Path = strings.Replace(m.Tables[1].Files[0].Path, "acme", "beta", 1)
		},
	}
	for name, mutate := range cases {
		m := validManifest(t)
		mutate(m)
		if err := m.Validate(); !errors.Is(err, lake.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

// TestManifestOnDisk: Manifest refuses a stored manifest of a newer format
// version, one that is not JSON, and one that describes another snapshot.
func TestManifestOnDisk(t *testing.T) {
	ctx := context.Background()
	f := laketest.File(t)
	good := laketest.WriteSnapshot(t, f.Lake, "acme", "20261121T020304.123Z", []string{"orders"})
	put := func(tenant, id string, data []byte) {
		t.Helper()
		path := filepath.Join(f.Dir, filepath.FromSlash(lake.ManifestKey(tenant, id)))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newer := *good
	newer.SnapshotID = "20261122T000000.000Z"
	newer.Tables = nil
	newer.FormatVersion = lake.FormatVersion + 1
	data, err := json.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	put("acme", newer.SnapshotID, data)
	if _, err := f.Lake.Manifest(ctx, "acme", newer.SnapshotID); !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "format version 2") {
		t.Errorf("newer format: %v, want ErrInvalid naming the version", err)
	}
	put("acme", "20261123T000000.000Z", []byte("{not json"))
	if _, err := f.Lake.Manifest(ctx, "acme", "20261123T000000.000Z"); !errors.Is(err, lake.ErrInvalid) {
		t.Errorf("not JSON: %v, want ErrInvalid", err)
	}
	data, err = json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	put("beta", good.SnapshotID, data) // acme's manifest in beta's folder
	if _, err := f.Lake.Manifest(ctx, "beta", good.SnapshotID); !errors.Is(err, lake.ErrInvalid) {
		t.Errorf("another tenant's manifest: %v, want ErrInvalid", err)
	}
}
