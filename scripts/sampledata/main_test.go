package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fingerprints returns, per tenant and table, an MD5 of the table's rows in
// text form, in a stable order.
func fingerprints(t *testing.T, rep report) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, tr := range rep.Tenants {
		u := strings.Replace(pgtest.AdminURL(t), "/postgres?", "/"+tr.Database+"?", 1)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range tableNames {
			schema, name, _ := strings.Cut(tb, ".")
			var sum string
			q := fmt.Sprintf("SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t", pgx.Identifier{schema, name}.Sanitize())
			if err := conn.QueryRow(ctx, q).Scan(&sum); err != nil {
				t.Fatalf("%s.%s: %v", tr.Tenant, tb, err)
			}
			out[tr.Tenant+"."+tb] = sum
		}
		if err := conn.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// runJSON runs sampledata with o and decodes its JSON summary.
func runJSON(t *testing.T, o options) report {
	t.Helper()
	o.admin, o.json = pgtest.AdminURL(t), true
	if o.scale == 0 {
		o.scale = 1
	}
	var buf bytes.Buffer
	if err := run(context.Background(), o, &buf); err != nil {
		t.Fatalf("sampledata %+v: %v", o, err)
	}
	var rep report
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("JSON summary: %v\n%s", err, buf.String())
	}
	return rep
}

// dropDatabases drops, when the test ends, the databases it made.
func dropDatabases(t *testing.T, prefixes ...string) {
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pgtest.AdminURL(t))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for _, p := range prefixes {
			for _, tn := range tenantNames[:3] {
				if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{p + tn}.Sanitize()+" WITH (FORCE)"); err != nil {
					t.Error(err)
				}
			}
		}
	})
}

func TestSampleData(t *testing.T) {
	dir := t.TempDir()
	dropDatabases(t, "sda_", "sdb_", "sdc_")
	a := runJSON(t, options{tenants: 3, seed: 7, prefix: "sda_", registry: filepath.Join(dir, "a.yaml")})
	b := runJSON(t, options{tenants: 3, seed: 7, prefix: "sdb_", registry: filepath.Join(dir, "b.yaml")})
	c := runJSON(t, options{tenants: 1, seed: 8, prefix: "sdc_", registry: filepath.Join(dir, "c.yaml")})

	// Shapes: every table filled except coupons; sizes vary per tenant.
	if len(a.Tenants) != 3 || a.Tenants[0].Tenant != "acme" || a.Tenants[1].Tenant != "globex" || a.Tenants[2].Tenant != "initech" {
		t.Fatalf("tenants %+v, want acme, globex, initech", a.Tenants)
	}
	if len(tableNames) != 12 {
		t.Errorf("%d tables, want 12", len(tableNames))
	}
	for _, tr := range a.Tenants {
		for _, tb := range tableNames {
			n := tr.Tables[tb]
			if (tb == "public.coupons") != (n == 0) || n > 20000 {
				t.Errorf("%s %s: %d rows", tr.Tenant, tb, n)
			}
		}
	}
	if a.Tenants[0].Tables["public.customers"] == a.Tenants[1].Tables["public.customers"] && a.Tenants[1].Tables["public.customers"] == a.Tenants[2].Tables["public.customers"] {
		t.Errorf("all tenants have %d customers; sizes should vary", a.Tenants[0].Tables["public.customers"])
	}

	// Deterministic: the same seed gives the same rows; another seed does not.
	fa, fb, fc := fingerprints(t, a), fingerprints(t, b), fingerprints(t, c)
	for k, v := range fa {
		if fb[k] != v {
			t.Errorf("%s differs between two runs with seed 7", k)
		}
	}
	if fa["acme.public.orders"] == fc["acme.public.orders"] {
		t.Error("acme's orders are the same with seeds 7 and 8")
	}

	// The registry lists the tenants and their databases can be reached.
	reg, err := tenant.OpenRegistry(context.Background(), a.Registry)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := reg.List(context.Background())
	if err != nil || len(ts) != 3 {
		t.Fatalf("registry: %v, %v", ts, err)
	}
	for _, tn := range ts {
		conn, err := pgx.Connect(context.Background(), tn.Connection)
		if err != nil || !tn.Active || !strings.Contains(tn.Connection, "/sda_"+tn.ID) {
			t.Fatalf("registry entry %+v: %v", tn, err)
		}
		if err := conn.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	// Creating again fails unless told to replace.
	var buf bytes.Buffer
	err = run(context.Background(), options{admin: pgtest.AdminURL(t), tenants: 1, seed: 7, prefix: "sda_", scale: 1, registry: filepath.Join(dir, "x.yaml")}, &buf)
	if err == nil || !strings.Contains(err.Error(), "sda_acme already exists") {
		t.Errorf("create over an existing database: %v", err)
	}

	// Mutation changes rows, deterministically, and differently each time.
	ma := runJSON(t, options{tenants: 3, seed: 7, prefix: "sda_", mutate: true})
	mb := runJSON(t, options{tenants: 3, seed: 7, prefix: "sdb_", mutate: true})
	fma, fmb := fingerprints(t, ma), fingerprints(t, mb)
	for _, tr := range ma.Tenants {
		if tr.Updated == 0 || tr.Inserted == 0 || tr.Deleted == 0 {
			t.Errorf("mutate %s: updated %d, inserted %d, deleted %d; want all > 0", tr.Tenant, tr.Updated, tr.Inserted, tr.Deleted)
		}
	}
	for k, v := range fma {
		if fmb[k] != v {
			t.Errorf("%s differs between two mutations with seed 7", k)
		}
	}
	for _, k := range []string{"acme.public.customers", "acme.public.orders", "acme.public.events", "acme.public.audit_log", "acme.public.support_tickets"} {
		if fma[k] == fa[k] {
			t.Errorf("%s unchanged by mutate", k)
		}
	}
	if fma["acme.public.coupons"] != fa["acme.public.coupons"] || fma["acme.billing.tax_rates"] != fa["acme.billing.tax_rates"] {
		t.Error("mutate changed coupons or tax_rates")
	}
	again := fingerprints(t, runJSON(t, options{tenants: 3, seed: 7, prefix: "sda_", mutate: true}))
	if again["acme.public.events"] == fma["acme.public.events"] {
		t.Error("a second mutation changed nothing in events")
	}
}
