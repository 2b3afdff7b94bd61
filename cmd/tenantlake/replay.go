package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/functions"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/tenant"
)

var replayFlags struct {
	req ops.ReplayRequest
	url string
}

var replayCmd = &cobra.Command{
	Use:   "replay --tenant T (--at TIME | --snapshot S) [--table T ...] [--target NAME] [--dry-run] [--url URL]",
	Short: "Request a replay: reload a tenant from the snapshot it had at a time",
	Long: `replay resolves the newest committed snapshot of a tenant at or before --at (RFC 3339,
a date meaning the end of that day in UTC, or a snapshot id), or --snapshot, and
requests that the targets load it: it publishes snapshot.committed with reason
replay, which every target's Load function (or only --target's) loads like any
snapshot, replacing a newer live snapshot on purpose. It prints the snapshot, its
tables and row counts and where they will be loaded. --dry-run only prints that.

This is the operation of the Replay function. With --url it calls that function
over HTTP (e.g. a running 'tenantlake run' or 'serve'); otherwise it publishes to
the Pub/Sub of TENANTLAKE_PROJECT (or the emulator of PUBSUB_EMULATOR_HOST), with
the targets of TENANTLAKE_TARGETS.`,
	Example: `  tenantlake replay --tenant acme --at 2026-11-20 --url http://127.0.0.1:8080
  tenantlake replay --tenant acme --snapshot 20261121T020304.123Z --target warehouse --dry-run --url http://127.0.0.1:8080`,
	Args: cobra.NoArgs,
	RunE: runReplay,
}

func init() {
	f := replayCmd.Flags()
	f.StringVar(&replayFlags.req.Tenant, "tenant", "", "tenant id (required)")
	f.StringVar(&replayFlags.req.At, "at", "", "the newest snapshot at or before this time")
	f.StringVar(&replayFlags.req.Snapshot, "snapshot", "", "a snapshot id")
	f.StringArrayVar(&replayFlags.req.Tables, "table", nil, "load only this destination table (repeatable; BigQuery targets only)")
	f.StringVar(&replayFlags.req.Target, "target", "", "load into this target only (its name)")
	f.BoolVar(&replayFlags.req.DryRun, "dry-run", false, "only say what would be loaded where")
	f.StringVar(&replayFlags.url, "url", "", "call the Replay function at this base URL instead of publishing directly")
	must(replayCmd.MarkFlagRequired("tenant"))
	replayCmd.MarkFlagsMutuallyExclusive("at", "snapshot")
	replayCmd.MarkFlagsOneRequired("at", "snapshot")
	root.AddCommand(replayCmd)
}

func runReplay(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	req := replayFlags.req
	if err := checkTenantFlag(req.Tenant); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	var plan ops.ReplayPlan
	if replayFlags.url != "" {
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		// The URL may carry credentials: errors show it redacted, never
		// net/url's parse error, which quotes it.
		shown := tenant.Redact(replayFlags.url)
		base, err := url.Parse(strings.TrimRight(replayFlags.url, "/"))
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return fmt.Errorf("replay: --url %s: want the base URL of the functions, http://HOST:PORT or https://HOST", shown)
		}
		shown = base.Redacted()
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath(config.FunctionReplay).String(), bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("replay: --url %s: %s", shown, "cannot make a request to it")
		}
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if resp.StatusCode/100 != 2 {
			var e struct{ Error string }
			if json.Unmarshal(data, &e) == nil && e.Error != "" {
				return fmt.Errorf("replay refused (%s): %s", resp.Status, e.Error)
			}
			return fmt.Errorf("replay: %s answered %s", shown, resp.Status)
		}
		if err := json.Unmarshal(data, &plan); err != nil {
			return fmt.Errorf("replay: answer: %w", err)
		}
	} else {
		cfg, err := envConfig(cmd, nil, config.Need{Targets: true, Project: !req.DryRun})
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		// replay only reads the lake: a mistyped --lake is an error, never
		// a new empty lake.
		lk, err := openLake(ctx, false)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if err := lk.Close(); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		var pub *events.PubSub
		if !req.DryRun {
			if pub, err = events.Dial(ctx, cfg.Project); err != nil {
				return err
			}
			defer pub.Close()
		}
		var p events.Publisher
		if pub != nil {
			p = pub
		}
		h, err := functions.New(ctx, cfg, p, version, nil)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer h.Ops.Close()
		pl, err := h.Ops.Replay(ctx, req)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		plan = *pl
	}
	return printPlan(cmd.OutOrStdout(), &plan)
}

func printPlan(w io.Writer, p *ops.ReplayPlan) error {
	if g.json {
		return printJSON(w, p)
	}
	verb := "requested"
	if p.DryRun {
		verb = "would load (dry run)"
	}
	fmt.Fprintf(w, "replay of tenant %s: snapshot %s (%s) %s into %s\n", p.Tenant, p.SnapshotID, p.SnapshotTime.Format(time.RFC3339Nano), verb, strings.Join(p.Targets, ", "))
	if p.RequestID != "" {
		fmt.Fprintf(w, "request id: %s\n", p.RequestID)
	}
	for _, t := range p.Tables {
		fmt.Fprintf(w, "  %-30s %12d rows  (from %s)\n", t.Table, t.Rows, t.Source)
	}
	return nil
}
