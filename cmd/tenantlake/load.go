package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/writers"
)

var loadFlags struct {
	tenant   string
	snapshot string
	at       string
	latest   bool
	target   string
	reason   string
}

var loadCmd = &cobra.Command{
	Use:   "load --tenant T (--snapshot S | --at TIME | --latest) [--target URL] [--reason R]",
	Short: "Load one of a tenant's snapshots from the lake into a warehouse, validated, then live",
	Long: `load loads one committed snapshot of a tenant into a target: into staging, then
validated against the snapshot's manifest (row counts; column profiles and schema
unless switched off), then promoted so it is live. On a validation failure nothing
is promoted (quarantined) and the live tables stay as they were.

Which snapshot: --snapshot ID, --latest, or --at TIME (the newest snapshot at or
before TIME: RFC 3339, a date YYYY-MM-DD meaning the end of that day in UTC, or a
snapshot id). --at is a replay: it replaces a newer live snapshot on purpose. A
manual or scheduled load of a snapshot older than the live one is skipped as
stale; loading the live snapshot again changes nothing (already-live).

The reason defaults to replay with --at and manual otherwise; --reason overrides.

Targets (--target, or the environment variable TENANTLAKE_TARGET):
  postgres://user@host:port/db?...   a PostgreSQL warehouse: one schema per tenant
      (tenant_<id>), all_tenants combined tables, the tenantlake.live and tenantlake.loads
      tables. Options in the query, removed before connecting:
        profile_check=false     skip the column profile checks
        schema_check=false      skip the schema check
        schema_template=T       live schema name, {tenant} replaced (tenant_{tenant})
        staging_template=T      staging schema name (tenantlake_staging_{tenant})
        all_tenants_schema=S    the all-tenants tables' schema (all_tenants)
        name=N                  the target's name in outcomes and the lake's ledger (postgres)
        changes=true            keep <table>_changes in each tenant's schema: every row the
                                load inserts, deletes or updates, against the live snapshot
      tenantlake drops or replaces only the schemas, tables and views it created
      (recorded in tenantlake.schemas and tenantlake.tables): an option naming a
      schema it did not create, or a reserved one (public, tenantlake, pg_*), is
      refused before anything is written; users' views over its tables keep
      working, or the load fails naming them.
  Passwords belong in PGPASSWORD or ~/.pgpass rather than in the URL.
  bigquery://PROJECT?...   BigQuery: one dataset per tenant (tenant_<id>), a staging
      dataset whose tables expire, all_tenants combined tables, the tenantlake_ledger.live and
      .loads tables. Options: location=L, dataset_template=T, staging_dataset=D,
      all_tenants_dataset=D, ledger_dataset=D, profile_check=false, schema_check=false,
      changes=true (<table>_changes in each tenant's dataset, as for postgres),
      mode=copy|ctas (promotion; ctas for the emulator), stream_format=parquet|json
      (how parts of a lake not on GCS are sent; json for the emulator), labels=k:v,k:v, name=N,
      endpoint=URL (an emulator, no authentication). Credentials come from the
      environment (Application Default Credentials).

Exits non-zero when the load failed or was quarantined.`,
	Example: `  tenantlake load --tenant acme --latest --target postgres://localhost:5432/warehouse
  tenantlake load --tenant acme --at 2026-11-21T02:00:00Z --target postgres://localhost/warehouse
  tenantlake load --tenant acme --snapshot 20261121T020304.123Z --reason manual --json`,
	Args: cobra.NoArgs,
	RunE: runLoad,
}

func init() {
	f := loadCmd.Flags()
	f.StringVar(&loadFlags.tenant, "tenant", "", "tenant id (required)")
	f.StringVar(&loadFlags.snapshot, "snapshot", "", "snapshot id to load")
	f.StringVar(&loadFlags.at, "at", "", "replay the newest snapshot at or before this time")
	f.BoolVar(&loadFlags.latest, "latest", false, "load the newest snapshot")
	f.StringVar(&loadFlags.target, "target", envOr("TENANTLAKE_TARGET", ""), "target URL, e.g. postgres://host/db (env TENANTLAKE_TARGET)")
	redactDefault(f, "target")
	f.StringVar(&loadFlags.reason, "reason", "", "scheduled, manual or replay (default: replay with --at, else manual)")
	must(loadCmd.MarkFlagRequired("tenant"))
	loadCmd.MarkFlagsMutuallyExclusive("snapshot", "at", "latest")
	loadCmd.MarkFlagsOneRequired("snapshot", "at", "latest")
	root.AddCommand(loadCmd)
}

