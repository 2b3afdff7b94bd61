package lake

import "errors"

// Error kinds, matched with errors.Is. Errors from this package say which
// tenant, snapshot and object they concern, and wrap one of these where one
// applies.
var (
	// ErrNotFound: the tenant, snapshot, manifest or part does not exist.
	// A snapshot without a manifest does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a write-once object (a part or a manifest) already exists.
	// For a manifest this means another process committed the same snapshot
	// id first; the caller's parts, if any, are orphans for GC to sweep.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a tenant id, snapshot id, table name, time or manifest is
	// malformed. Nothing was read or written.
	ErrInvalid = errors.New("invalid")
)
