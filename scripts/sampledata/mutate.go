package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// mutate changes a sample database the way a day of business would: some
// customers and orders are updated, invoices get paid, new customers, orders
// (with lines, invoices, payments) and events arrive, tickets are deleted,
// old audit rows are purged and some cancelled orders are removed. The
// changes are drawn from the seed and the database's current highest ids, so
// the same database mutated with the same seed changes the same way, and a
// second mutation differs from the first.
func mutate(ctx context.Context, dbURL string, g *gen, tr *tenantReport) (err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn, &err)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var maxCustomer, maxOrder, maxEvent, maxTicket, products int64
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT coalesce(max(id), 0) FROM customers), (SELECT coalesce(max(id), 0) FROM orders),
			(SELECT coalesce(max(id), 0) FROM events), (SELECT coalesce(max(id), 0) FROM support_tickets),
			(SELECT count(*) FROM products)`).Scan(&maxCustomer, &maxOrder, &maxEvent, &maxTicket, &products); err != nil {
			return fmt.Errorf("read highest ids (is this a sample database?): %w", err)
		}
		if maxCustomer == 0 || maxOrder == 0 || products == 0 {
			return fmt.Errorf("no customers, orders or products: not a sample database made by sampledata")
		}
		r := g.rng("mutate", maxEvent)
		ids := func(max int64, n int) []int64 {
			out := make([]int64, n)
			for i := range out {
				out[i] = 1 + r.Int64N(max)
			}
			return out
		}
		exec := func(sql string, args ...any) (int64, error) {
			tag, err := tx.Exec(ctx, sql, args...)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", strings.Join(strings.Fields(sql), " "), describe(err))
			}
			return tag.RowsAffected(), nil
		}
		type step struct {
			into *int64 // the tally the rows count towards
			run  func() (int64, error)
		}
		do := func(steps []step) error {
			for _, s := range steps {
				n, err := s.run()
				*s.into += n
				if err != nil {
					return err
				}
			}
			return nil
		}
		some := func(of int64) int { return 1 + int(of)/20 }
		if err := do([]step{
			{&tr.Updated, func() (int64, error) {
				return exec(`UPDATE customers SET is_vip = NOT is_vip,
					credit_limit = coalesce(credit_limit, 0) + 250.50, notes = 'updated by sampledata --mutate'
					WHERE id = ANY($1)`, ids(maxCustomer, some(maxCustomer)))
			}},
			{&tr.Updated, func() (int64, error) {
				return exec(`UPDATE orders SET status = 'shipped',
					delivery_date = (ordered_at AT TIME ZONE 'UTC')::date + 3
					WHERE id = ANY($1) AND status IN ('new', 'paid')`, ids(maxOrder, some(maxOrder)*3))
			}},
			{&tr.Updated, func() (int64, error) {
				return exec(`UPDATE invoices SET paid_at = issued_on + interval '50 hours'
					WHERE paid_at IS NULL AND order_id = ANY($1)`, ids(maxOrder, some(maxOrder)*3))
			}},
			{&tr.Inserted, func() (int64, error) {
				n := 5 + r.IntN(16)
				return copyRows(ctx, tx, "customers", customerCols, n, func(i int) []any { return g.customer(maxCustomer + 1 + int64(i)) })
			}},
		}); err != nil {
			return err
		}
		// New orders may belong to the new customers too.
		if err := tx.QueryRow(ctx, `SELECT max(id) FROM customers`).Scan(&maxCustomer); err != nil {
			return err
		}
		newOrders, newEvents := int64(5+r.IntN(30)), int64(20+r.IntN(80))
		if err := do([]step{
			{&tr.Inserted, func() (int64, error) {
				return g.copyOrders(ctx, tx, maxOrder+1, maxOrder+newOrders, int(maxCustomer), int(products))
			}},
			{&tr.Inserted, func() (int64, error) {
				return g.copyEvents(ctx, tx, maxEvent+1, maxEvent+newEvents, int(maxCustomer))
			}},
			{&tr.Deleted, func() (int64, error) {
				return exec(`DELETE FROM support_tickets WHERE id = ANY($1)`, ids(max(maxTicket, 1), some(maxTicket)))
			}},
			{&tr.Deleted, func() (int64, error) {
				return exec(`DELETE FROM audit_log WHERE ctid IN
					(SELECT ctid FROM audit_log ORDER BY at, actor, action LIMIT $1)`, 3+r.IntN(20))
			}},
			{&tr.Deleted, func() (int64, error) {
				return exec(`DELETE FROM orders WHERE id = ANY($1) AND status = 'cancelled'`, ids(maxOrder, some(maxOrder)*4))
			}},
		}); err != nil {
			return err
		}
		return nil
	})
}
