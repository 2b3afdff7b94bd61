package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// create makes database name (reached at dbURL) and fills it with g's
// tenant. With replace, an existing database of that name is dropped first;
// without, it is an error.
func create(ctx context.Context, admin, name, dbURL string, g *gen, replace bool) (err error) {
	a, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the admin database: %w", err)
	}
	defer closeConn(ctx, a, &err)
	var exists bool
	if err := a.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if exists {
		if !replace {
			return fmt.Errorf("database %s already exists: use --replace to drop and recreate it, or --mutate to change it", name)
		}
		if _, err := a.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	if _, err := a.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn, &err)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		s := g.sizes
		steps := []func() (int64, error){
			func() (int64, error) {
				return copyRows(ctx, tx, "customers", customerCols, s.Customers, func(i int) []any { return g.customer(int64(i + 1)) })
			},
			func() (int64, error) {
				return copyRows(ctx, tx, "products", productCols, s.Products, func(i int) []any { return g.product(int64(i + 1)) })
			},
			func() (int64, error) { return g.copyOrders(ctx, tx, 1, int64(s.Orders), s.Customers, s.Products) },
			func() (int64, error) { return g.copyEvents(ctx, tx, 1, int64(s.Events), s.Customers) },
			func() (int64, error) {
				return copyRows(ctx, tx, "attachments", attachmentCols, s.Attachments, func(i int) []any { return g.attachment(int64(i+1), s.Customers) })
			},
			func() (int64, error) {
				return copyRows(ctx, tx, "audit_log", auditCols, s.Audit, func(i int) []any { return g.audit(int64(i + 1)) })
			},
			func() (int64, error) {
				return copyRows(ctx, tx, "support_tickets", ticketCols, s.Tickets, func(i int) []any { return g.ticket(int64(i+1), s.Customers) })
			},
			func() (int64, error) {
				tax := g.taxRows()
				return copyRows(ctx, tx, "billing.tax_rates", taxCols, len(tax), func(i int) []any { return tax[i] })
			},
		}
		for _, step := range steps {
			if _, err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// copyOrders copies orders o0..o1 (ids) with their lines, invoices and
// payments; they refer to customers 1..customers and products 1..products.
// Each table is one COPY, streamed: an order is regenerated from its id for
// each table rather than kept.
func (g *gen) copyOrders(ctx context.Context, tx pgx.Tx, o0, o1 int64, customers, products int) (int64, error) {
	n := int(o1 - o0 + 1)
	orderAt := func(i int64) order { return g.order(i, customers, products) }
	total, err := copyRows(ctx, tx, "orders", orderCols, n, func(i int) []any { return orderAt(o0 + int64(i)).row() })
	if err != nil {
		return total, err
	}
	// each streams the rows f makes from every order.
	each := func(table string, cols []string, f func(order) [][]any) error {
		next, pending := o0, [][]any(nil)
		src := pgx.CopyFromFunc(func() ([]any, error) {
			for len(pending) == 0 {
				if next > o1 {
					return nil, nil
				}
				pending = f(orderAt(next))
				next++
			}
			row := pending[0]
			pending = pending[1:]
			return row, nil
		})
		got, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, src)
		total += got
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table, describe(err))
		}
		return nil
	}
	if err := each("order_items", itemCols, order.itemRows); err != nil {
		return total, err
	}
	invoice := func(o order) [][]any {
		if !o.invoiced() {
			return nil
		}
		return [][]any{g.invoiceRow(o)}
	}
	if err := each("invoices", invoiceCols, invoice); err != nil {
		return total, err
	}
	payments := func(o order) [][]any {
		if !o.invoiced() {
			return nil
		}
		return g.paymentRows(o, g.invoiceRow(o))
	}
	return total, each("payments", paymentCols, payments)
}

// copyEvents copies events e0..e1 (ids), referring to customers 1..customers.
func (g *gen) copyEvents(ctx context.Context, tx pgx.Tx, e0, e1 int64, customers int) (int64, error) {
	return copyRows(ctx, tx, "events", eventCols, int(e1-e0+1), func(i int) []any { return g.event(e0+int64(i), customers) })
}

// copyRows copies n rows made by row(0..n-1) into table with COPY.
func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, n int, row func(int) []any) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	schema, name, ok := strings.Cut(table, ".")
	ident := pgx.Identifier{schema}
	if ok {
		ident = pgx.Identifier{schema, name}
	}
	got, err := tx.CopyFrom(ctx, ident, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	if err != nil {
		return got, fmt.Errorf("copy into %s: %w", table, describe(err))
	}
	return got, nil
}

// describe adds PostgreSQL's detail to an error, where it has one.
func describe(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Errorf("%w (%s)", err, pe.Detail)
	}
	return err
}
