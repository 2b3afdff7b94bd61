package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// Environment of a task process: the test binary re-executed by
// startTask runs one task of a distributed read (distTaskMain) instead of
// the tests.
const (
	envTask    = "TL_TEST_TASK" // "index/count/attempt"
	envLake    = "TL_TEST_LAKE"
	envDSN     = "TL_TEST_DSN"
	envExec    = "TL_TEST_EXECUTION"
	envTenant  = "TL_TEST_TENANT"
	envPerConn = "TL_TEST_PARALLEL"
	envWait    = "TL_TEST_PLAN_WAIT"
)

// distOptions are the reader options of every task in these tests: small
// ranges, so a table is many ranges, and fast polling.
func distOptions(parallel int, progress func(rows, bytes int64)) Options {
	return Options{Parallel: parallel, SplitBytes: 256 << 10, PollInterval: 20 * time.Millisecond, PlanWait: 20 * time.Second,
		LogInterval: -1, Progress: progress}
}

// distTaskMain runs the task that envTask describes and returns the exit
// status: every batch of rows read is a line "rows" on stdout, so the test
// can kill the process at a chosen point mid-read.
func distTaskMain() int {
	var tk Task
	if _, err := fmt.Sscanf(os.Getenv(envTask), "%d/%d/%d", &tk.Index, &tk.Count, &tk.Attempt); err != nil {
		fmt.Fprintln(os.Stderr, "bad", envTask, err)
		return 2
	}
	tk.Execution = os.Getenv(envExec)
	parallel, _ := strconv.Atoi(os.Getenv(envPerConn))
	ctx := context.Background()
	lk, err := lake.OpenExisting(ctx, os.Getenv(envLake))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	progress := func(rows, bytes int64) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, "rows", rows)
		_ = out.Flush()
	}
	t := tenant.Tenant{ID: os.Getenv(envTenant), Connection: os.Getenv(envDSN), Active: true}
	opts := distOptions(parallel, progress)
	if d, err := time.ParseDuration(os.Getenv(envWait)); err == nil {
		opts.PlanWait = d
	}
	m, err := New(opts).ReadTask(ctx, lk, t, tk)
	if cerr := lk.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "task failed:", err)
		return 1
	}
	if m != nil {
		fmt.Fprintln(out, "committed", m.SnapshotID)
	}
	_ = out.Flush()
	return 0
}

// taskProc is one task process.
type taskProc struct {
	cmd    *exec.Cmd
	lines  atomic.Int64 // progress lines seen
	stderr strings.Builder
	done   chan struct{}
	err    error // Wait's
}

// startTask starts the task index/count/attempt of execution in a new
// process. With killAfter > 0 the process is killed (SIGKILL) once it has
// reported that many batches.
func startTask(t *testing.T, lakeURL, dsn, execution string, index, count, attempt, parallel int, killAfter int64, env ...string) *taskProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envTask+"="+fmt.Sprintf("%d/%d/%d", index, count, attempt), envLake+"="+lakeURL, envDSN+"="+dsn,
		envExec+"="+execution, envTenant+"=acme", envPerConn+"="+strconv.Itoa(parallel))
	cmd.Env = append(cmd.Env, env...)
	p := &taskProc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "rows ") && p.lines.Add(1) == killAfter {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process and returns its exit code (-1: killed).
func (p *taskProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("task process did not end")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// moneyTenant makes tables a and b with n rows each holding bal = start, and
// columns of several kinds so profiles are compared kind by kind.
func moneyTenant(t *testing.T, n, start int) (tenant.Tenant, string) {
	t.Helper()
	var setup []string
	for _, tb := range []string{"a", "b"} {
		setup = append(setup,
			`CREATE TABLE `+tb+` (id int PRIMARY KEY, bal bigint NOT NULL, amount numeric(12,2), ratio float8, note text, at timestamptz, ok bool)`,
			fmt.Sprintf(`INSERT INTO %s SELECT i, %d, (i %% 1000) * 1.25, i / 7.0, md5(i::text), '2026-01-01'::timestamptz + i * interval '1 minute', i %% 3 = 0
FROM generate_series(1, %d) i`, tb, start, n))
	}
	setup = append(setup, `CREATE TABLE empty (id int PRIMARY KEY)`)
	return newTenant(t, "acme", setup...)
}

// mover moves value from a to b and inserts a zero row into a, one
// transaction at a time, until stop is closed; it returns how many it made.
func mover(t *testing.T, dsn string, n int, stop <-chan struct{}) func() int64 {
	conn := pgtest.Connect(t, dsn)
	var moved atomic.Int64
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			i := moved.Add(1)
			_, err := conn.Exec(ctx, `BEGIN;
UPDATE a SET bal = bal - 100 WHERE id = `+strconv.FormatInt(i%int64(n)+1, 10)+`;
UPDATE b SET bal = bal + 100 WHERE id = `+strconv.FormatInt((i*7)%int64(n)+1, 10)+`;
INSERT INTO a (id, bal) VALUES (`+strconv.FormatInt(int64(n)+i, 10)+`, 0);
COMMIT`)
			if err != nil {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() int64 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return moved.Load()
	}
}

// checkRows reads every part of table tb of m with arrow-go and checks that
// it holds ids 1..n exactly once, with bal summing to want.
func checkRows(t *testing.T, lk *lake.Lake, m *lake.Manifest, tb string, n int, want int64) {
	t.Helper()
	rows, _ := readTable(t, lk, m.Table(tb))
	seen := make(map[int]bool, n)
	var sum int64
	for _, r := range rows {
		id, _ := strconv.Atoi(r["id"])
		if seen[id] {
			t.Fatalf("table %s: row id=%d twice", tb, id)
		}
		seen[id] = true
		v, _ := strconv.ParseInt(r["bal"], 10, 64)
		sum += v
	}
	if len(rows) != n || sum != want {
		t.Errorf("table %s: parts hold %d rows summing to %d, want %d rows summing to %d", tb, len(rows), sum, n, want)
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			t.Fatalf("table %s: row id=%d missing", tb, i)
		}
	}
}

// readRecords decodes the snapshot records name* of a file:// lake at dir.
func readRecords[T any](t *testing.T, dir, tenantID, id, prefix string) map[string]T {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, lake.SnapshotPrefix(tenantID, id), "_read", prefix+"*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]T{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = v
	}
	return out
}

