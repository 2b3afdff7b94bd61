package postgres_test

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
	"github.com/tenantlake/tenantlake/writers/writertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// harness runs the conformance suite against a fresh warehouse database per writer.
type harness struct {
	mu   sync.Mutex
	urls map[writers.Writer]string
}

func (h *harness) NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	return h.newWriter(ctx, t, postgres.Config{})
}

// NewChangesWriter is NewWriter with change tables (writertest.ChangesHarness).
func (h *harness) NewChangesWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	return h.newWriter(ctx, t, postgres.Config{Changes: true})
}

func (h *harness) newWriter(ctx context.Context, t *testing.T, cfg postgres.Config) (writers.Writer, error) {
	url := pgtest.NewDatabase(t)
	cfg.URL = url
	w, err := postgres.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.urls[w] = url
	return w, nil
}

func (h *harness) LiveRows(ctx context.Context, w writers.Writer, tenant, table string, columns []string) (out [][]any, err error) {
	return h.rows(ctx, w, w.(*postgres.Writer).LiveSchema(tenant), table, columns)
}

// ChangeRows reads tenant's change table name from its live schema, the
// JSON columns as their text.
func (h *harness) ChangeRows(ctx context.Context, w writers.Writer, tenant, name string) (out [][]any, err error) {
	err = h.withConn(ctx, w, func(conn *pgx.Conn) error {
		id := pgx.Identifier{w.(*postgres.Writer).LiveSchema(tenant), name}.Sanitize()
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", id).Scan(&exists); err != nil || !exists {
			return err
		}
		rows, err := conn.Query(ctx, "SELECT load_id, previous_snapshot_id, snapshot_id, snapshot_time, operation, key::text, row_before::text, row_after::text FROM "+id)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		return err
	})
	return out, err
}

// withConn runs f on a connection of its own to w's warehouse.
func (h *harness) withConn(ctx context.Context, w writers.Writer, f func(*pgx.Conn) error) (err error) {
	h.mu.Lock()
	url := h.urls[w]
	h.mu.Unlock()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := conn.Close(ctx); err == nil {
			err = cerr
		}
	}()
	return f(conn)
}

// AllTenantsRows reads the combined table in the all-tenants schema (the
// default, all_tenants, as NewWriter configures it).
func (h *harness) AllTenantsRows(ctx context.Context, w writers.Writer, table string, columns []string) (out [][]any, err error) {
	return h.rows(ctx, w, "all_tenants", table, append([]string{"tenant_id"}, columns...))
}

// rows selects columns of schema.table in w's warehouse and converts the
// values to the suite's Go types (writertest.Canonical).
func (h *harness) rows(ctx context.Context, w writers.Writer, schema, table string, columns []string) (out [][]any, err error) {
	err = h.withConn(ctx, w, func(conn *pgx.Conn) error {
		out, err = selectRows(ctx, conn, schema, table, columns)
		return err
	})
	return out, err
}

// selectRows is rows on conn.
func selectRows(ctx context.Context, conn *pgx.Conn, schema, table string, columns []string) (out [][]any, err error) {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for i, fd := range rows.FieldDescriptions() {
			switch v := vals[i].(type) {
			case pgtype.Numeric:
				vals[i] = numericRat(v)
			case pgtype.Time:
				vals[i] = time.Duration(v.Microseconds) * time.Microsecond
			default:
				// Values decodes JSON; the suite wants its text (JSON null is not SQL NULL).
				if raw := rows.RawValues()[i]; fd.DataTypeOID == pgtype.JSONBOID && raw != nil {
					if fd.Format == pgtype.BinaryFormatCode {
						raw = raw[1:] // binary jsonb: a version byte, then the text
					}
					vals[i] = string(raw)
				}
			}
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

func numericRat(n pgtype.Numeric) *big.Rat {
	r := new(big.Rat).SetInt(n.Int)
	e := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(n.Exp, -n.Exp))), nil))
	if n.Exp < 0 {
		return r.Quo(r, e)
	}
	return r.Mul(r, e)
}

func TestConformance(t *testing.T) {
	writertest.RunConformance(t, &harness{urls: map[writers.Writer]string{}})
}
