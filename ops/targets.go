package ops

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/tenantlake/tenantlake/writers"
	bqwriter "github.com/tenantlake/tenantlake/writers/bigquery"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// OpenTarget opens the write strategy for a target URL, by scheme. Each
// write strategy is one case here; `tenantlake load --help` documents the
// options each takes.
func OpenTarget(ctx context.Context, target string) (writers.Writer, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target URL: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return openPostgresTarget(ctx, u)
	case "bigquery":
		return bqwriter.Open(ctx, target) // parameters: writers/bigquery.ConfigFromURL
	}
	return nil, fmt.Errorf("target %s: unknown scheme %q (want postgres:// or bigquery://)", u.Redacted(), u.Scheme)
}

// openPostgresTarget opens a PostgreSQL warehouse; the options it takes from
// the query are removed before connecting.
func openPostgresTarget(ctx context.Context, u *url.URL) (writers.Writer, error) {
	cfg := postgres.Config{}
	q := u.Query()
	for key, set := range map[string]func(string) error{
		"profile_check":      func(v string) (err error) { cfg.SkipProfile, err = skipFlag(v); return },
		"schema_check":       func(v string) (err error) { cfg.SkipSchema, err = skipFlag(v); return },
		"schema_template":    func(v string) error { cfg.SchemaTemplate = v; return nil },
		"staging_template":   func(v string) error { cfg.StagingTemplate = v; return nil },
		"all_tenants_schema": func(v string) error { cfg.AllTenantsSchema = v; return nil },
		"name":               func(v string) error { cfg.Name = v; return nil },
	} {
		if !q.Has(key) {
			continue
		}
		if err := set(q.Get(key)); err != nil {
			return nil, fmt.Errorf("target %s: %s: %w", u.Redacted(), key, err)
		}
		q.Del(key)
	}
	conn := *u
	conn.RawQuery = q.Encode()
	cfg.URL = conn.String()
	return postgres.New(ctx, cfg)
}

// skipFlag reads a check switch ("true" keeps the check, "false" skips it).
func skipFlag(v string) (bool, error) {
	on, err := strconv.ParseBool(v)
	return !on, err
}