func committedIDs(t *testing.T, lk *lake.Lake) []string {
	t.Helper()
	snaps, err := lk.Snapshots(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.SnapshotID)
	}
	return ids
}

// sameTables compares two manifests table by table: names, columns and
// their types, rows and profile figures (float sums within a relative
// tolerance: they are summed in another order).
func sameTables(t *testing.T, got, want *lake.Manifest) {
	t.Helper()
	if len(got.Tables) != len(want.Tables) {
		t.Fatalf("%d tables, want %d", len(got.Tables), len(want.Tables))
	}
	for i := range want.Tables {
		g, w := got.Tables[i], want.Tables[i]
		if g.Source != w.Source || g.Name != w.Name || g.Rows != w.Rows || strings.Join(g.PrimaryKey, ",") != strings.Join(w.PrimaryKey, ",") {
			t.Errorf("table %s: got %s/%s %d rows key %v, want %s/%s %d rows key %v", w.Source, g.Source, g.Name, g.Rows, g.PrimaryKey, w.Source, w.Name, w.Rows, w.PrimaryKey)
			continue
		}
		if len(g.Columns) != len(w.Columns) {
			t.Errorf("table %s: %d columns, want %d", w.Source, len(g.Columns), len(w.Columns))
			continue
		}
		for j := range w.Columns {
			gc, wc := g.Columns[j], w.Columns[j]
			float := strings.HasPrefix(wc.SourceType, "double") || strings.HasPrefix(wc.SourceType, "real")
			if gc.Name != wc.Name || gc.SourceType != wc.SourceType || gc.ParquetType != wc.ParquetType || gc.BigQueryType != wc.BigQueryType || gc.Nullable != wc.Nullable ||
				gc.Profile.Nulls != wc.Profile.Nulls || deref(gc.Profile.Min) != deref(wc.Profile.Min) || deref(gc.Profile.Max) != deref(wc.Profile.Max) ||
				!sameFloat(gc.Profile.Sum, wc.Profile.Sum, float) {
				t.Errorf("table %s column %s: got %+v %s..%s sum %s, want %+v %s..%s sum %s", w.Source, wc.Name,
					gc, deref(gc.Profile.Min), deref(gc.Profile.Max), deref(gc.Profile.Sum), wc, deref(wc.Profile.Min), deref(wc.Profile.Max), deref(wc.Profile.Sum))
			}
		}
	}
}

