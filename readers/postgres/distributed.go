package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// Task is one process of a distributed read: one task of a Cloud Run job
// execution, or one of the processes `tenantlake read --workers N` starts.
type Task struct {
	// Execution names the execution; its tasks share it
	// (CLOUD_RUN_EXECUTION): 1 to 63 of a-z, 0-9 and '-'.
	Execution string
	// Index is the task's index from 0 to Count-1 (CLOUD_RUN_TASK_INDEX);
	// task 0 coordinates.
	Index, Count int
	// Attempt counts the task's retries, from 0 (CLOUD_RUN_TASK_ATTEMPT).
	Attempt int
}

// ErrSnapshotGone is wrapped by the error of a worker task that could not
// import its execution's snapshot, uncommitted: the coordinator's exporting
// transaction has ended (the coordinator died). The execution fails; the
// coordinator's retry starts a new snapshot.
var ErrSnapshotGone = errors.New("the snapshot can no longer be imported: its coordinator's transaction has ended")

// ErrAbandoned is wrapped by the error of a task whose snapshot was
// abandoned: a range failed too often, the coordinator failed, or a retried
// coordinator gave the snapshot up to start a new one. Nothing of it is
// committed; GC sweeps it.
var ErrAbandoned = errors.New("the distributed read's snapshot was abandoned")

const (
	// pointerKind: tenant records <execution>.<snapshot-id>, one per
	// snapshot an execution's coordinator started, so its workers find it.
	pointerKind = "bigreads"
	// A range's parts are numbered range*partStride + attempt*attemptStride
	// + j: deterministic names, a retry never meets an earlier attempt's.
	attemptStride   = 100
	attemptsOfRange = 10
	partStride      = attemptStride * attemptsOfRange
	// maxRangeFailures failed attempts of one range abandon the snapshot.
	maxRangeFailures = 3
	planVersion      = 1
)

var executionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (tk Task) check() error {
	if !executionRE.MatchString(tk.Execution) {
		return fmt.Errorf("task: execution %q: want 1 to 63 of a-z, 0-9 and '-'", tk.Execution)
	}
	if tk.Count < 1 || tk.Index < 0 || tk.Index >= tk.Count {
		return fmt.Errorf("task: index %d of %d tasks: want 0 <= index < count", tk.Index, tk.Count)
	}
	if tk.Attempt < 0 {
		return fmt.Errorf("task: attempt %d: want 0 or more", tk.Attempt)
	}
	return nil
}

