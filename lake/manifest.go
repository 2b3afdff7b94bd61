package lake

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FormatVersion is the manifest format this build writes. Readers refuse a
// manifest with a newer format version rather than misread it.
const FormatVersion = 1

// Manifest describes one committed snapshot of one tenant. It is written last,
// as _manifest.json beside the snapshot's parts; its presence is the commit.
// Everything a write strategy needs to load and validate the snapshot is here,
// so a load never has to ask the source again.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	Tenant        string    `json:"tenant"`
	SnapshotID    string    `json:"snapshot_id"`
	Source        Source    `json:"source"`
	StartedAt     time.Time `json:"started_at"`   // start of the source transaction (the snapshot id, to the ms, unless another read took that ms: then the id is the next free one)
	CommittedAt   time.Time `json:"committed_at"` // when the manifest was written
	ToolVersion   string    `json:"tool_version"`
	RequestID     string    `json:"request_id,omitempty"` // the read request (events) that made it; empty for a read by hand
	Tables        []Table   `json:"tables"`
	Skipped       []Skipped `json:"skipped,omitempty"`
}

// Source says where and how the snapshot was read.
type Source struct {
	Kind          string `json:"kind"`                     // "postgres"
	Database      string `json:"database,omitempty"`       // database name; never a password or full DSN
	ServerVersion string `json:"server_version,omitempty"` // e.g. "15.18"
	TxSnapshot    string `json:"tx_snapshot,omitempty"`    // pg_current_snapshot() of the read transaction
	LSN           string `json:"lsn,omitempty"`            // pg_current_wal_lsn() at the start of the read
}

// Table is one source table as stored in the snapshot.
type Table struct {
	Source     string   `json:"source"`                // source name as the source spells it, e.g. `public."Order Items"`
	Name       string   `json:"name"`                  // destination name, valid in BigQuery and PostgreSQL, unique in the snapshot
	Columns    []Column `json:"columns"`               // in source order
	PrimaryKey []string `json:"primary_key,omitempty"` // destination column names
	Rows       int64    `json:"rows"`                  // rows read, equal to the sum of Files[].Rows
	Files      []File   `json:"files"`                 // at least one file, even for an empty table
}

// Column is one column of a table: its source and destination names, its type
// in each system (see docs/types.md) and its profile figures.
type Column struct {
	Source       string  `json:"source"`        // source column name
	Name         string  `json:"name"`          // destination name, unique in the table
	SourceType   string  `json:"source_type"`   // as format_type() prints it, e.g. "numeric(12,2)"
	ParquetType  string  `json:"parquet_type"`  // e.g. "INT64", "BYTE_ARRAY STRING", "FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,9)"
	BigQueryType string  `json:"bigquery_type"` // BigQuery standard SQL type: INT64, NUMERIC(12,2), BIGNUMERIC(50,20), STRING, JSON, ...
	Nullable     bool    `json:"nullable"`
	Profile      Profile `json:"profile"`
	// Policy is set when a per-column policy of the reader changed data
	// (docs/types.md): "null" (values the Parquet type cannot carry exactly
	// were written as NULL, counted in Profile.Nulls) or "string" (the column
	// is carried as PostgreSQL's text output). Empty: values are exact.
	Policy string `json:"policy,omitempty"`
}

// Profile holds figures computed by tenantlake while it read the column, for
// validating loads without the source. A nil field was not computed for this
// type and is not checked. Values are canonical strings: integers and decimals
// in plain decimal notation, floats in Go's shortest 'g' form, text as is
// (min and max compare bytes), booleans "false"/"true", dates YYYY-MM-DD,
// timestamps RFC 3339 with microseconds (UTC for instants, no zone for wall
// clock times), times HH:MM:SS.ffffff.
type Profile struct {
	Nulls int64   `json:"nulls"`
	Min   *string `json:"min,omitempty"`
	Max   *string `json:"max,omitempty"`
	Sum   *string `json:"sum,omitempty"` // exact for integers and decimals; floats compare with a relative tolerance
}

// File is one Parquet part of a table.
type File struct {
	Path   string `json:"path"`   // key relative to the lake root
	Rows   int64  `json:"rows"`   // rows in the part
	Bytes  int64  `json:"bytes"`  // object size
	SHA256 string `json:"sha256"` // hex SHA-256 of the object's bytes
	// CRC32C is the CRC-32C (Castagnoli) of the object's bytes, 8 hex
	// digits of the big-endian value: the checksum GCS stores for every
	// object, so CheckStored can check a part on GCS without reading it.
	// Empty in manifests written before it was recorded (they stay valid;
	// CheckStored then reads the part and checks SHA256).
	CRC32C string `json:"crc32c,omitempty"`
}

// Skipped is a source table that is not in the snapshot, and why.
type Skipped struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Table returns the table with destination name name, or nil.
func (m *Manifest) Table(name string) *Table {
	for i := range m.Tables {
		if m.Tables[i].Name == name {
			return &m.Tables[i]
		}
	}
	return nil
}

// Validate checks the manifest's internal consistency: format version
// (a newer one than this build reads is refused), tenant and snapshot id,
// table names valid and unique, column names unique, at least one file per
// table, every file a part of its own table in this snapshot, and file rows
// adding up to the table's rows. Its errors wrap ErrInvalid.
func (m *Manifest) Validate() error {
	if m.FormatVersion < 1 || m.FormatVersion > FormatVersion {
		return fmt.Errorf("%w: manifest %s/%s: format version %d: this build reads versions 1 to %d",
			ErrInvalid, m.Tenant, m.SnapshotID, m.FormatVersion, FormatVersion)
	}
	if err := validTenant(m.Tenant); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := validSnapshotID(m.SnapshotID); err != nil {
		return fmt.Errorf("manifest of %s: %w", m.Tenant, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest %s/%s: %s", ErrInvalid, m.Tenant, m.SnapshotID, fmt.Sprintf(format, args...))
	}
	tables := map[string]bool{}
	for _, t := range m.Tables {
		if err := validTableName(t.Name); err != nil {
			return fmt.Errorf("manifest %s/%s: %w", m.Tenant, m.SnapshotID, err)
		}
		if tables[t.Name] {
			return bad("table %s appears twice", t.Name)
		}
		tables[t.Name] = true
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if c.Name == "" || cols[c.Name] {
				return bad("table %s: column name %q empty or repeated", t.Name, c.Name)
			}
			cols[c.Name] = true
		}
		if len(t.Files) == 0 {
			return bad("table %s has no files", t.Name)
		}
		prefix := SnapshotPrefix(m.Tenant, m.SnapshotID) + "table=" + t.Name + "/"
		var rows int64
		for _, f := range t.Files {
			if !strings.HasPrefix(f.Path, prefix) || strings.Contains(f.Path[len(prefix):], "/") {
				return bad("table %s: file %q is not a part of this table in this snapshot", t.Name, f.Path)
			}
			if f.Rows < 0 || f.Bytes < 0 {
				return bad("table %s: file %q: negative rows or bytes", t.Name, f.Path)
			}
			if !isHex(f.SHA256, 64) || f.CRC32C != "" && !isHex(f.CRC32C, 8) {
				return bad("table %s: file %q: sha256 must be 64 and crc32c 8 lower-case hex digits", t.Name, f.Path)
			}
			rows += f.Rows
		}
		if rows != t.Rows {
			return bad("table %s: files hold %d rows, table says %d", t.Name, rows, t.Rows)
		}
	}
	return nil
}

// isHex reports whether s is n lower-case hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func decodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
