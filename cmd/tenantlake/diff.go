package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
)

var diffFlags struct {
	req     ops.DiffRequest
	rows    bool
	tempDir string
	memory  int64
}

// diffMemoryLimit is the soft memory limit of `tenantlake diff` (the Go
// runtime's; GOMEMLIMIT overrides it), so the garbage collector keeps the
// heap near what the diff holds: two Parquet readers, the spill files'
// buffers and a partition (raised for a --memory above 64 MiB).
const diffMemoryLimit = 160 << 20

var diffCmd = &cobra.Command{
	Use:   "diff --tenant T --from S1|TIME --to S2|TIME [--table T ...] [--rows]",
	Short: "Show what changed in a tenant between two snapshots, from the lake alone",
	Long: `diff compares two committed snapshots of a tenant, reading only the lake (never the
tenant's database), and prints per table the rows inserted, deleted and updated and
the columns added, dropped or retyped.

--from and --to are each a snapshot id (that snapshot exactly) or a time: RFC 3339
(2026-11-21T02:00:00Z) or a date (2026-11-21, the end of that day in UTC), meaning
the newest snapshot at or before it. The diff turns --from's rows into --to's.

Rows are matched by primary key when both snapshots give the table the same one
(a changed key is a delete and an insert), otherwise compared as a multiset of
whole rows (a duplicate row counts once per copy). Rows are compared on the
columns both snapshots have; values compare exactly, a retyped column by its
canonical value (integer 5 equals bigint 5).

--rows prints every changed row as a JSON line on stdout
({"table","op","key","before","after"}) and the summary on stderr.

Memory stays bounded whatever the tables' sizes: a table larger than a few MiB is
hash-partitioned into spill files in --temp-dir (about the size of both
snapshots' rows uncompressed), removed at the end.`,
	Example: `  tenantlake diff --tenant acme --from 2026-11-17 --to 2026-11-20
  tenantlake diff --tenant acme --from 20261117T020000.000Z --to 20261120T020000.000Z --table orders --json
  tenantlake diff --tenant acme --from 2026-11-17 --to 2026-11-20 --table orders --rows > changes.jsonl`,
	Args: cobra.NoArgs,
	RunE: runDiff,
}

func init() {
	f := diffCmd.Flags()
	f.StringVar(&diffFlags.req.Tenant, "tenant", "", "tenant id (required)")
	f.StringVar(&diffFlags.req.From, "from", "", "the older snapshot: a snapshot id or a time (required)")
	f.StringVar(&diffFlags.req.To, "to", "", "the newer snapshot: a snapshot id or a time (required)")
	f.StringArrayVar(&diffFlags.req.Tables, "table", nil, "compare only this destination table (repeatable)")
	f.BoolVar(&diffFlags.rows, "rows", false, "print every changed row as a JSON line on stdout; the summary goes to stderr")
	f.StringVar(&diffFlags.tempDir, "temp-dir", "", "folder for spill files (default: the system's temporary folder)")
	f.Int64Var(&diffFlags.memory, "memory", diff.DefaultMemoryBytes>>20, "MiB of encoded rows held in memory at most per partition; a larger partition is split again")
	must(diffCmd.MarkFlagRequired("tenant"))
	must(diffCmd.MarkFlagRequired("from"))
	must(diffCmd.MarkFlagRequired("to"))
	root.AddCommand(diffCmd)
}

func runDiff(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	f := diffFlags
	if err := checkTenantFlag(f.req.Tenant); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	if f.memory < 1 {
		return fmt.Errorf("diff: --memory %d: want at least 1 (MiB)", f.memory)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(diffMemoryLimit, 5*(f.memory<<20)/2))
	}
	opt := diff.Options{TempDir: f.tempDir, MemoryBytes: f.memory << 20}
	summary := cmd.OutOrStdout()
	var rows *bufio.Writer
	if f.rows {
		summary = cmd.ErrOrStderr()
		rows = bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
		enc := json.NewEncoder(rows)
		enc.SetEscapeHTML(false)
		opt.Rows = func(c diff.Change) error { return enc.Encode(c) }
	}
	return withLake(ctx, func(l *lake.Lake) error {
		o := &ops.Ops{Lake: l}
		res, err := o.Diff(ctx, f.req, opt)
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		if rows != nil {
			if err := rows.Flush(); err != nil {
				return fmt.Errorf("diff: write rows: %w", err)
			}
		}
		if g.json {
			return printJSON(summary, res)
		}
		return printDiff(summary, res)
	})
}

// printDiff prints a diff result as a table, one line per table.
func printDiff(w io.Writer, res *diff.Result) error {
	if _, err := fmt.Fprintf(w, "tenant %s: %s → %s\n\n", res.Tenant, res.From, res.To); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATUS\tMATCHED BY\tROWS BEFORE\tROWS AFTER\tINSERTED\tDELETED\tUPDATED\tCOLUMNS")
	var notes []string
	for _, t := range res.Tables {
		by := "-"
		switch t.Compare {
		case diff.CompareKey:
			by = "key (" + strings.Join(t.Key, ", ") + ")"
		case diff.CompareRows:
			by = "whole rows"
		}
		var cols []string
		for _, c := range t.ColumnsAdded {
			cols = append(cols, "+"+c.Name)
		}
		for _, c := range t.ColumnsDropped {
			cols = append(cols, "-"+c.Name)
		}
		for _, c := range t.ColumnsRetyped {
			cols = append(cols, fmt.Sprintf("~%s (%s → %s)", c.Name, c.From, c.To))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Table, t.Status, by, t.RowsFrom, t.RowsTo, t.Inserted, t.Deleted, t.Updated, orDash(strings.Join(cols, " ")))
		if t.Note != "" {
			notes = append(notes, t.Table+": "+t.Note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	if !res.Changed() {
		_, err := fmt.Fprintln(w, "no differences")
		return err
	}
	return nil
}