// ReadTask runs one task of a distributed read of t: many processes read one
// snapshot, each through Options.Parallel connections.
//
// Task 0 coordinates: it opens the REPEATABLE READ transaction, exports its
// snapshot, plans the tables and their ranges exactly as Read does, claims
// the snapshot id and writes the plan into the snapshot's records on the
// lake, with a pointer record (tenant=T/_bigreads/<execution>.<snapshot>)
// that its workers look for. Then it reads ranges like any worker, waits
// until every range is done, ends its transaction, merges the ranges'
// completion records into the manifest in plan order and commits it; it
// returns the manifest. It keeps its transaction (and its ACCESS SHARE
// locks) open until every range is read, so a retried worker can still
// import the snapshot.
//
// Every other task waits (Options.PlanWait) for its execution's newest
// pointer, imports the snapshot and reads ranges; it returns a nil manifest.
// Ranges are taken dynamically with write-once claim records, so any number
// of tasks, started in any order and with any parallelism, reads every range
// once: the coordinator reads whatever no worker took, and a worker that
// finds nothing left (or a committed snapshot, or no plan within PlanWait)
// returns nil having done nothing. A worker that cannot import an
// uncommitted snapshot fails with ErrSnapshotGone.
//
// A range's parts have deterministic names from its index and the attempt
// (an "attempt" record per try), and a range is done once its completion
// record (files, rows, profile figures) is written: a retried task first
// finishes the ranges it claimed, never rewrites another attempt's parts,
// and a finished range is never read again. A range that fails 3 times, or
// a failing coordinator, abandons the snapshot (ErrAbandoned); a retried
// coordinator abandons its earlier attempt's uncommitted snapshot and starts
// a new one, or returns the manifest that attempt committed. Nothing of an
// abandoned snapshot is committed; GC sweeps it.
func (r *Reader) ReadTask(ctx context.Context, lk *lake.Lake, t tenant.Tenant, tk Task) (*lake.Manifest, error) {
	var (
		m   *lake.Manifest
		err error
	)
	if err = tk.check(); err == nil {
		if err = tenant.ValidateID(t.ID); err == nil {
			if tk.Index == 0 {
				m, err = r.coordinate(ctx, lk, t, tk)
			} else {
				err = r.work(ctx, lk, t, tk)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres reader: tenant %s: task %d of %d (attempt %d): %w", t.ID, tk.Index, tk.Count, tk.Attempt, err)
	}
	return m, nil
}

func (r *Reader) pollInterval() time.Duration {
	if r.opts.PollInterval > 0 {
		return r.opts.PollInterval
	}
	return time.Second
}

func (r *Reader) planWait() time.Duration {
	if r.opts.PlanWait > 0 {
		return r.opts.PlanWait
	}
	return 10 * time.Minute
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// coordinate is task 0.
func (r *Reader) coordinate(ctx context.Context, lk *lake.Lake, t tenant.Tenant, tk Task) (*lake.Manifest, error) {
	if m, err := r.abandonEarlier(ctx, lk, t.ID, tk); m != nil || err != nil {
		return m, err
	}
	tr := &tracker{phase: "connecting"}
	if r.opts.LogInterval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go tr.logEvery(r.opts.Logger, r.opts.LogInterval, t.ID, stop)
	}
	s, err := r.begin(ctx, lk, t, tr)
	if err != nil {
		return nil, err
	}
	defer s.conn.Close(context.WithoutCancel(ctx))
	id := s.snap.ID()
	fail := func(err error) (*lake.Manifest, error) {
		abandon(context.WithoutCancel(ctx), s.snap, tk, err)
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	pl := newPlan(s, tk)
	if err := s.snap.PutRecord(ctx, "plan", pl); err != nil {
		return fail(err)
	}
	if err := lk.PutRecord(ctx, t.ID, pointerKind, tk.Execution+"."+id, pointer{Execution: tk.Execution, SnapshotID: id, Attempt: tk.Attempt, At: time.Now().UTC()}); err != nil {
		return fail(err)
	}
	r.opts.Logger.Info("postgres reader: distributed read planned", "tenant", t.ID, "snapshot", id, "execution", tk.Execution,
		"tasks", tk.Count, "tables", len(s.tables), "ranges", len(pl.Ranges))
	tr.setPhase("reading")
	if err := r.share(ctx, t, tk, s.snap, pl, s.tables, tr); err != nil {
		return fail(err)
	}
	tr.setPhase("waiting for the workers")
	done, err := r.waitRanges(ctx, s.snap, pl)
	if err != nil {
		return fail(err)
	}
	for i, d := range done {
		tb := s.tables[pl.Ranges[i].Table]
		res, err := d.result(tb)
		if err != nil {
			return fail(fmt.Errorf("range %d: %w", i, err))
		}
		tb.add(res)
	}
	if r.beforeCommit != nil {
		r.beforeCommit(s.exported)
	}
	m, err := r.commit(ctx, s)
	if err != nil {
		return fail(err)
	}
	imported, _ := s.snap.RecordNames(ctx, "imported.")
	r.opts.Logger.Info("postgres reader: distributed read committed", "tenant", t.ID, "snapshot", id, "execution", tk.Execution,
		"ranges", len(pl.Ranges), "task_attempts_imported", len(imported))
	return m, nil
}

// abandonEarlier handles the snapshots an earlier attempt of this
// coordinator started: one that is committed is returned (nothing to do);
// the others can never commit (their transaction died with the attempt)
// and are abandoned, so their workers stop.
func (r *Reader) abandonEarlier(ctx context.Context, lk *lake.Lake, tenantID string, tk Task) (*lake.Manifest, error) {
	names, err := lk.RecordNames(ctx, tenantID, pointerKind, tk.Execution+".")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		id := strings.TrimPrefix(name, tk.Execution+".")
		snap, err := lk.JoinSnapshot(ctx, tenantID, id)
		switch {
		case errors.Is(err, lake.ErrExists):
			m, err := lk.Manifest(ctx, tenantID, id)
			if errors.Is(err, lake.ErrNotFound) {
				continue // sealed by GC
			}
			if err != nil {
				return nil, err
			}
			r.opts.Logger.Info("postgres reader: an earlier attempt of this execution committed the snapshot", "tenant", tenantID, "snapshot", id)
			return m, nil
		case errors.Is(err, lake.ErrExpired), errors.Is(err, lake.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		abandon(ctx, snap, tk, errors.New("the coordinator ended before committing it; its retry starts a new snapshot"))
	}
	return nil, nil
}

// abandon records that snap will never be committed, so every task stops.
func abandon(ctx context.Context, snap *lake.Snapshot, tk Task, cause error) {
	rec := failure{Task: tk.Index, Attempt: tk.Attempt, Error: cause.Error(), At: time.Now().UTC()}
	if err := snap.PutRecord(ctx, "abandoned", rec); err != nil && !errors.Is(err, lake.ErrExists) {
		_ = err // best effort: the snapshot stays uncommitted either way
	}
}

func abandoned(ctx context.Context, snap *lake.Snapshot) error {
	var f failure
	err := snap.GetRecord(ctx, "abandoned", &f)
	if errors.Is(err, lake.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w by task %d (attempt %d): %s", ErrAbandoned, f.Task, f.Attempt, f.Error)
}

// waitRanges waits until every range of pl has its completion record and
// returns them in plan order. It fails when the snapshot is abandoned, a
// range failed maxRangeFailures times, or the snapshot id gets too old to
// commit.
func (r *Reader) waitRanges(ctx context.Context, snap *lake.Snapshot, pl *plan) ([]*doneRecord, error) {
	start, _ := lake.ParseSnapshotID(snap.ID())
	for {
		names, err := snap.RecordNames(ctx, "done.")
		if err != nil {
			return nil, err
		}
		if len(names) >= len(pl.Ranges) {
			break
		}
		if err := abandoned(ctx, snap); err != nil {
			return nil, err
		}
		failed, err := snap.RecordNames(ctx, "failed.")
		if err != nil {
			return nil, err
		}
		perRange := map[string][]string{}
		for _, f := range failed {
			rg, _, _ := strings.Cut(strings.TrimPrefix(f, "failed."), ".")
			perRange[rg] = append(perRange[rg], f)
		}
		for rg, fs := range perRange {
			if len(fs) >= maxRangeFailures {
				var f failure
				if err := snap.GetRecord(ctx, fs[len(fs)-1], &f); err != nil {
					return nil, err
				}
				return nil, fmt.Errorf("range %s failed %d times, last by task %d: %s", rg, len(fs), f.Task, f.Error)
			}
		}
		if time.Since(start) > lake.MaxReadDuration {
			return nil, fmt.Errorf("%w: %d of %d ranges done after %s", lake.ErrExpired, len(names), len(pl.Ranges), lake.MaxReadDuration)
		}
		if err := sleep(ctx, r.pollInterval()); err != nil {
			return nil, err
		}
	}
	out := make([]*doneRecord, len(pl.Ranges))
	for i := range pl.Ranges {
		d := &doneRecord{}
		if err := snap.GetRecord(ctx, "done."+strconv.Itoa(i), d); err != nil {
			return nil, fmt.Errorf("range %d: %w", i, err)
		}
		if d.Range != i || d.Table != pl.Ranges[i].Table {
			return nil, fmt.Errorf("range %d: %w: its completion record is for range %d of table %d", i, lake.ErrCorrupt, d.Range, d.Table)
		}
		out[i] = d
	}
	return out, nil
}

// work is a worker task: it follows its execution's newest snapshot.
func (r *Reader) work(ctx context.Context, lk *lake.Lake, t tenant.Tenant, tk Task) error {
	tr := &tracker{phase: "waiting for the plan"}
	if r.opts.LogInterval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go tr.logEvery(r.opts.Logger, r.opts.LogInterval, t.ID, stop)
	}
	after := ""    // a snapshot id already given up
	var gone error // why, when it could not be imported
	deadline := time.Now().Add(r.planWait())
	for {
		names, err := lk.RecordNames(ctx, t.ID, pointerKind, tk.Execution+".")
		if err != nil {
			return err
		}
		id := ""
		if len(names) > 0 {
			id = strings.TrimPrefix(names[len(names)-1], tk.Execution+".")
		}
		if id == "" || id <= after {
			if time.Now().After(deadline) {
				if gone != nil {
					return gone
				}
				r.opts.Logger.Info("postgres reader: no plan to work on; task 0 reads every range no worker took", "tenant", t.ID, "execution", tk.Execution, "task", tk.Index)
				return nil
			}
			if err := sleep(ctx, r.pollInterval()); err != nil {
				return err
			}
			continue
		}
		err = r.workOn(ctx, lk, t, tk, id, tr)
		if errors.Is(err, ErrAbandoned) || errors.Is(err, ErrSnapshotGone) {
			// A retried coordinator starts a newer snapshot: wait for it.
			r.opts.Logger.Info("postgres reader: cannot work on this snapshot; waiting for a newer one", "tenant", t.ID, "snapshot", id, "err", err.Error())
			after, deadline, gone = id, time.Now().Add(r.planWait()), nil
			if errors.Is(err, ErrSnapshotGone) {
				gone = fmt.Errorf("snapshot %s: %w", id, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", id, err)
		}
		return nil
	}
}

// workOn reads a share of snapshot id's ranges.
func (r *Reader) workOn(ctx context.Context, lk *lake.Lake, t tenant.Tenant, tk Task, id string, tr *tracker) error {
	snap, err := lk.JoinSnapshot(ctx, t.ID, id)
	if errors.Is(err, lake.ErrExists) {
		return nil // committed: nothing left to do
	}
	if err != nil {
		return err
	}
	if err := abandoned(ctx, snap); err != nil {
		return err
	}
	pl := &plan{}
	if err := snap.GetRecord(ctx, "plan", pl); err != nil {
		return err
	}
	if pl.Version != planVersion || pl.Tenant != t.ID || pl.SnapshotID != id {
		return fmt.Errorf("%w: plan of snapshot %s: version %d, tenant %s, snapshot %s", lake.ErrCorrupt, id, pl.Version, pl.Tenant, pl.SnapshotID)
	}
	tables, err := pl.tablesOf()
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	tr.setPhase("reading")
	err = r.share(ctx, t, tk, snap, pl, tables, tr)
	if errors.Is(err, ErrSnapshotGone) {
		if ok, cerr := snap.Committed(ctx); cerr == nil && ok {
			return nil // finished by others meanwhile
		}
		if aerr := abandoned(ctx, snap); aerr != nil {
			return aerr
		}
	}
	return err
}

// share reads ranges of pl until none is left to take: first those this
// task claimed in an earlier attempt and did not finish, then any that no
// task has claimed. Each of its connections imports the snapshot.
func (r *Reader) share(ctx context.Context, t tenant.Tenant, tk Task, snap *lake.Snapshot, pl *plan, tables []*table, tr *tracker) error {
	q, err := newQueue(ctx, snap, tk, len(pl.Ranges))
	if err != nil {
		return err
	}
	if q.empty() {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for c := range min(r.opts.Parallel, len(pl.Ranges)) {
		g.Go(func() error {
			rg, ok, err := q.next(gctx)
			if err != nil || !ok {
				return err
			}
			conn, err := r.connect(gctx, t)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(gctx))
			if _, err := conn.Exec(gctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
				return fmt.Errorf("worker begin: %w", err)
			}
			if _, err := conn.Exec(gctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(pl.Exported)); err != nil {
				return fmt.Errorf("%w (snapshot %s): %v", ErrSnapshotGone, pl.Exported, err)
			}
			name := fmt.Sprintf("imported.%d.%d.%d", tk.Index, tk.Attempt, c)
			if err := snap.PutRecord(gctx, name, failure{Task: tk.Index, Attempt: tk.Attempt, At: time.Now().UTC()}); err != nil && !errors.Is(err, lake.ErrExists) {
				return err
			}
			for ok {
				if err := abandoned(gctx, snap); err != nil {
					return err
				}
				if err := r.readShared(gctx, conn, t, tk, snap, pl, tables, rg, tr); err != nil {
					return err
				}
				if rg, ok, err = q.next(gctx); err != nil {
					return err
				}
			}
			if _, err := conn.Exec(gctx, "COMMIT"); err != nil {
				return fmt.Errorf("worker end transaction: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// readShared reads range i of pl in its next attempt and writes its
// completion record; a failure is recorded as failed.<i>.<attempt>.
func (r *Reader) readShared(ctx context.Context, conn *pgx.Conn, t tenant.Tenant, tk Task, snap *lake.Snapshot, pl *plan, tables []*table, i int, tr *tracker) error {
	pr := pl.Ranges[i]
	tb := tables[pr.Table]
	attempt := -1
	for k := range attemptsOfRange {
		err := snap.PutRecord(ctx, fmt.Sprintf("attempt.%d.%d", i, k), failure{Task: tk.Index, Attempt: tk.Attempt, At: time.Now().UTC()})
		if errors.Is(err, lake.ErrExists) {
			continue
		}
		if err != nil {
			return err
		}
		attempt = k
		break
	}
	if attempt < 0 {
		err := fmt.Errorf("range %d of table %s: tried %d times", i, tb.source(), attemptsOfRange)
		_ = snap.PutRecord(ctx, fmt.Sprintf("failed.%d.%d", i, attemptsOfRange), failure{Task: tk.Index, Attempt: tk.Attempt, Error: err.Error(), At: time.Now().UTC()})
		abandon(ctx, snap, tk, err)
		return err
	}
	number := func(j int) (int, error) {
		if j >= attemptStride {
			return 0, fmt.Errorf("range %d of table %s needs more than %d parts: raise the part size", i, tb.source(), attemptStride)
		}
		return i*partStride + attempt*attemptStride + j, nil
	}
	tr.reading(tb.source(), 1)
	var res *rangeResult
	err := r.withLockRetry(ctx, conn, t.ID, "table "+tb.source(), []uint32{tb.oid}, func() error {
		var err error
		res, err = r.readRange(ctx, conn, snap, task{tb, pr.Range}, tr, number)
		return err
	})
	tr.reading(tb.source(), -1)
	if err != nil {
		err = fmt.Errorf("table %s: %w", tb.source(), err)
		if ctx.Err() == nil {
			rec := failure{Task: tk.Index, Attempt: tk.Attempt, Error: err.Error(), At: time.Now().UTC()}
			_ = snap.PutRecord(context.WithoutCancel(ctx), fmt.Sprintf("failed.%d.%d", i, attempt), rec)
		}
		return err
	}
	d := newDoneRecord(i, pr.Table, tk, attempt, res, tb)
	if err := snap.PutRecord(ctx, "done."+strconv.Itoa(i), d); err != nil && !errors.Is(err, lake.ErrExists) {
		return err
	}
	return nil
}

// queue hands out ranges to one task's connections.
type queue struct {
	mu      sync.Mutex
	snap    *lake.Snapshot
	tk      Task
	own     []int // claimed by this task earlier, not done
	pos     int   // next range to try to claim
	n       int
	claimed map[int]bool
}

func parseRecordIndex(name, prefix string) (int, bool) {
	rest := strings.TrimPrefix(name, prefix)
	rest, _, _ = strings.Cut(rest, ".")
	i, err := strconv.Atoi(rest)
	return i, err == nil && i >= 0
}

func newQueue(ctx context.Context, snap *lake.Snapshot, tk Task, n int) (*queue, error) {
	q := &queue{snap: snap, tk: tk, n: n, claimed: map[int]bool{}}
	if err := q.refresh(ctx); err != nil {
		return nil, err
	}
	done, err := snap.RecordNames(ctx, "done.")
	if err != nil {
		return nil, err
	}
	isDone := map[int]bool{}
	for _, name := range done {
		if i, ok := parseRecordIndex(name, "done."); ok {
			isDone[i] = true
		}
	}
	for i := range q.claimed {
		if isDone[i] {
			continue
		}
		var c failure
		if err := snap.GetRecord(ctx, "claim."+strconv.Itoa(i), &c); err != nil {
			return nil, err
		}
		if c.Task == tk.Index {
			q.own = append(q.own, i)
		}
	}
	sort.Ints(q.own)
	return q, nil
}

func (q *queue) refresh(ctx context.Context) error {
	names, err := q.snap.RecordNames(ctx, "claim.")
	if err != nil {
		return err
	}
	for _, name := range names {
		if i, ok := parseRecordIndex(name, "claim."); ok {
			q.claimed[i] = true
		}
	}
	return nil
}

// empty says whether nothing is left for this task, as far as it knows.
func (q *queue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.own) > 0 {
		return false
	}
	for i := q.pos; i < q.n; i++ {
		if !q.claimed[i] {
			return false
		}
	}
	return true
}

// next returns a range for this task to read (ok false: none left).
func (q *queue) next(ctx context.Context) (int, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.own) > 0 {
		i := q.own[0]
		q.own = q.own[1:]
		return i, true, nil
	}
	for ; q.pos < q.n; q.pos++ {
		i := q.pos
		if q.claimed[i] {
			continue
		}
		err := q.snap.PutRecord(ctx, "claim."+strconv.Itoa(i), failure{Task: q.tk.Index, Attempt: q.tk.Attempt, At: time.Now().UTC()})
		if errors.Is(err, lake.ErrExists) {
			q.claimed[i] = true
			if err := q.refresh(ctx); err != nil { // others are ahead: skip what they took
				return 0, false, err
			}
			continue
		}
		if err != nil {
			return 0, false, err
		}
		q.claimed[i] = true
		q.pos++
		return i, true, nil
	}
	return 0, false, nil
}

// Records of a distributed read.

// pointer is the tenant record <execution>.<snapshot-id>.
type pointer struct {
	Execution  string    `json:"execution"`
	SnapshotID string    `json:"snapshot_id"`
	Attempt    int       `json:"coordinator_attempt"`
	At         time.Time `json:"at"`
}

// failure is the body of claim, attempt, imported, failed and abandoned
// records: who wrote it, when, and for failures why.
type failure struct {
	Task    int       `json:"task"`
	Attempt int       `json:"task_attempt"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

// plan is the snapshot record "plan": everything a worker needs to read
// any range exactly as the coordinator would.
type plan struct {
	Version    int         `json:"version"`
	Tenant     string      `json:"tenant"`
	SnapshotID string      `json:"snapshot_id"`
	Execution  string      `json:"execution"`
	Tasks      int         `json:"tasks"`
	Exported   string      `json:"exported_snapshot"`
	Tables     []planTable `json:"tables"`
	Ranges     []planRange `json:"ranges"` // largest first
}

type planRange struct {
	Table int   `json:"table"` // index in Tables
	Range int   `json:"range"` // index in the table's ranges
	Size  int64 `json:"size"`
}

type planTable struct {
	OID     uint32         `json:"oid"`
	Schema  string         `json:"schema"`
	Relname string         `json:"relname"`
	Relkind string         `json:"relkind"`
	Name    string         `json:"name"`
	Cols    []planColumn   `json:"columns"`
	Key     []int          `json:"key"`
	UseCtid bool           `json:"use_ctid"`
	Ranges  []planRelRange `json:"ranges"`
}

type planRelRange struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Only   bool   `json:"only"`
	Lo     int64  `json:"lo"`
	Hi     int64  `json:"hi"`
	Size   int64  `json:"size"`
}

type planColumn struct {
	Source     string `json:"source"`
	Name       string `json:"name"`
	SourceType string `json:"source_type"`
	Kind       int    `json:"kind"`
	Nullable   bool   `json:"nullable"`
	Policy     string `json:"policy,omitempty"`
	Prec       int    `json:"prec,omitempty"`
	Scale      int    `json:"scale,omitempty"`
	FLBA       int    `json:"flba,omitempty"`
	ToJSON     bool   `json:"to_json,omitempty"`
	Array      bool   `json:"array,omitempty"`
	Nested     string `json:"nested,omitempty"`
}

func newPlan(s *session, tk Task) *plan {
	pl := &plan{Version: planVersion, Tenant: s.m.Tenant, SnapshotID: s.snap.ID(), Execution: tk.Execution, Tasks: tk.Count, Exported: s.exported}
	for ti, tb := range s.tables {
		pt := planTable{OID: tb.oid, Schema: tb.schema, Relname: tb.relname, Relkind: string(tb.relkind), Name: tb.name, Key: tb.key, UseCtid: tb.useCtid}
		for _, c := range tb.cols {
			pt.Cols = append(pt.Cols, planColumn{Source: c.source, Name: c.name, SourceType: c.sourceType, Kind: int(c.kind), Nullable: c.nullable,
				Policy: string(c.policy), Prec: c.prec, Scale: c.scale, FLBA: c.flba, ToJSON: c.toJSON, Array: c.array, Nested: c.nested})
		}
		for ri, rg := range tb.ranges {
			pt.Ranges = append(pt.Ranges, planRelRange{Schema: rg.schema, Name: rg.name, Only: rg.only, Lo: rg.lo, Hi: rg.hi, Size: rg.size})
			pl.Ranges = append(pl.Ranges, planRange{Table: ti, Range: ri, Size: rg.size})
		}
		pl.Tables = append(pl.Tables, pt)
	}
	// Largest first, so a big table's ranges do not trail at the end.
	sort.SliceStable(pl.Ranges, func(i, j int) bool { return pl.Ranges[i].Size > pl.Ranges[j].Size })
	return pl
}

// tablesOf rebuilds the coordinator's tables from the plan.
func (pl *plan) tablesOf() ([]*table, error) {
	var out []*table
	for _, pt := range pl.Tables {
		if len(pt.Relkind) != 1 || len(pt.Cols) == 0 || len(pt.Ranges) == 0 {
			return nil, fmt.Errorf("%w: table %s.%s", lake.ErrCorrupt, pt.Schema, pt.Relname)
		}
		tb := &table{oid: pt.OID, schema: pt.Schema, relname: pt.Relname, relkind: pt.Relkind[0], name: pt.Name, key: pt.Key, useCtid: pt.UseCtid}
		for _, k := range pt.Key {
			if k < 0 || k >= len(pt.Cols) {
				return nil, fmt.Errorf("%w: table %s: key column %d", lake.ErrCorrupt, tb.source(), k)
			}
		}
		for _, pc := range pt.Cols {
			if pc.Kind < int(kInt16) || pc.Kind > int(kTime) {
				return nil, fmt.Errorf("%w: table %s: column %s: kind %d", lake.ErrCorrupt, tb.source(), pc.Source, pc.Kind)
			}
			tb.cols = append(tb.cols, column{source: pc.Source, name: pc.Name, sourceType: pc.SourceType, kind: kind(pc.Kind), nullable: pc.Nullable,
				policy: Policy(pc.Policy), prec: pc.Prec, scale: pc.Scale, flba: pc.FLBA, toJSON: pc.ToJSON, array: pc.Array, nested: pc.Nested})
		}
		for _, pr := range pt.Ranges {
			tb.ranges = append(tb.ranges, readRange{schema: pr.Schema, name: pr.Name, only: pr.Only, lo: pr.Lo, hi: pr.Hi, size: pr.Size})
		}
		tb.pschema = parquetSchema(tb)
		tb.profiles = make([]profile, len(tb.cols))
		out = append(out, tb)
	}
	for i, pr := range pl.Ranges {
		if pr.Table < 0 || pr.Table >= len(out) || pr.Range < 0 || pr.Range >= len(out[pr.Table].ranges) {
			return nil, fmt.Errorf("%w: range %d", lake.ErrCorrupt, i)
		}
	}
	return out, nil
}

// doneRecord is the snapshot record done.<range>: what the range wrote.
type doneRecord struct {
	Range    int           `json:"range"`
	Table    int           `json:"table"`
	Task     int           `json:"task"`
	Attempt  int           `json:"task_attempt"`
	Try      int           `json:"range_attempt"`
	Rows     int64         `json:"rows"`
	Files    []lake.File   `json:"files"`
	Profiles []profileJSON `json:"profiles"`
	At       time.Time     `json:"at"`
}

func newDoneRecord(i, table int, tk Task, try int, res *rangeResult, tb *table) *doneRecord {
	d := &doneRecord{Range: i, Table: table, Task: tk.Index, Attempt: tk.Attempt, Try: try, Rows: res.rows, Files: res.files, At: time.Now().UTC()}
	if d.Files == nil {
		d.Files = []lake.File{}
	}
	for k := range res.profiles {
		d.Profiles = append(d.Profiles, res.profiles[k].toJSON())
	}
	return d
}

func (d *doneRecord) result(tb *table) (*rangeResult, error) {
	if len(d.Profiles) != len(tb.cols) {
		return nil, fmt.Errorf("%w: %d profiles for %d columns", lake.ErrCorrupt, len(d.Profiles), len(tb.cols))
	}
	var rows int64
	for _, f := range d.Files {
		rows += f.Rows
	}
	if rows != d.Rows {
		return nil, fmt.Errorf("%w: files hold %d rows, the record says %d", lake.ErrCorrupt, rows, d.Rows)
	}
	res := &rangeResult{files: d.Files, rows: d.Rows, profiles: make([]profile, len(d.Profiles))}
	for k := range d.Profiles {
		p, err := d.Profiles[k].profile()
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", lake.ErrCorrupt, tb.cols[k].source, err)
		}
		res.profiles[k] = p
	}
	return res, nil
}

// profileJSON carries a profile exactly: floats by their bits, big
// integers as decimal text, strings as bytes.
type profileJSON struct {
	Nulls    int64   `json:"nulls"`
	Seen     bool    `json:"seen,omitempty"`
	Imin     int64   `json:"imin,omitempty"`
	Imax     int64   `json:"imax,omitempty"`
	Isum     int64   `json:"isum,omitempty"`
	Iseen    bool    `json:"iseen,omitempty"`
	Bsum     *string `json:"bsum,omitempty"`
	Bmin     *string `json:"bmin,omitempty"`
	Bmax     *string `json:"bmax,omitempty"`
	Fmin     uint64  `json:"fmin,omitempty"`
	Fmax     uint64  `json:"fmax,omitempty"`
	Fsum     uint64  `json:"fsum,omitempty"`
	Fseen    bool    `json:"fseen,omitempty"`
	Smin     []byte  `json:"smin,omitempty"`
	Smax     []byte  `json:"smax,omitempty"`
	SawFalse bool    `json:"saw_false,omitempty"`
	SawTrue  bool    `json:"saw_true,omitempty"`
}

func bigText(b *big.Int) *string {
	if b == nil {
		return nil
	}
	s := b.String()
	return &s
}

func parseBig(s *string) (*big.Int, error) {
	if s == nil {
		return nil, nil
	}
	b, ok := new(big.Int).SetString(*s, 10)
	if !ok {
		return nil, fmt.Errorf("bad integer %q", *s)
	}
	return b, nil
}

func (p *profile) toJSON() profileJSON {
	return profileJSON{Nulls: p.nulls, Seen: p.seen, Imin: p.imin, Imax: p.imax, Isum: p.isum, Iseen: p.iseen,
		Bsum: bigText(p.bsum), Bmin: bigText(p.bmin), Bmax: bigText(p.bmax),
		Fmin: float64bits(p.fmin), Fmax: float64bits(p.fmax), Fsum: float64bits(p.fsum), Fseen: p.fseen,
		Smin: p.smin, Smax: p.smax, SawFalse: p.sawFalse, SawTrue: p.sawTrue}
}

func (j *profileJSON) profile() (profile, error) {
	p := profile{nulls: j.Nulls, seen: j.Seen, imin: j.Imin, imax: j.Imax, isum: j.Isum, iseen: j.Iseen,
		fmin: float64frombits(j.Fmin), fmax: float64frombits(j.Fmax), fsum: float64frombits(j.Fsum), fseen: j.Fseen,
		smin: j.Smin, smax: j.Smax, sawFalse: j.SawFalse, sawTrue: j.SawTrue}
	var err error
	if p.bsum, err = parseBig(j.Bsum); err != nil {
		return p, err
	}
	if p.bmin, err = parseBig(j.Bmin); err != nil {
		return p, err
	}
	if p.bmax, err = parseBig(j.Bmax); err != nil {
		return p, err
	}
	return p, nil
}

func float64bits(f float64) uint64     { return math.Float64bits(f) }
func float64frombits(b uint64) float64 { return math.Float64frombits(b) }
