// Package readers defines read strategies: each reads one tenant's source
// database in one consistent snapshot and commits it to the lake. Read
// strategies never talk to write strategies; the lake and the events are the
// only coupling. The PostgreSQL read strategy is readers/postgres.
package readers

import (
	"context"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// Reader is a read strategy.
//
// Read reads every selected table of t in one consistent snapshot, writes the
// parts to lk and commits the snapshot by writing its manifest last. On any
// error nothing is committed (parts already written are orphans for lake GC)
// and the error names the tenant and, where it applies, the table, column and
// row key. Cancelling ctx stops the read with an error and commits nothing.
type Reader interface {
	Read(ctx context.Context, lk *lake.Lake, t tenant.Tenant) (*lake.Manifest, error)
}
