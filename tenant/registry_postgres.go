package tenant

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgRegistry reads the tenant_registry table on every call, so changes to the
// table apply without a restart. It holds no connection between calls.
type pgRegistry struct {
	cfg      *pgx.ConnConfig
	redacted string
}

const registryQuery = `SELECT tenant_id, connection, is_active, include, exclude FROM tenant_registry`

func openPostgresRegistry(ctx context.Context, url string) (*pgRegistry, error) {
	r := &pgRegistry{redacted: Redact(url)}
	cfg, err := ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("tenant registry %s: %w", r.redacted, err)
	}
	r.cfg = cfg
	// Fail now, not at the first List, if the database or table is missing.
	if _, err := r.query(ctx, " WHERE false"); err != nil {
		return nil, err
	}
	return r, nil
}

// query runs registryQuery with the given suffix and returns the rows,
// unchecked.
func (r *pgRegistry) query(ctx context.Context, suffix string, args ...any) (_ []Tenant, err error) {
	conn, err := pgx.ConnectConfig(ctx, r.cfg)
	if err != nil {
		return nil, fmt.Errorf("tenant registry %s: connect: %w", r.redacted, err)
	}
	defer func() {
		if cerr := conn.Close(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("tenant registry %s: close: %w", r.redacted, cerr)
		}
	}()
	rows, err := conn.Query(ctx, registryQuery+suffix, args...)
	if err != nil {
		return nil, fmt.Errorf("tenant registry %s: %w", r.redacted, err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var (
			t      Tenant
			conn   *string
			active *bool
		)
		if err := rows.Scan(&t.ID, &conn, &active, &t.Include, &t.Exclude); err != nil {
			return nil, fmt.Errorf("tenant registry %s: row %d: %w", r.redacted, len(out)+1, err)
		}
		if active == nil {
			return nil, fmt.Errorf("tenant registry %s: tenant %q: is_active is NULL", r.redacted, t.ID)
		}
		t.Active = *active
		if conn != nil {
			t.Connection = *conn
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tenant registry %s: %w", r.redacted, err)
	}
	return out, nil
}

func (r *pgRegistry) List(ctx context.Context) ([]Tenant, error) {
	ts, err := r.query(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := checkTenants(r.redacted, ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// Get reads the whole table and checks it as List does, so a bad entry
// fails every lookup, not only List.
func (r *pgRegistry) Get(ctx context.Context, id string) (Tenant, error) {
	if err := ValidateID(id); err != nil {
		return Tenant{}, err
	}
	ts, err := r.List(ctx)
	if err != nil {
		return Tenant{}, err
	}
	return get(r.redacted, ts, id)
}