// TestDistributedConsistency: task 0 in this process and four worker
// processes read one snapshot while a writer moves value between the
// tables. The snapshot's totals are those of one instant, every row is in it
// once, the ranges were read by several processes, and the manifest equals,
// table by table, a single-process read of the same exported snapshot.
func TestDistributedConsistency(t *testing.T) {
	const n, start = 40000, 1000
	tn, dsn := moneyTenant(t, n, start)
	ctx := context.Background()
	dir := t.TempDir()
	lk, err := lake.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	const count = 5
	var procs []*taskProc
	for i := 1; i < count; i++ {
		procs = append(procs, startTask(t, "file://"+dir, dsn, "exec-1", i, count, 0, 1, 0))
	}
	stop := make(chan struct{})
	var moved func() int64
	var once sync.Once
	startMoving := func(int64, int64) { once.Do(func() { moved = mover(t, dsn, n, stop) }) }

	single := openLake(t)
	var sm *lake.Manifest
	var serr error
	r := New(distOptions(1, startMoving))
	r.beforeCommit = func(exported string) {
		sr := New(Options{Parallel: 2, SplitBytes: 256 << 10, LogInterval: -1})
		sr.importSnapshot = exported
		sm, serr = sr.Read(ctx, single, tn)
	}
	m, err := r.ReadTask(ctx, lk, tn, Task{Execution: "exec-1", Index: 0, Count: count})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	for i, p := range procs {
		if code := p.wait(t); code != 0 {
			t.Errorf("task %d exited %d: %s", i+1, code, p.stderr.String())
		}
	}
	if moved == nil || moved() < 5 {
		t.Fatal("fewer than 5 transfers during the read; the test proves nothing")
	}
	sum := func(m *lake.Manifest, tb string) string { return deref(m.Table(tb).Columns[1].Profile.Sum) }
	want := strconv.Itoa(n * start)
	if sum(m, "a") != want || sum(m, "b") != want || m.Table("a").Rows != n || m.Table("b").Rows != n {
		t.Errorf("snapshot sums a=%s b=%s rows %d %d, want %s each and %d rows", sum(m, "a"), sum(m, "b"), m.Table("a").Rows, m.Table("b").Rows, want, n)
	}
	checkRows(t, lk, m, "a", n, int64(n*start))
	checkRows(t, lk, m, "b", n, int64(n*start))
	sameTables(t, m, sm)
	if len(m.Table("empty").Files) != 1 || m.Table("empty").Rows != 0 {
		t.Errorf("empty table: %d files, %d rows; want one zero-row part", len(m.Table("empty").Files), m.Table("empty").Rows)
	}
	done := readRecords[doneRecord](t, dir, "acme", m.SnapshotID, "done.")
	tasks := map[int]int{}
	for _, d := range done {
		tasks[d.Task]++
	}
	if len(done) < 20 || len(tasks) < 3 {
		t.Errorf("%d ranges read by tasks %v: want many ranges read by at least 3 processes", len(done), tasks)
	}
	if got := committedIDs(t, lk); len(got) != 1 {
		t.Errorf("committed snapshots %v, want one", got)
	}
	// A worker started after the commit finds nothing to do.
	late := startTask(t, "file://"+dir, dsn, "exec-1", 2, count, 1, 1, 0)
	if code := late.wait(t); code != 0 {
		t.Errorf("late worker exited %d: %s", code, late.stderr.String())
	}
}

// TestDistributedWorkerKilled: worker processes killed (SIGKILL) at random
// points mid-read and then retried by the "job": the snapshot commits once,
// with every row exactly once, and the retries finished the ranges their
// killed attempts had claimed.
func TestDistributedWorkerKilled(t *testing.T) {
	const n, start = 40000, 1000
	_, dsn := moneyTenant(t, n, start)
	rnd := rand.New(rand.NewPCG(12, 34)) // fixed seed: the same points every run
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			lk, err := lake.Open(ctx, "file://"+dir)
			if err != nil {
				t.Fatal(err)
			}
			defer lk.Close()
			execution := fmt.Sprintf("kill-%d", round)
			const count = 4
			type retried struct {
				first, second *taskProc
			}
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				results = map[int]*retried{}
			)
			for i := 1; i < count; i++ {
				killAt := 1 + rnd.Int64N(12)
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := startTask(t, "file://"+dir, dsn, execution, i, count, 0, 1, killAt)
					<-p.done
					q := startTask(t, "file://"+dir, dsn, execution, i, count, 1, 1, 0) // the job's retry
					mu.Lock()
					results[i] = &retried{p, q}
					mu.Unlock()
				}()
			}
			coord := startTask(t, "file://"+dir, dsn, execution, 0, count, 0, 1, 0)
			if code := coord.wait(t); code != 0 {
				t.Fatalf("coordinator exited %d: %s", code, coord.stderr.String())
			}
			wg.Wait()
			killed := 0
			for i, r := range results {
				if r.first.wait(t) == -1 {
					killed++
				}
				if code := r.second.wait(t); code != 0 {
					t.Errorf("retry of task %d exited %d: %s", i, code, r.second.stderr.String())
				}
			}
			if killed == 0 {
				t.Fatal("no worker was killed mid-read; the test proves nothing")
			}
			ids := committedIDs(t, lk)
			if len(ids) != 1 {
				t.Fatalf("committed snapshots %v, want exactly one", ids)
			}
			m, err := lk.Manifest(ctx, "acme", ids[0])
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, lk, m, "a", n, int64(n*start))
			checkRows(t, lk, m, "b", n, int64(n*start))
			attempts := readRecords[failure](t, dir, "acme", ids[0], "attempt.")
			done := readRecords[doneRecord](t, dir, "acme", ids[0], "done.")
			if len(attempts) <= len(done) {
				t.Logf("every killed attempt died between ranges (%d attempts, %d ranges)", len(attempts), len(done))
			}
			for _, d := range done {
				if d.Try > 0 && d.Attempt == 0 {
					t.Errorf("range %d: retried by a first attempt of task %d", d.Range, d.Task)
				}
			}
		})
	}
}

