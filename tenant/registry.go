package tenant

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Tenant is one entry of the tenant registry.
type Tenant struct {
	ID string `json:"tenant_id" yaml:"tenant_id"`
	// Connection says how to reach the tenant's database: a PostgreSQL
	// connection string (development), "env:NAME" (the connection string is
	// in environment variable NAME) or "file:/path" (a file holding it, such
	// as a mounted Secret Manager secret). See ResolveConnection; never log
	// it resolved, log Redact(conn) instead.
	Connection string   `json:"connection" yaml:"connection"`
	Active     bool     `json:"is_active" yaml:"is_active"`
	Include    []string `json:"include,omitempty" yaml:"include,omitempty"` // table patterns (schema.table, path.Match globs); empty means all
	Exclude    []string `json:"exclude,omitempty" yaml:"exclude,omitempty"` // table patterns to leave out, applied after Include
}

// Selects reports whether the tenant's include/exclude patterns select the
// table schema.table: it must match an Include pattern (any table when
// Include is empty) and no Exclude pattern. Patterns are path.Match globs
// against "schema.table", e.g. "public.*" or "billing.tax_rates". Registries
// reject malformed patterns when they load, so a malformed one (which
// matches nothing here) only occurs in a Tenant built by hand.
func (t Tenant) Selects(schema, table string) bool {
	name := schema + "." + table
	if len(t.Include) > 0 && !matchAny(t.Include, name) {
		return false
	}
	return !matchAny(t.Exclude, name)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// Registry lists tenants. Implementations validate every tenant id with
// ValidateID and fail on a bad one rather than skip it.
type Registry interface {
	// List returns every tenant, active or not, sorted by id.
	List(ctx context.Context) ([]Tenant, error)
	// Get returns one tenant; the error wraps ErrNotFound if there is none,
	// and ErrInvalidID if id is not a valid tenant id (the error is then
	// ValidateID's: id is at fault, not the registry) or if the registry
	// holds an invalid entry: Get checks the whole registry as List does.
	Get(ctx context.Context, id string) (Tenant, error)
}

// OpenRegistry opens the tenant registry named by ref:
//
//   - a postgres:// or postgresql:// URL: a database with a table
//     tenant_registry (tenant_id text primary key, connection text,
//     is_active bool, include text[], exclude text[]), read on every call;
//   - anything else: the path of a YAML file, read once here.
//
// A YAML registry looks like this (is_active is true when left out; include
// and exclude are optional):
//
//	tenants:
//	  - tenant_id: acme
//	    connection: env:ACME_DSN
//	    is_active: true
//	    include: ["public.*", "billing.*"]
//	    exclude: ["public.audit_log"]
//
// Every tenant id is checked with ValidateID, ids must be unique and patterns
// well formed; a registry breaking any of these fails to open (YAML) or to
// list or get (PostgreSQL) with an error naming the tenant. Errors never
// hold a password: a URL in an error is Redact'ed, and one that does not
// parse is reported without pgx's or net/url's text (see ParseConfig).
func OpenRegistry(ctx context.Context, ref string) (Registry, error) {
	switch {
	case ref == "":
		return nil, errors.New("tenant registry: none given (a YAML file path or a postgres:// URL)")
	case strings.HasPrefix(ref, "postgres://"), strings.HasPrefix(ref, "postgresql://"):
		return openPostgresRegistry(ctx, ref)
	}
	return openFileRegistry(ref)
}

// checkTenants validates a registry's entries (ids, uniqueness, patterns) and
// sorts them by id. src names the registry in errors.
func checkTenants(src string, ts []Tenant) error {
	seen := map[string]bool{}
	for i, t := range ts {
		if err := ValidateID(t.ID); err != nil {
			return fmt.Errorf("tenant registry %s: entry %d: %w", src, i+1, err)
		}
		if seen[t.ID] {
			return fmt.Errorf("tenant registry %s: tenant %s is listed more than once", src, t.ID)
		}
		seen[t.ID] = true
		for _, p := range append(append([]string{}, t.Include...), t.Exclude...) {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return fmt.Errorf("tenant registry %s: tenant %s: table pattern %q is not a valid schema.table glob", src, t.ID, p)
			}
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	return nil
}

// get is Get of a registry whose tenants ts have passed checkTenants. src
// names the registry in errors.
func get(src string, ts []Tenant, id string) (Tenant, error) {
	for _, t := range ts {
		if t.ID == id {
			return t, nil
		}
	}
	return Tenant{}, fmt.Errorf("tenant registry %s: tenant %s: %w", src, id, ErrNotFound)
}
