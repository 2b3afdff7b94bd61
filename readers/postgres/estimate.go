package postgres

import (
	"context"
	"fmt"

	"github.com/tenantlake/tenantlake/tenant"
)

// EstimateBytes returns the size on disk of the tables a Read of t would
// read: pg_total_relation_size (heap, TOAST and indexes) of every selected
// table, a partitioned table's leaves summed. It reads the catalog only,
// in one short session, and is what decides whether a tenant is big enough
// for a distributed read (ops.Ops.BigTenantBytes).
func (r *Reader) EstimateBytes(ctx context.Context, t tenant.Tenant) (int64, error) {
	n, err := r.estimate(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("postgres reader: tenant %s: estimate size: %w", t.ID, err)
	}
	return n, nil
}

func (r *Reader) estimate(ctx context.Context, t tenant.Tenant) (int64, error) {
	if err := tenant.ValidateID(t.ID); err != nil {
		return 0, err
	}
	conn, err := r.connect(ctx, t)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	all, err := listTables(ctx, conn, r.opts.Views)
	if err != nil {
		return 0, err
	}
	var oids []uint32
	for _, tb := range all {
		if t.Selects(tb.schema, tb.relname) {
			oids = append(oids, tb.oid)
		}
	}
	var n int64
	err = conn.QueryRow(ctx, `
SELECT coalesce(sum(CASE WHEN c.relkind = 'p'
    THEN (SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0) FROM pg_partition_tree(c.oid) p WHERE p.isleaf)
    ELSE pg_total_relation_size(c.oid) END), 0)::bigint
FROM pg_class c WHERE c.oid = ANY($1)`, oids).Scan(&n)
	if err != nil {
		return 0, err
	}
	return n, nil
}
