package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantlake/tenantlake/lake"
)

// days is a duration flag that also accepts whole days: "30d", "36h", "90m".
type days time.Duration

func (d *days) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}
func (d *days) Type() string { return "duration" }
func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: want a whole number of days such as 30d, or a Go duration such as 36h", s)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a whole number of days such as 30d, or a Go duration such as 36h", s)
	}
	*d = days(v)
	return nil
}

var gcFlags struct {
	tenant      string
	all, dryRun bool
	force       bool
	keepLast    int
	keepWithin  days
	orphanGrace days
}

var gcCmd = &cobra.Command{
	Use:   "gc (--tenant T | --all) [--keep-last N] [--keep-within DUR] [--orphan-grace DUR] [--force] [--dry-run]",
	Short: "Delete old snapshots and the leftovers of crashed reads from the lake",
	Long: `gc applies a retention policy to one tenant (--tenant) or to every tenant in the
lake (--all, including tenants that only have orphans). A committed snapshot is
kept if it is among the newest --keep-last N, or younger than --keep-within; the
newest snapshot is always kept. With neither rule given, every committed snapshot
is kept and only orphans are swept. A snapshot that a target's ledger in the lake
says is live (the newest load record of that target, e.g. after a replay) is
never deleted and is reported as protected, unless --force is given.

Snapshots are deleted whole, manifest first (so a snapshot stops existing before
its parts go). The parts of reads that never committed (orphans) are swept once
the snapshot id, by its own time, is older than --orphan-grace (at least 1h,
default 24h). A read must commit within 45m of its snapshot id or it is refused,
and GC seals a snapshot before sweeping it, so a sweep can never remove the parts
of a snapshot that commits.

Durations are Go durations (36h, 90m) or whole days (30d). --dry-run reports what
would be deleted and deletes nothing.`,
	Example: `  tenantlake gc --tenant acme --keep-last 7 --dry-run
  tenantlake gc --all --keep-last 3 --keep-within 30d
  tenantlake gc --all --orphan-grace 6h --json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := gcFlags
		if f.tenant != "" {
			if err := checkTenantFlag(f.tenant); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
		if f.keepLast < 0 {
			return fmt.Errorf("gc: --keep-last %d: must not be negative", f.keepLast)
		}
		if f.keepWithin < 0 {
			return fmt.Errorf("gc: --keep-within %s: must not be negative", time.Duration(f.keepWithin))
		}
		if g := time.Duration(f.orphanGrace); g < lake.MinOrphanGrace {
			return fmt.Errorf("gc: --orphan-grace %s: must be at least %s, since a read may take up to %s to commit",
				g, lake.MinOrphanGrace, lake.MaxReadDuration)
		}
		p := lake.Policy{KeepLast: f.keepLast, KeepWithin: time.Duration(f.keepWithin), OrphanGrace: time.Duration(f.orphanGrace), Force: f.force, DryRun: f.dryRun}
		ctx := cmd.Context()
		reports := []*lake.GCReport{}
		err := withLake(ctx, func(l *lake.Lake) error {
			now := time.Now()
			if f.all {
				reps, err := l.GCAll(ctx, p, now)
				reports = append(reports, reps...)
				if err != nil {
					return fmt.Errorf("gc --all: %w", err)
				}
				return nil
			}
			rep, err := l.GC(ctx, f.tenant, p, now)
			if rep != nil {
				reports = append(reports, rep)
			}
			if err != nil {
				return fmt.Errorf("gc tenant %s: %w", f.tenant, err)
			}
			return nil
		})
		// Print what was done even when a later tenant failed.
		w := cmd.OutOrStdout()
		var perr error
		if g.json {
			perr = printJSON(w, reports)
		} else {
			perr = printGC(cmd, reports, f.dryRun)
		}
		if err != nil {
			return err
		}
		return perr
	},
}

func printGC(cmd *cobra.Command, reports []*lake.GCReport, dry bool) error {
	w := cmd.OutOrStdout()
	if len(reports) == 0 {
		_, err := fmt.Fprintln(w, "no tenants in the lake")
		return err
	}
	verb := "deleted"
	if dry {
		verb = "would delete"
		fmt.Fprintln(w, "dry run: nothing was deleted")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TENANT\tKEPT\tLIVE IN A TARGET\t%s SNAPSHOTS\tSWEPT ORPHANS\tOBJECTS\n", strings.ToUpper(verb))
	for _, r := range reports {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", r.Tenant, len(r.Kept), len(r.Protected), len(r.DeletedSnapshots), len(r.SweptOrphans), r.DeletedObjects)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range reports {
		for _, p := range r.Protected {
			if p.Forced {
				fmt.Fprintf(w, "%s: %s snapshot %s although it is live in %s (--force)\n", r.Tenant, verb, p.SnapshotID, strings.Join(p.Targets, ", "))
			} else {
				fmt.Fprintf(w, "%s: kept snapshot %s: it is live in %s (--force deletes it)\n", r.Tenant, p.SnapshotID, strings.Join(p.Targets, ", "))
			}
		}
		for _, id := range r.DeletedSnapshots {
			fmt.Fprintf(w, "%s: %s snapshot %s\n", r.Tenant, verb, id)
		}
		for _, id := range r.SweptOrphans {
			fmt.Fprintf(w, "%s: %s orphan parts of uncommitted snapshot %s\n", r.Tenant, verb, id)
		}
	}
	return nil
}

func init() {
	f := gcCmd.Flags()
	f.StringVar(&gcFlags.tenant, "tenant", "", "the tenant to clean up")
	f.BoolVar(&gcFlags.all, "all", false, "clean up every tenant in the lake")
	f.IntVar(&gcFlags.keepLast, "keep-last", 0, "keep the newest N committed snapshots (0: no count rule)")
	f.Var(&gcFlags.keepWithin, "keep-within", "keep snapshots younger than this, e.g. 30d (0: no age rule)")
	gcFlags.orphanGrace = days(24 * time.Hour)
	f.Var(&gcFlags.orphanGrace, "orphan-grace", "sweep parts of uncommitted snapshots once their id is older than this (at least 1h)")
	f.BoolVar(&gcFlags.force, "force", false, "also delete snapshots that a target's ledger says are live")
	f.BoolVar(&gcFlags.dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	gcCmd.MarkFlagsOneRequired("tenant", "all")
	gcCmd.MarkFlagsMutuallyExclusive("tenant", "all")
	root.AddCommand(gcCmd)
}
