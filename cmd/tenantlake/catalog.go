package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
)

var snapshotsFlags struct{ tenant string }

var snapshotsCmd = &cobra.Command{
	Use:   "snapshots --tenant T",
	Short: "List a tenant's committed snapshots in the lake, newest first",
	Long: `snapshots lists the committed snapshots of one tenant, newest first, with the
number of tables, rows, files and bytes each holds (read from its manifest).
Parts of a read that never committed are not listed: they are not snapshots.`,
	Example: `  tenantlake snapshots --lake file:///var/lib/tenantlake --tenant acme
  tenantlake snapshots --lake gs://my-bucket/lake --tenant acme --json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		t := snapshotsFlags.tenant
		if err := checkTenantFlag(t); err != nil {
			return fmt.Errorf("snapshots: %w", err)
		}
		return withLake(ctx, func(l *lake.Lake) error { return listSnapshots(cmd, l, t) })
	},
}

func listSnapshots(cmd *cobra.Command, l *lake.Lake, t string) error {
	ctx := cmd.Context()
	snaps, err := l.Snapshots(ctx, t)
	if err != nil {
		return fmt.Errorf("snapshots of tenant %s: %w", t, err)
	}
	out := make([]ops.Summary, 0, len(snaps))
	for _, s := range snaps {
		m, err := l.Manifest(ctx, t, s.SnapshotID)
		if err != nil {
			return fmt.Errorf("tenant %s snapshot %s: %w", t, s.SnapshotID, err)
		}
		out = append(out, ops.Summarize(m))
	}
	w := cmd.OutOrStdout()
	if g.json {
		return printJSON(w, out)
	}
	if len(out) == 0 {
		_, err := fmt.Fprintf(w, "tenant %s has no committed snapshot in %s\n", t, l.URL())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tTIME (UTC)\tTABLES\tROWS\tFILES\tBYTES\tSKIPPED")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\n", s.SnapshotID, s.Time.UTC().Format("2006-01-02 15:04:05.000"), s.Tables, s.Rows, s.Files, humanBytes(s.Bytes), s.Skipped)
	}
	return tw.Flush()
}

var showFlags struct {
	tenant, snapshot, at string
	columns              bool
}

var showCmd = &cobra.Command{
	Use:   "show --tenant T [--snapshot S | --at TIME]",
	Short: "Show what a snapshot holds: source, tables, rows, files, columns",
	Long: `show prints the manifest of one committed snapshot of a tenant: where it was
read from (server version, transaction snapshot, WAL position), and per table the
rows, files, bytes and columns it holds, and the tables the read skipped and why.

Pick the snapshot with --snapshot (its id), or with --at: the newest snapshot at or
before a time, given in RFC 3339 (2026-11-21T02:00:00Z), as a date (2026-11-21,
meaning the end of that day in UTC) or as a snapshot id. With neither, the newest
snapshot is shown. --json prints the whole manifest.`,
	Example: `  tenantlake show --tenant acme
  tenantlake show --tenant acme --snapshot 20261121T020304.123Z --columns
  tenantlake show --tenant acme --at 2026-11-20
  tenantlake show --tenant acme --at 2026-11-21T12:00:00+01:00 --json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f := showFlags
		if err := checkTenantFlag(f.tenant); err != nil {
			return fmt.Errorf("show: %w", err)
		}
		return withLake(ctx, func(l *lake.Lake) error { return show(cmd, l, f.tenant, f.snapshot, f.at, f.columns) })
	},
}

// show prints one snapshot: id if given, else the one as of at if given, else
// the newest.
func show(cmd *cobra.Command, l *lake.Lake, t, id, at string, columns bool) error {
	ctx := cmd.Context()
	switch {
	case at != "":
		asOf, err := lake.ParseAsOf(at)
		if err != nil {
			return fmt.Errorf("show tenant %s: --at: %w", t, err)
		}
		s, err := l.Resolve(ctx, t, asOf)
		if err != nil {
			return fmt.Errorf("show tenant %s as of %s: %w", t, at, err)
		}
		id = s.SnapshotID
	case id == "":
		s, err := l.Latest(ctx, t)
		if err != nil {
			return fmt.Errorf("show tenant %s: %w", t, err)
		}
		id = s.SnapshotID
	}
	m, err := l.Manifest(ctx, t, id)
	if err != nil {
		return fmt.Errorf("show tenant %s snapshot %s: %w", t, id, err)
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), m)
	}
	return printManifest(cmd.OutOrStdout(), m, columns)
}

