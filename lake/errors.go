package lake

import "errors"

// Error kinds, matched with errors.Is. Errors from this package say which
// tenant, snapshot and object they concern, and wrap one of these where one
// applies.
var (
	// ErrNotFound: the tenant, snapshot, manifest or part does not exist.
	// A snapshot without a manifest does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a write-once object (a part, a manifest or a ledger record)
	// already exists. For a manifest this means another process committed
	// the same snapshot id first; the lake keeps the first manifest, and the
	// caller's parts, if any, are orphans for GC to sweep.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a tenant id, snapshot id, table name, time or manifest is
	// malformed, or a manifest has a newer format version than this build
	// reads. Nothing was written.
	ErrInvalid = errors.New("invalid")
	// ErrCorrupt: a part's size or checksum (SHA-256, or the CRC-32C GCS
	// stores) differs from what its manifest records. Write strategies
	// quarantine a load that meets it.
	ErrCorrupt = errors.New("corrupt")
	// ErrExpired: a snapshot id is MaxReadDuration old, so a read may no
	// longer create or commit it (GC may sweep its parts from
	// MinOrphanGrace on). Nothing was committed.
	ErrExpired = errors.New("snapshot id expired")
)
