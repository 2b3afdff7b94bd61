package bigquery

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/api/option"
)

// ConfigFromURL parses a target URL:
//
//	bigquery://PROJECT?location=EU&dataset=tenant_{tenant}&staging=tenantlake_staging
//	    &all_tenants=all_tenants&ledger=tenantlake_ledger&mode=copy|ctas
//	    &profiles=false&schema=false&labels=team:data,env:dev&endpoint=http://127.0.0.1:9050
//
// Every parameter is optional (the defaults of Config). endpoint points the
// client at a BigQuery emulator, without authentication; otherwise
// credentials come from the environment (Application Default Credentials),
// never from the URL.
func ConfigFromURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("bigquery target %q: %w", raw, err)
	}
	if u.Scheme != "bigquery" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return Config{}, fmt.Errorf("bigquery target %q: want bigquery://PROJECT?parameters", raw)
	}
	cfg := Config{Project: u.Host}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "location":
			cfg.Location = v
		case "dataset":
			cfg.DatasetTemplate = v
		case "staging":
			cfg.StagingDataset = v
		case "all_tenants":
			cfg.AllTenantsDataset = v
		case "ledger":
			cfg.LedgerDataset = v
		case "mode":
			cfg.Promotion = v
		case "name":
			cfg.Name = v
		case "profiles", "schema":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("bigquery target %q: %s=%q: %w", raw, k, v, err)
			}
			if k == "profiles" {
				cfg.SkipProfiles = !on
			} else {
				cfg.SkipSchema = !on
			}
		case "labels":
			cfg.Labels = map[string]string{}
			for _, kv := range strings.Split(v, ",") {
				lk, lv, ok := strings.Cut(kv, ":")
				if !ok || lk == "" {
					return Config{}, fmt.Errorf("bigquery target %q: label %q: want key:value", raw, kv)
				}
				cfg.Labels[lk] = lv
			}
		case "endpoint":
			cfg.ClientOptions = append(cfg.ClientOptions, option.WithEndpoint(v), option.WithoutAuthentication())
		default:
			return Config{}, fmt.Errorf("bigquery target %q: unknown parameter %q", raw, k)
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
