package lake

import (
	"fmt"
	"strings"
	"time"

	"github.com/tenantlake/tenantlake/tenant"
)

// The lake layout (DESIGN.md):
//
//	tenant=<tenant>/snapshot=<snapshot-id>/table=<table>/part-<NNNNN>.parquet
//	tenant=<tenant>/snapshot=<snapshot-id>/_manifest.json   written last: the commit marker
//	tenant=<tenant>/_loads/target=<target>/<snapshot-id>.<load-id>.json   load ledger records

const (
	snapshotIDLayout = "20060102T150405.000Z"
	manifestName     = "_manifest.json"
	claimName        = "_claim.json"
)

// SnapshotID returns the snapshot id for a source transaction that started at
// t: UTC, to the millisecond, fixed width, so lexical order is time order.
func SnapshotID(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format(snapshotIDLayout)
}

// ParseSnapshotID parses a snapshot id made by SnapshotID.
func ParseSnapshotID(id string) (time.Time, error) {
	t, err := time.Parse(snapshotIDLayout, id)
	if err != nil || SnapshotID(t) != id {
		return time.Time{}, fmt.Errorf("%w: snapshot id %q is not of the form 20261121T020304.123Z", ErrInvalid, id)
	}
	return t, nil
}

func validSnapshotID(id string) error {
	_, err := ParseSnapshotID(id)
	return err
}

// ShortSnapshotID derives from a snapshot id the form used where names allow
// only [a-z0-9_-] (BigQuery job ids and labels): "20261121t020304123z".
// It is the one place that derivation is made.
func ShortSnapshotID(id string) string {
	return strings.ToLower(strings.ReplaceAll(id, ".", ""))
}

func validTenant(t string) error {
	if err := tenant.ValidateID(t); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// maxNameLength bounds table names, targets and load ids, so that every key
// stays well under GCS's 1024-byte limit for object names.
const maxNameLength = 300

// validName allows what the reader produces as destination table names, and
// what write strategies use as targets and load ids: [A-Za-z_][A-Za-z0-9_]*,
// at most maxNameLength bytes. Anything else could escape its folder.
func validName(what, name string) error {
	if name == "" || len(name) > maxNameLength {
		return fmt.Errorf("%w: %s %.80q: want 1 to %d characters", ErrInvalid, what, name, maxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%w: %s %q: only letters, digits and _ are allowed, not starting with a digit", ErrInvalid, what, name)
		}
	}
	return nil
}

func validTableName(name string) error { return validName("table name", name) }

func tenantPrefix(t string) string { return "tenant=" + t + "/" }

// SnapshotPrefix is the key prefix of every object of one snapshot.
func SnapshotPrefix(tenant, snapshotID string) string {
	return tenantPrefix(tenant) + "snapshot=" + snapshotID + "/"
}

// ManifestKey is the key of a snapshot's manifest.
func ManifestKey(tenant, snapshotID string) string {
	return SnapshotPrefix(tenant, snapshotID) + manifestName
}

// ClaimKey is the key of the object NewSnapshot writes first, write-once, to
// claim a snapshot id for one read.
func ClaimKey(tenant, snapshotID string) string {
	return SnapshotPrefix(tenant, snapshotID) + claimName
}

// validPartKey checks that key is a part key as PartKey makes them, with a
// valid tenant, snapshot id and table name: a key that cannot leave its
// folder.
func validPartKey(key string) error {
	bad := fmt.Errorf("%w: part key %.200q is not of the form tenant=T/snapshot=S/table=N/part-NNNNN.parquet", ErrInvalid, key)
	f := strings.Split(key, "/")
	if len(f) != 4 {
		return bad
	}
	t, ok1 := strings.CutPrefix(f[0], "tenant=")
	id, ok2 := strings.CutPrefix(f[1], "snapshot=")
	table, ok3 := strings.CutPrefix(f[2], "table=")
	num, ok4 := strings.CutPrefix(f[3], "part-")
	num, ok5 := strings.CutSuffix(num, ".parquet")
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || len(num) < 5 || validTenant(t) != nil || validSnapshotID(id) != nil || validTableName(table) != nil {
		return bad
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return bad
		}
	}
	return nil
}

// PartKey is the key of part n of a table in a snapshot.
func PartKey(tenant, snapshotID, table string, n int) string {
	return fmt.Sprintf("%stable=%s/part-%05d.parquet", SnapshotPrefix(tenant, snapshotID), table, n)
}

func ledgerPrefix(tenant, target string) string {
	return tenantPrefix(tenant) + "_loads/target=" + target + "/"
}
