package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
)

var readFlags struct {
	tenant      string
	all         bool
	parallel    int
	connections int
	views       bool
	policies    policyFlag
	lockTimeout time.Duration
	workers     int
	retries     int
}

var readCmd = &cobra.Command{
	Use:   "read --tenant T | --all",
	Short: "Read tenants' PostgreSQL databases into committed snapshots on the lake",
	Long: `read reads one tenant (--tenant) or every active tenant of the registry (--all)
in one consistent snapshot each, and writes it to the lake (--lake) as Parquet
parts and a manifest, written last: the snapshot exists once it is committed.

With --all, --parallel tenants are read at once; a tenant that fails does not stop
the others, and the command then exits non-zero naming the failed tenants. A
failed read commits nothing.

--policy schema.table.column=null|string says what to do with values of that
column that tenantlake cannot carry exactly (see docs/types.md): write NULL, or
carry the whole column as text. Without a policy such a value fails the read.

--lock-timeout bounds each wait for a table lock (say, behind another session's
LOCK TABLE ... ACCESS EXCLUSIVE): a wait that times out is logged and retried
after a pause (half the timeout, doubling), four waits in all; then the read
fails naming the table and who holds or waits for the lock (pid, mode, user,
application, state; never the query).

On a terminal, progress (rows, rows/s, bytes) is shown on stderr; a log line
says every 30s what a read still running is doing.

--workers N reads one tenant (--tenant) with N processes of this binary, each
running ` + "`tenantlake read-job`" + ` as one task of a Cloud Run job would (CLOUD_RUN_TASK_INDEX,
CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT, CLOUD_RUN_EXECUTION in its
environment), each with --connections connections, all in one snapshot: the
same code as the big-read job on GCP. A task that fails is started again, up to
--retries times, as Cloud Run retries a task.`,
	Example: `  tenantlake read --registry tenants.yaml --lake file:///var/lib/tenantlake --tenant acme
  tenantlake read --registry tenants.yaml --all --parallel 4 --json
  tenantlake read --tenant acme --policy public.events.happened_at=null`,
	Args: cobra.NoArgs,
	RunE: runRead,
}

func init() {
	f := readCmd.Flags()
	f.StringVar(&readFlags.tenant, "tenant", "", "tenant id to read")
	f.BoolVar(&readFlags.all, "all", false, "read every active tenant of the registry")
	f.IntVar(&readFlags.parallel, "parallel", 2, "tenants read at once with --all")
	f.IntVar(&readFlags.connections, "connections", 2, "connections per tenant, reading in the same snapshot")
	f.BoolVar(&readFlags.views, "views", false, "also read views and materialized views, as tables")
	f.Var(&readFlags.policies, "policy", "schema.table.column=null|string for values that cannot be carried exactly (repeatable)")
	f.DurationVar(&readFlags.lockTimeout, "lock-timeout", 5*time.Second, "bound on each wait for a table lock (four waits, then the read fails naming the lock's holder)")
	f.IntVar(&readFlags.workers, "workers", 0, "read the tenant with this many processes (read-job tasks) in one snapshot; 0: in this process")
	f.IntVar(&readFlags.retries, "retries", 3, "with --workers: times a failed task is started again")
	readCmd.MarkFlagsMutuallyExclusive("tenant", "all")
	readCmd.MarkFlagsOneRequired("tenant", "all")
	root.AddCommand(readCmd)
}

// readResult is one tenant's line of `tenantlake read`.
type readResult struct {
	Tenant string `json:"tenant"`
	ops.Summary
	Error string `json:"error,omitempty"`
}

// readMemoryLimit is the Go runtime's soft memory limit during a read.
const readMemoryLimit = 96 << 20

