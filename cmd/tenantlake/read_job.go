package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/functions"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
)

// The Cloud Run job task environment (set by Cloud Run, or by `read
// --workers`).
const (
	envTaskIndex   = "CLOUD_RUN_TASK_INDEX"
	envTaskCount   = "CLOUD_RUN_TASK_COUNT"
	envTaskAttempt = "CLOUD_RUN_TASK_ATTEMPT"
	envExecution   = "CLOUD_RUN_EXECUTION"
)

var readJobFlags struct {
	views       bool
	policies    policyFlag
	lockTimeout time.Duration
}

var readJobCmd = &cobra.Command{
	Use:   "read-job",
	Short: "One task of the big-read job: many processes read one tenant in one snapshot",
	Long: `read-job runs one task of a distributed read of one tenant: what every task of
the big-read Cloud Run job runs, and what ` + "`tenantlake read --workers N`" + ` starts N times.

The task comes from the environment Cloud Run sets: CLOUD_RUN_TASK_INDEX,
CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT and CLOUD_RUN_EXECUTION (the
execution's name, shared by its tasks); the tenant and the request from the
execution's overrides, TENANTLAKE_JOB_TENANT and TENANTLAKE_JOB_REQUEST_ID
(set by the Read function that started the job). TENANTLAKE_CONNECTIONS is the
number of connections of each task.

Task 0 coordinates: it exports the snapshot, writes the plan to the lake, reads
ranges too, merges every task's completion records into the manifest and
commits it; with a request id it then publishes tenantlake.snapshot.committed on
the Pub/Sub of TENANTLAKE_PROJECT (or PUBSUB_EMULATOR_HOST), and a request whose
snapshot is already committed is republished without reading again. The other
tasks import the snapshot and read the ranges no task has taken. A retried
task finishes the ranges it had claimed; a retried coordinator starts a new
snapshot. Exit status 0 when the task's work is done (for a worker, also when
nothing was left to do).`,
	Args: cobra.NoArgs,
	RunE: runReadJob,
}

func init() {
	f := readJobCmd.Flags()
	f.BoolVar(&readJobFlags.views, "views", false, "also read views and materialized views, as tables")
	f.Var(&readJobFlags.policies, "policy", "schema.table.column=null|string for values that cannot be carried exactly (repeatable)")
	f.DurationVar(&readJobFlags.lockTimeout, "lock-timeout", 5*time.Second, "bound on each wait for a table lock")
	root.AddCommand(readJobCmd)
}

// taskFromEnv reads the Cloud Run task environment.
func taskFromEnv() (postgres.Task, error) {
	var tk postgres.Task
	num := func(name string, def int) (int, error) {
		v := os.Getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %q: want a whole number, 0 or more", name, v)
		}
		return n, nil
	}
	var err error
	if tk.Index, err = num(envTaskIndex, 0); err != nil {
		return tk, err
	}
	if tk.Count, err = num(envTaskCount, 1); err != nil {
		return tk, err
	}
	if tk.Attempt, err = num(envTaskAttempt, 0); err != nil {
		return tk, err
	}
	if tk.Count < 1 || tk.Index >= tk.Count {
		return tk, fmt.Errorf("%s %d, %s %d: want 0 <= index < count", envTaskIndex, tk.Index, envTaskCount, tk.Count)
	}
	if tk.Execution = os.Getenv(envExecution); tk.Execution == "" {
		return tk, fmt.Errorf("%s: not set: the execution's name, shared by its tasks", envExecution)
	}
	return tk, nil
}

func runReadJob(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	tk, err := taskFromEnv()
	if err != nil {
		return fmt.Errorf("read-job: %w", err)
	}
	tenantID := os.Getenv(config.EnvJobTenant)
	if err := tenant.ValidateID(tenantID); err != nil {
		return fmt.Errorf("read-job: %s: %w", config.EnvJobTenant, err)
	}
	requestID := os.Getenv(config.EnvJobRequestID)
	publish := tk.Index == 0 && requestID != ""
	cfg, err := envConfig(cmd, nil, config.Need{Registry: true, Project: publish})
	if err != nil {
		return fmt.Errorf("read-job: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(readMemoryLimit)
	}
	rd := postgres.New(postgres.Options{
		Parallel:    cfg.Connections,
		Policies:    readJobFlags.policies.m,
		Views:       readJobFlags.views,
		LockTimeout: readJobFlags.lockTimeout,
		ToolVersion: version,
	})
	var pub events.Publisher
	if publish {
		ps, err := events.Dial(ctx, cfg.Project)
		if err != nil {
			return fmt.Errorf("read-job: %w", err)
		}
		defer ps.Close()
		pub = ps
	}
	h, err := functions.New(ctx, cfg, pub, version, nil)
	if err != nil {
		return fmt.Errorf("read-job: %w", err)
	}
	o := h.Ops
	err = readTask(ctx, cmd, o, rd, tk, tenantID, requestID, publish)
	if cerr := o.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if cerr := o.Lake.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close lake: %w", cerr))
	}
	return err
}

