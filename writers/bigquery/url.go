package bigquery

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/tenant"
)

// ConfigFromURL parses a target URL:
//
//	bigquery://PROJECT?location=EU&dataset_template=tenant_{tenant}
//	    &staging_dataset=tenantlake_staging&all_tenants_dataset=all_tenants
//	    &ledger_dataset=tenantlake_ledger&mode=copy|ctas&stream_format=parquet|json
//	    &json_columns=json|string&profile_check=false
//	    &schema_check=false&changes=true&labels=team:data,env:dev&name=bigquery
//	    &endpoint=http://127.0.0.1:9050
//
// Every parameter is optional (the defaults of Config) and may be given
// once; New checks their values before anything is written. endpoint points the
// client at a BigQuery emulator, without authentication; otherwise
// credentials come from the environment (Application Default Credentials),
// never from the URL.
func ConfigFromURL(raw string) (Config, error) {
	// Errors name the URL redacted: it should carry no password, but may.
	name := tenant.Redact(raw)
	u, err := tenant.ParseURL(raw)
	if err != nil {
		return Config{}, fmt.Errorf("bigquery target %q: %w", name, err)
	}
	if u.Scheme != "bigquery" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return Config{}, fmt.Errorf("bigquery target %q: want bigquery://PROJECT?parameters", name)
	}
	cfg := Config{Project: u.Host}
	for k, vs := range u.Query() {
		if len(vs) > 1 {
			return Config{}, fmt.Errorf("bigquery target %q: option %s given %d times", name, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "location":
			cfg.Location = v
		case "dataset_template":
			cfg.DatasetTemplate = v
		case "staging_dataset":
			cfg.StagingDataset = v
		case "all_tenants_dataset":
			cfg.AllTenantsDataset = v
		case "ledger_dataset":
			cfg.LedgerDataset = v
		case "mode":
			cfg.Promotion = v
		case "stream_format":
			cfg.StreamFormat = v
		case "name":
			cfg.Name = v
		case "json_columns":
			switch v {
			case "json":
			case "string":
				cfg.JSONAsString = true
			default:
				return Config{}, fmt.Errorf("bigquery target %q: option json_columns=%s: want json or string", name, v)
			}
		case "changes":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("bigquery target %q: changes=%q: %w", name, v, err)
			}
			cfg.Changes = on
		case "profile_check", "schema_check":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("bigquery target %q: %s=%q: %w", name, k, v, err)
			}
			if k == "profile_check" {
				cfg.SkipProfiles = !on
			} else {
				cfg.SkipSchema = !on
			}
		case "labels":
			cfg.Labels = map[string]string{}
			for _, kv := range strings.Split(v, ",") {
				lk, lv, ok := strings.Cut(kv, ":")
				if !ok || lk == "" {
					return Config{}, fmt.Errorf("bigquery target %q: label %q: want key:value", name, kv)
				}
				cfg.Labels[lk] = lv
			}
		case "endpoint":
			if e, err := url.Parse(v); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("bigquery target %q: option endpoint=%s: want http://host:port or https://host:port", name, v)
			}
			cfg.ClientOptions = append(cfg.ClientOptions, option.WithEndpoint(v), option.WithoutAuthentication())
		default:
			return Config{}, fmt.Errorf("bigquery target %q: unknown parameter %q", name, k)
		}
	}
	return cfg, nil
}

// Open returns a Writer for a bigquery:// target URL (ConfigFromURL).
func Open(ctx context.Context, raw string) (*Writer, error) {
	cfg, err := ConfigFromURL(raw)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}
