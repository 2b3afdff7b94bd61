// Command sampledata creates sample tenant databases for tenantlake's demo,
// tests and benchmarks: one PostgreSQL database per tenant (tl_<tenant> by
// default, see --prefix) with identical schemas of twelve tables of realistic
// shapes (one always empty), deterministic from a seed, with row counts that
// vary per tenant. It writes a tenant registry YAML file listing them.
//
// With --mutate it changes existing sample databases instead (updates, inserts
// and deletes, deterministic from the seed and the databases' contents), so a
// second snapshot differs from the first.
//
// Run `go run ./scripts/sampledata --help`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/tenant"
	"gopkg.in/yaml.v3"
)

// tenantNames are the first tenant ids handed out; then tenant_NNN.
var tenantNames = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent", "aperture"}

type options struct {
	admin, registry string
	prefix          string
	tenants         int
	seed            uint64
	scale           float64
	mutate, replace bool
	json            bool
}

// tenantReport is what the program did to one tenant database.
type tenantReport struct {
	Tenant     string           `json:"tenant"`
	Database   string           `json:"database"`
	Connection string           `json:"connection"` // password redacted
	Rows       int64            `json:"rows"`       // all tables, after the run
	Tables     map[string]int64 `json:"tables"`     // schema.table: rows after the run
	Updated    int64            `json:"updated,omitempty"`
	Inserted   int64            `json:"inserted,omitempty"`
	Deleted    int64            `json:"deleted,omitempty"` // rows deleted directly, not counting cascades
}

type report struct {
	Mode     string         `json:"mode"` // "create" or "mutate"
	Seed     uint64         `json:"seed"`
	Registry string         `json:"registry,omitempty"`
	Tenants  []tenantReport `json:"tenants"`
	Seconds  float64        `json:"seconds"`
}