func runRead(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	if readFlags.parallel < 1 || readFlags.connections < 1 {
		return errors.New("read: --parallel and --connections must be at least 1")
	}
	if readFlags.lockTimeout < time.Millisecond {
		return fmt.Errorf("read: --lock-timeout %s: must be at least 1ms", readFlags.lockTimeout)
	}
	if !readFlags.all {
		if err := checkTenantFlag(readFlags.tenant); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	if readFlags.workers < 0 || readFlags.workers > 1000 || readFlags.retries < 0 {
		return errors.New("read: --workers must be from 0 to 1000 and --retries 0 or more")
	}
	if readFlags.workers > 0 {
		if readFlags.all {
			return errors.New("read: --workers reads one tenant: give --tenant, not --all")
		}
		return runReadWorkers(cmd)
	}
	reg, err := openRegistry(ctx)
	if err != nil {
		return err
	}
	var tenants []tenant.Tenant
	if readFlags.all {
		ts, err := reg.List(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.Active {
				tenants = append(tenants, t)
			}
		}
	} else {
		t, err := reg.Get(ctx, readFlags.tenant)
		if err != nil {
			return err
		}
		tenants = []tenant.Tenant{t}
	}

	// A soft memory limit makes the garbage collector keep a read's memory
	// flat, whatever the tables' sizes; GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(readMemoryLimit)
	}
	prog := newProgress(os.Stderr)
	rd := postgres.New(postgres.Options{
		Parallel:    readFlags.connections,
		Policies:    readFlags.policies.m,
		Views:       readFlags.views,
		LockTimeout: readFlags.lockTimeout,
		Progress:    prog.add,
		ToolVersion: version,
	})
	results := make([]readResult, len(tenants))
	err = withNewLake(ctx, func(lk *lake.Lake) error {
		sem := make(chan struct{}, readFlags.parallel)
		var wg sync.WaitGroup
		for i, t := range tenants {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				results[i] = readOne(ctx, rd, lk, t)
			}()
		}
		wg.Wait()
		return nil
	})
	prog.finish()
	if err != nil {
		return err
	}
	if err := printReads(cmd.OutOrStdout(), results); err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, r.Tenant)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("read failed for %d of %d tenants: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

func readOne(ctx context.Context, rd *postgres.Reader, lk *lake.Lake, t tenant.Tenant) readResult {
	start := time.Now()
	m, err := rd.Read(ctx, lk, t)
	if err != nil {
		slog.Error("read failed", "tenant", t.ID, "err", err)
		return readResult{Tenant: t.ID, Error: err.Error()}
	}
	s := ops.Summarize(m)
	slog.Info("snapshot committed", "tenant", t.ID, "snapshot", m.SnapshotID, "tables", s.Tables, "rows", s.Rows, "bytes", s.Bytes, "took", time.Since(start).Round(time.Millisecond))
	return readResult{Tenant: t.ID, Summary: s}
}

func printReads(w io.Writer, results []readResult) error {
	if g.json {
		return printJSON(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSNAPSHOT\tTABLES\tROWS\tBYTES\tSKIPPED\tERROR")
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\n", r.Tenant, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t\n", r.Tenant, r.SnapshotID, r.Tables, r.Rows, humanBytes(r.Bytes), r.Skipped)
	}
	return tw.Flush()
}

// policyFlag collects --policy values "schema.table.column=null|string".
// An empty value clears the list.
type policyFlag struct{ m map[string]postgres.Policy }

func (f *policyFlag) Type() string { return "column=policy" }

func (f *policyFlag) String() string {
	var parts []string
	for col, p := range f.m {
		parts = append(parts, col+"="+string(p))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (f *policyFlag) Set(v string) error {
	if v == "" {
		f.m = nil
		return nil
	}
	col, p, ok := strings.Cut(v, "=")
	if !ok || strings.Count(col, ".") < 2 {
		return fmt.Errorf("%q: want schema.table.column=null|string", v)
	}
	switch postgres.Policy(p) {
	case postgres.PolicyNull, postgres.PolicyString:
	default:
		return fmt.Errorf("%q: the policy must be null or string", v)
	}
	if f.m == nil {
		f.m = map[string]postgres.Policy{}
	}
	f.m[col] = postgres.Policy(p)
	return nil
}

// progress shows rows, rows/s and bytes read on a terminal; elsewhere
// (logs, pipes) it stays silent.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	bytes int64
}

func newProgress(w *os.File) *progress {
	p := &progress{}
	if term.IsTerminal(int(w.Fd())) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("reading"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) add(rows, bytes int64) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += bytes
	p.bar.Describe("reading " + humanBytes(p.bytes))
	_ = p.bar.Add64(rows) // a terminal write error only loses a progress line
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