// TestDistributedCoordinatorKilled: the coordinator killed mid-read commits
// nothing; a worker started afterwards cannot import the snapshot and fails;
// the coordinator's retry abandons the old snapshot and commits a new one,
// with every row once; GC sweeps the abandoned one.
func TestDistributedCoordinatorKilled(t *testing.T) {
	const n, start = 40000, 1000
	_, dsn := moneyTenant(t, n, start)
	ctx := context.Background()
	dir := t.TempDir()
	lk, err := lake.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	const count = 2
	coord := startTask(t, "file://"+dir, dsn, "exec-c", 0, count, 0, 1, 3)
	if code := coord.wait(t); code != -1 {
		t.Fatalf("coordinator exited %d, want killed: %s", code, coord.stderr.String())
	}
	if ids := committedIDs(t, lk); len(ids) != 0 {
		t.Fatalf("committed %v after the coordinator was killed", ids)
	}
	names, err := lk.RecordNames(ctx, "acme", pointerKind, "exec-c.")
	if err != nil || len(names) != 1 {
		t.Fatalf("pointers %v, %v: want one", names, err)
	}
	old := strings.TrimPrefix(names[0], "exec-c.")

	// No newer snapshot comes while it waits: it fails soon.
	w := startTask(t, "file://"+dir, dsn, "exec-c", 1, count, 0, 1, 0, envWait+"=1s")
	if code := w.wait(t); code != 1 || !strings.Contains(w.stderr.String(), ErrSnapshotGone.Error()) {
		t.Fatalf("late worker exited %d: %q; want 1 and %q", code, w.stderr.String(), ErrSnapshotGone)
	}

	coord = startTask(t, "file://"+dir, dsn, "exec-c", 0, count, 1, 1, 0)
	w = startTask(t, "file://"+dir, dsn, "exec-c", 1, count, 1, 1, 0)
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator retry exited %d: %s", code, coord.stderr.String())
	}
	if code := w.wait(t); code != 0 {
		t.Fatalf("worker retry exited %d: %s", code, w.stderr.String())
	}
	ids := committedIDs(t, lk)
	if len(ids) != 1 || ids[0] == old {
		t.Fatalf("committed %v; want one snapshot other than the abandoned %s", ids, old)
	}
	if ab := readRecords[failure](t, dir, "acme", old, "abandoned"); len(ab) != 1 {
		t.Errorf("the old snapshot has %d abandoned records, want 1", len(ab))
	}
	m, err := lk.Manifest(ctx, "acme", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, lk, m, "a", n, int64(n*start))
	checkRows(t, lk, m, "b", n, int64(n*start))

	oldTime, _ := lake.ParseSnapshotID(old)
	rep, err := lk.GC(ctx, "acme", lake.Policy{OrphanGrace: lake.MinOrphanGrace}, oldTime.Add(2*lake.MinOrphanGrace))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.SweptOrphans) != "["+old+"]" {
		t.Errorf("GC swept %v, want [%s]", rep.SweptOrphans, old)
	}
	left, _ := filepath.Glob(filepath.Join(dir, lake.SnapshotPrefix("acme", old), "*"))
	sort.Strings(left)
	if len(left) > 1 { // the seal stays a week
		t.Errorf("left of the abandoned snapshot: %v", left)
	}
}
