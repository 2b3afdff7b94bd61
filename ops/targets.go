package ops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
	bqwriter "github.com/tenantlake/tenantlake/writers/bigquery"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// OpenTarget opens the write strategy for a target URL, by scheme. Each
// write strategy is one case here. Errors name the target Redact'ed, and
// never pass on net/url's or pgx's parse errors, which quote the URL.
func OpenTarget(ctx context.Context, target string) (writers.Writer, error) {
	name := tenant.Redact(target)
	u, err := tenant.ParseURL(target)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		cfg, err := postgresTarget(target, u, name)
		if err != nil {
			return nil, err
		}
		return postgres.New(ctx, cfg)
	case "bigquery":
		return bqwriter.Open(ctx, target) // parameters: writers/bigquery.ConfigFromURL
	}
	return nil, fmt.Errorf("target %s: unknown scheme %q (want postgres:// or bigquery://)", name, u.Scheme)
}

// CheckTarget checks a target URL as OpenTarget reads it (it parses, its
// options are known, given once and well formed) without connecting: what
// the front ends run at start, so that a malformed target fails there and
// not at the first load. Errors are OpenTarget's.
func CheckTarget(target string) error {
	name := tenant.Redact(target)
	u, err := tenant.ParseURL(target)
	if err != nil {
		return fmt.Errorf("target %s: %w", name, err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		_, err := postgresTarget(target, u, name)
		return err
	case "bigquery":
		if _, err := bqwriter.ConfigFromURL(target); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("target %s: unknown scheme %q (want postgres:// or bigquery://)", name, u.Scheme)
}

// postgresTarget reads a PostgreSQL warehouse's URL; the options it takes
// from the query are documented in load's help and removed before
// connecting. A bad or repeated option is refused, naming it, before
// anything is written (postgres.New checks the names and templates). name
// is the target's URL, redacted, for errors.
func postgresTarget(target string, u *url.URL, name string) (postgres.Config, error) {
	// Refuse here what pgx cannot parse, or reads otherwise than the
	// options below are read (a password holding '?', say).
	if _, err := tenant.ParseConfig(target); err != nil {
		return postgres.Config{}, fmt.Errorf("target %s: %w", name, err)
	}
	cfg := postgres.Config{}
	q := u.Query()
	for key, set := range map[string]func(string) error{
		"profile_check":      func(v string) (err error) { cfg.SkipProfile, err = skipFlag(v); return },
		"schema_check":       func(v string) (err error) { cfg.SkipSchema, err = skipFlag(v); return },
		"schema_template":    func(v string) (err error) { cfg.SchemaTemplate, err = nonEmpty(v); return },
		"staging_template":   func(v string) (err error) { cfg.StagingTemplate, err = nonEmpty(v); return },
		"all_tenants_schema": func(v string) (err error) { cfg.AllTenantsSchema, err = nonEmpty(v); return },
		"name":               func(v string) (err error) { cfg.Name, err = nonEmpty(v); return },
		"changes":            func(v string) (err error) { cfg.Changes, err = strconv.ParseBool(v); return },
	} {
		if !q.Has(key) {
			continue
		}
		if n := len(q[key]); n > 1 {
			return postgres.Config{}, fmt.Errorf("target %s: option %s given %d times", name, key, n)
		}
		if err := set(q.Get(key)); err != nil {
			return postgres.Config{}, fmt.Errorf("target %s: option %s: %w", name, key, err)
		}
		q.Del(key)
	}
	conn := *u
	// Encode writes a space as '+', which pgx would not decode back (a
	// literal '+' is written %2B): spell spaces %20.
	conn.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	cfg.URL = conn.String()
	return cfg, nil
}

// nonEmpty refuses an option given empty (which would mean the default).
func nonEmpty(v string) (string, error) {
	if v == "" {
		return "", errors.New("empty (leave it out for the default)")
	}
	return v, nil
}

// skipFlag reads a check switch ("true" keeps the check, "false" skips it).
func skipFlag(v string) (bool, error) {
	on, err := strconv.ParseBool(v)
	return !on, err
}
