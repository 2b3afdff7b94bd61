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
//
// A read started for a request of the read-requests topic records the
// request's id (WithRequestID) in the manifest, so a redelivered request
// finds its snapshot instead of reading the source again.
type Reader interface {
	Read(ctx context.Context, lk *lake.Lake, t tenant.Tenant) (*lake.Manifest, error)
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the read request a Read
// serves; read strategies record it as the manifest's RequestID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