func runLoad(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := loadFlags
	if err := checkTenantFlag(f.tenant); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if f.target == "" {
		return errors.New("load: no target: give --target URL or set TENANTLAKE_TARGET")
	}
	reason := f.reason
	if reason == "" {
		reason = writers.ReasonManual
		if f.at != "" {
			reason = writers.ReasonReplay
		}
	}
	return withLake(ctx, func(lk *lake.Lake) error {
		w, err := ops.OpenTarget(ctx, f.target)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		id, err := resolveSnapshot(ctx, lk, f.tenant, f.snapshot, f.at, f.latest)
		if err != nil {
			return errors.Join(fmt.Errorf("load: %w", err), w.Close())
		}
		out, lerr := w.Load(ctx, lk, writers.Request{Tenant: f.tenant, SnapshotID: id, Reason: reason, RequestID: "cli"})
		if cerr := w.Close(); cerr != nil {
			lerr = errors.Join(lerr, fmt.Errorf("close target %s: %w", w.Target(), cerr))
		}
		if out != nil {
			if err := printOutcome(cmd.OutOrStdout(), out); err != nil {
				return errors.Join(lerr, err)
			}
		}
		if lerr != nil {
			return lerr
		}
		if out.Outcome == writers.OutcomeQuarantined || out.Outcome == writers.OutcomeFailed {
			return fmt.Errorf("load %s/%s: %s: %s", out.Tenant, out.SnapshotID, out.Outcome, out.Message)
		}
		return nil
	})
}

// resolveSnapshot picks the snapshot id from exactly one of id, at and latest.
func resolveSnapshot(ctx context.Context, lk *lake.Lake, tenantID, id, at string, latest bool) (string, error) {
	switch {
	case id != "":
		if _, err := lake.ParseSnapshotID(id); err != nil {
			return "", err
		}
		// An id the lake has no committed snapshot of is refused here, as
		// the Load function refuses it: the write strategy would call an
		// older one skipped-stale, and record a load of a snapshot that
		// does not exist.
		if _, err := lk.Manifest(ctx, tenantID, id); errors.Is(err, lake.ErrNotFound) {
			return "", fmt.Errorf("--snapshot: tenant %s has no committed snapshot %s", tenantID, id)
		}
		return id, nil
	case at != "":
		t, err := lake.ParseAsOf(at)
		if err != nil {
			return "", err
		}
		s, err := lk.Resolve(ctx, tenantID, t)
		if err != nil {
			return "", err
		}
		return s.SnapshotID, nil
	case latest:
		s, err := lk.Latest(ctx, tenantID)
		if err != nil {
			return "", err
		}
		return s.SnapshotID, nil
	}
	return "", errors.New("give one of --snapshot, --at or --latest")
}

// printOutcome prints a load's outcome: JSON with --json, else a summary and
// one line per table.
func printOutcome(w io.Writer, out *writers.Outcome) error {
	if g.json {
		return printJSON(w, out)
	}
	fmt.Fprintf(w, "tenant %s snapshot %s → %s (%s): %s\n", out.Tenant, out.SnapshotID, out.Target, out.Reason, out.Outcome)
	live := out.Live
	if live == "" {
		live = "none"
	}
	if out.PreviousLive != "" && out.PreviousLive != out.Live {
		live += " (was " + out.PreviousLive + ")"
	}
	fmt.Fprintf(w, "live: %s\n", live)
	if out.Message != "" {
		fmt.Fprintf(w, "note: %s\n", out.Message)
	}
	for _, c := range out.SourceChanges {
		fmt.Fprintf(w, "source changed: %s\n", c)
	}
	if c := out.Changes; c != nil {
		if c.Note != "" {
			fmt.Fprintf(w, "change tables: %s\n", c.Note)
		} else {
			var n int64
			for _, r := range c.Rows {
				n += r
			}
			fmt.Fprintf(w, "change tables: %d change rows in %d tables, from snapshot %s\n", n, len(c.Rows), c.From)
		}
	}
	fmt.Fprintf(w, "load: %s in %s\n", out.LoadID, out.FinishedAt.Sub(out.StartedAt).Round(1e6))
	if len(out.Tables) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSOURCE ROWS\tLAKE ROWS\tTARGET ROWS\tCHECKS")
	for _, t := range out.Tables {
		ok, failed := 0, []string{}
		for _, c := range t.Checks {
			if c.OK {
				ok++
			} else {
				failed = append(failed, fmt.Sprintf("%s (expected %s, got %s)", c.Name, c.Expected, c.Actual))
			}
		}
		checks := fmt.Sprintf("%d/%d ok", ok, len(t.Checks))
		if len(failed) > 0 {
			checks += "; FAILED: " + strings.Join(failed, "; ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", t.Table, t.SourceRows, t.LakeRows, t.TargetRows, checks)
	}
	return tw.Flush()
}