func readTask(ctx context.Context, cmd *cobra.Command, o *ops.Ops, rd *postgres.Reader, tk postgres.Task, tenantID, requestID string, publish bool) error {
	read := func(ctx context.Context, t tenant.Tenant) (*lake.Manifest, error) {
		return rd.ReadTask(ctx, o.Lake, t, tk)
	}
	start := time.Now()
	var m *lake.Manifest
	if publish {
		ev, err := o.ReadJob(ctx, tenantID, requestID, read)
		if err != nil {
			return fmt.Errorf("read-job: %w", err)
		}
		if m, err = o.Lake.Manifest(ctx, tenantID, ev.SnapshotID); err != nil {
			return fmt.Errorf("read-job: %w", err)
		}
	} else {
		t, err := o.Registry.Get(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("read-job: %w", err)
		}
		if m, err = read(ctx, t); err != nil {
			return fmt.Errorf("read-job: %w", err)
		}
	}
	if m == nil { // a worker
		return nil
	}
	s := ops.Summarize(m)
	slog.Info("snapshot committed", "tenant", tenantID, "snapshot", m.SnapshotID, "tables", s.Tables, "rows", s.Rows,
		"bytes", s.Bytes, "tasks", tk.Count, "took", time.Since(start).Round(time.Millisecond).String())
	return printReads(cmd.OutOrStdout(), []readResult{{Tenant: tenantID, Summary: s}})
}

// runReadWorkers is `read --tenant T --workers N`: one local execution of
// the big-read job, its N tasks processes of this binary.
func runReadWorkers(cmd *cobra.Command) error {
	ctx := cmd.Context()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("read: --workers: this binary: %w", err)
	}
	var idb [6]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return err
	}
	execution := "local-" + hex.EncodeToString(idb[:])
	args := []string{"--lake", g.lake, "--json"}
	if g.registry != "" {
		args = append(args, "--registry", g.registry)
	}
	if g.verbose {
		args = append(args, "-v")
	}
	args = append(args, "read-job", "--lock-timeout", readFlags.lockTimeout.String())
	if readFlags.views {
		args = append(args, "--views")
	}
	for col, p := range readFlags.policies.m {
		args = append(args, "--policy", col+"="+string(p))
	}
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.EnvJobRequestID+"=") && !strings.HasPrefix(kv, "CLOUD_RUN_") {
			base = append(base, kv)
		}
	}
	base = append(base, config.EnvJobTenant+"="+readFlags.tenant, config.EnvConnections+"="+strconv.Itoa(readFlags.connections),
		envTaskCount+"="+strconv.Itoa(readFlags.workers), envExecution+"="+execution)
	slog.Info("reading with worker processes", "tenant", readFlags.tenant, "workers", readFlags.workers, "execution", execution)

	start := time.Now()
	// When the coordinator gives up, the workers have nothing to wait for.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errs    = make([]error, readFlags.workers)
		coordID string
		result  []readResult
	)
	for i := range readFlags.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				defer func() {
					if errs[0] != nil {
						cancel()
					}
				}()
			}
			for attempt := 0; attempt <= readFlags.retries; attempt++ {
				c := exec.CommandContext(tctx, exe, args...)
				c.Env = append(append([]string(nil), base...), envTaskIndex+"="+strconv.Itoa(i), envTaskAttempt+"="+strconv.Itoa(attempt))
				c.Stderr = os.Stderr
				var out bytes.Buffer
				c.Stdout = &out
				err := c.Run()
				if c.ProcessState == nil {
					// not started: err says why
				} else if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
					slog.Info("task ended", "task", i, "attempt", attempt, "exit", c.ProcessState.ExitCode(), "peak_rss_kib", ru.Maxrss)
				}
				if err == nil {
					errs[i] = nil
					if i == 0 {
						if jerr := json.Unmarshal(out.Bytes(), &result); jerr != nil || len(result) != 1 {
							errs[i] = fmt.Errorf("task 0's output %q: %v", out.String(), jerr)
						}
					}
					return
				}
				errs[i] = fmt.Errorf("task %d attempt %d: %w", i, attempt, err)
				if tctx.Err() != nil {
					return
				}
				slog.Warn("task failed; starting it again", "task", i, "attempt", attempt, "err", err.Error())
			}
		}()
	}
	wg.Wait()
	if errs[0] != nil {
		return fmt.Errorf("read: tenant %s with %d workers: %w", readFlags.tenant, readFlags.workers, errors.Join(errs...))
	}
	for i, err := range errs[1:] {
		if err != nil { // the snapshot is committed: the coordinator merged every range
			slog.Warn("a worker task failed; the snapshot was committed without it", "task", i+1, "err", err.Error())
		}
	}
	coordID = result[0].SnapshotID
	slog.Info("snapshot committed", "tenant", readFlags.tenant, "snapshot", coordID, "workers", readFlags.workers, "took", time.Since(start).Round(time.Millisecond))
	return printReads(cmd.OutOrStdout(), result)
}