func printManifest(w io.Writer, m *lake.Manifest, columns bool) error {
	s := ops.Summarize(m)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	src := m.Source
	fmt.Fprintf(tw, "tenant\t%s\n", m.Tenant)
	fmt.Fprintf(tw, "snapshot\t%s\n", m.SnapshotID)
	fmt.Fprintf(tw, "started\t%s\n", m.StartedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "committed\t%s\n", m.CommittedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "source\t%s database %s, server %s\n", orDash(src.Kind), orDash(src.Database), orDash(src.ServerVersion))
	fmt.Fprintf(tw, "tx snapshot\t%s\n", orDash(src.TxSnapshot))
	fmt.Fprintf(tw, "lsn\t%s\n", orDash(src.LSN))
	fmt.Fprintf(tw, "tool\t%s (manifest format %d)\n", orDash(m.ToolVersion), m.FormatVersion)
	fmt.Fprintf(tw, "total\t%d tables, %d rows, %d files, %s\n", s.Tables, s.Rows, s.Files, humanBytes(s.Bytes))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSOURCE\tROWS\tFILES\tBYTES\tCOLUMNS\tPRIMARY KEY")
	for _, t := range m.Tables {
		var bytes int64
		for _, f := range t.Files {
			bytes += f.Bytes
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\n", t.Name, t.Source, t.Rows, len(t.Files), humanBytes(bytes), len(t.Columns), orDash(strings.Join(t.PrimaryKey, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if columns {
		for _, t := range m.Tables {
			fmt.Fprintf(w, "\ntable %s (%s)\n", t.Name, t.Source)
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  COLUMN\tSOURCE TYPE\tPARQUET\tBIGQUERY\tNULLABLE\tNULLS\tMIN\tMAX")
			for _, c := range t.Columns {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%v\t%d\t%s\t%s\n", c.Name, c.SourceType, c.ParquetType, c.BigQueryType, c.Nullable, c.Profile.Nulls, clip(c.Profile.Min), clip(c.Profile.Max))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if len(m.Skipped) > 0 {
		fmt.Fprintf(w, "\nskipped tables:\n")
		for _, sk := range m.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", sk.Source, sk.Reason)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shows a profile value on one short line.
func clip(p *string) string {
	if p == nil {
		return "-"
	}
	s := strings.Join(strings.Fields(*p), " ")
	if r := []rune(s); len(r) > 32 {
		return string(r[:31]) + "…"
	}
	return s
}

// humanBytes formats n bytes with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func init() {
	snapshotsCmd.Flags().StringVar(&snapshotsFlags.tenant, "tenant", "", "tenant id (required)")
	must(snapshotsCmd.MarkFlagRequired("tenant"))
	root.AddCommand(snapshotsCmd)

	f := showCmd.Flags()
	f.StringVar(&showFlags.tenant, "tenant", "", "tenant id (required)")
	f.StringVar(&showFlags.snapshot, "snapshot", "", "snapshot id, e.g. 20261121T020304.123Z")
	f.StringVar(&showFlags.at, "at", "", "newest snapshot at or before this time: RFC 3339, a date (end of that day, UTC) or a snapshot id")
	f.BoolVar(&showFlags.columns, "columns", false, "also list every table's columns: types, nullability and profile figures")
	must(showCmd.MarkFlagRequired("tenant"))
	showCmd.MarkFlagsMutuallyExclusive("snapshot", "at")
	root.AddCommand(showCmd)
}

// withLake opens the lake named by --lake, which must exist, runs fn and
// closes the lake, returning the first error.
func withLake(ctx context.Context, fn func(*lake.Lake) error) error {
	return runWithLake(ctx, false, fn)
}

// withNewLake is withLake for a command that writes snapshots: a missing
// file:// lake is created.
func withNewLake(ctx context.Context, fn func(*lake.Lake) error) error {
	return runWithLake(ctx, true, fn)
}

func runWithLake(ctx context.Context, create bool, fn func(*lake.Lake) error) error {
	l, err := openLake(ctx, create)
	if err != nil {
		return err
	}
	err = fn(l)
	if cerr := l.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close lake %s: %w", l.URL(), cerr)
	}
	return err
}

// must panics on a programming error while commands are set up.
func must(err error) {
	if err != nil {
		panic(err)
	}
}