func main() {
	var o options
	fs := flag.NewFlagSet("sampledata", flag.ExitOnError)
	fs.StringVar(&o.admin, "admin", os.Getenv("TENANTLAKE_PG_ADMIN"), "PostgreSQL superuser URL of the cluster to create the databases in (env TENANTLAKE_PG_ADMIN)")
	fs.IntVar(&o.tenants, "tenants", 3, "number of tenants: acme, globex, initech, umbrella, ... then tenant_013, ...")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same data")
	fs.Float64Var(&o.scale, "scale", 1, "multiply row counts by this (1: a few hundred to a few thousand rows per table)")
	fs.StringVar(&o.registry, "registry", "tenants.yaml", "tenant registry YAML file to write (not written with --mutate)")
	fs.StringVar(&o.prefix, "prefix", "tl_", "database name prefix: database = prefix + tenant id")
	fs.BoolVar(&o.replace, "replace", false, "drop and recreate tenant databases that already exist")
	fs.BoolVar(&o.mutate, "mutate", false, "change the existing sample databases (updates, inserts, deletes) instead of creating them")
	fs.BoolVar(&o.json, "json", false, "print a JSON summary on stdout")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `sampledata creates sample tenant databases for tenantlake: one database per tenant
(tl_<tenant>) with identical schemas of twelve tables (customers, products, orders,
order_items with a composite key, invoices, payments, events with jsonb, attachments
with arrays, uuid and bytea, audit_log without a primary key, support_tickets, an
always empty coupons table, billing.tax_rates), deterministic from --seed, with row
counts that vary per tenant. It writes a tenant registry YAML file listing them.

--mutate changes the existing databases (updates, inserts, deletes) deterministically,
so that a second snapshot differs from the first.

Examples:
  go run ./scripts/sampledata --admin postgres://postgres@127.0.0.1:5432/postgres --tenants 3 --registry tenants.yaml
  go run ./scripts/sampledata --admin "$URL" --tenants 3 --mutate --json

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sampledata:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	switch {
	case o.admin == "":
		return errors.New("no --admin URL (or TENANTLAKE_PG_ADMIN)")
	case o.tenants < 1:
		return fmt.Errorf("--tenants %d: want at least 1", o.tenants)
	case o.prefix == "" || tenant.ValidateID(o.prefix+"x") != nil:
		return fmt.Errorf("--prefix %q: want lower-case letters, digits and _, starting with a letter", o.prefix)
	case o.scale <= 0:
		return fmt.Errorf("--scale %g: want more than 0", o.scale)
	}
	start := time.Now()
	rep := report{Mode: "create", Seed: o.seed}
	if o.mutate {
		rep.Mode = "mutate"
	}
	var entries []tenant.Tenant
	for i := range o.tenants {
		id := tenantID(i)
		db := o.prefix + id
		dbURL, err := databaseURL(o.admin, db)
		if err != nil {
			return err
		}
		g := newGen(id, o.seed, o.scale)
		tr := tenantReport{Tenant: id, Database: db, Connection: tenant.Redact(dbURL)}
		if o.mutate {
			err = mutate(ctx, dbURL, g, &tr)
		} else {
			err = create(ctx, o.admin, db, dbURL, g, o.replace)
		}
		if err == nil {
			err = count(ctx, dbURL, &tr)
		}
		if err != nil {
			return fmt.Errorf("tenant %s (database %s): %w", id, db, err)
		}
		rep.Tenants = append(rep.Tenants, tr)
		entries = append(entries, tenant.Tenant{ID: id, Connection: dbURL, Active: true})
	}
	if !o.mutate {
		if err := writeRegistry(o.registry, entries); err != nil {
			return err
		}
		rep.Registry = o.registry
	}
	rep.Seconds = time.Since(start).Seconds()
	if o.json {
		return jsonEncoder(w).Encode(rep)
	}
	return printReport(w, rep)
}

func tenantID(i int) string {
	if i < len(tenantNames) {
		return tenantNames[i]
	}
	return fmt.Sprintf("tenant_%03d", i+1)
}

// databaseURL is admin with its database replaced by name.
func databaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("--admin %s: want a postgres:// URL", tenant.Redact(admin))
	}
	u.Path = "/" + name
	return u.String(), nil
}

// writeRegistry writes the registry YAML file through a temporary file, so a
// reader never sees half of it.
func writeRegistry(path string, ts []tenant.Tenant) error {
	data, err := yaml.Marshal(map[string]any{"tenants": ts})
	if err != nil {
		return fmt.Errorf("registry %s: %w", path, err)
	}
	header := "# Written by scripts/sampledata: sample tenants for development.\n"
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tenants-*.yaml")
	if err != nil {
		return fmt.Errorf("registry %s: %w", path, err)
	}
	_, err = tmp.WriteString(header + string(data))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("registry %s: %w", path, err)
	}
	return nil
}

// count fills tr.Tables and tr.Rows from the database.
func count(ctx context.Context, dbURL string, tr *tenantReport) (err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn, &err)
	tr.Tables = map[string]int64{}
	tr.Rows = 0
	for _, t := range tableNames {
		var n int64
		schema, name, _ := strings.Cut(t, ".")
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, name}.Sanitize()).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", t, err)
		}
		tr.Tables[t] = n
		tr.Rows += n
	}
	return nil
}

func closeConn(ctx context.Context, conn *pgx.Conn, err *error) {
	if cerr := conn.Close(ctx); cerr != nil && *err == nil {
		*err = fmt.Errorf("close connection: %w", cerr)
	}
}

// printReport prints one column per tenant and one line per table.
func printReport(w io.Writer, rep report) error {
	if rep.Mode == "create" {
		fmt.Fprintf(w, "created %d tenant databases (seed %d) in %.1fs; registry: %s\n\n", len(rep.Tenants), rep.Seed, rep.Seconds, rep.Registry)
	} else {
		fmt.Fprintf(w, "mutated %d tenant databases (seed %d) in %.1fs (deleted: direct deletes, not counting cascades)\n\n", len(rep.Tenants), rep.Seed, rep.Seconds)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(name string, value func(tenantReport) any) {
		fmt.Fprint(tw, name, "\t")
		for _, tr := range rep.Tenants {
			fmt.Fprint(tw, value(tr), "\t")
		}
		fmt.Fprintln(tw)
	}
	line("TABLE", func(tr tenantReport) any { return tr.Tenant })
	for _, t := range tableNames {
		line(t, func(tr tenantReport) any { return tr.Tables[t] })
	}
	line("all tables", func(tr tenantReport) any { return tr.Rows })
	if rep.Mode == "mutate" {
		line("updated", func(tr tenantReport) any { return tr.Updated })
		line("inserted", func(tr tenantReport) any { return tr.Inserted })
		line("deleted", func(tr tenantReport) any { return tr.Deleted })
	}
	line("database", func(tr tenantReport) any { return tr.Database })
	return tw.Flush()
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc
}
