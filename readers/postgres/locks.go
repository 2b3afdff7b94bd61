package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrLockTimeout is wrapped by the error of a read that could not take a
// table lock: every one of Options.LockAttempts waits of Options.LockTimeout
// timed out. The error names the table and the locks that blocked it.
var ErrLockTimeout = errors.New("lock timeout")

// isLockTimeout says whether err is PostgreSQL's lock_not_available (55P03),
// which lock_timeout raises.
func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// withLockRetry runs fn, whose statements may wait for table locks, inside a
// savepoint of conn's open transaction. When a lock wait times out
// (lock_timeout), it rolls back to the savepoint, logs the blocking locks,
// pauses (half the lock timeout, doubling) and tries again, at most
// r.opts.LockAttempts times in all; then it fails with ErrLockTimeout,
// naming the blocking locks (the caller names the table). what names the
// tables for the log; oids are the relations concerned, for finding the
// blockers. Any other error of fn is returned as it is.
func (r *Reader) withLockRetry(ctx context.Context, conn *pgx.Conn, tenantID, what string, oids []uint32, fn func() error) error {
	pause := r.opts.LockTimeout / 2
	for attempt := 1; ; attempt++ {
		if _, err := conn.Exec(ctx, "SAVEPOINT tenantlake_lock"); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		err := fn()
		if err == nil {
			if _, err := conn.Exec(ctx, "RELEASE SAVEPOINT tenantlake_lock"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
			return nil
		}
		if !isLockTimeout(err) {
			return err
		}
		if _, rerr := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT tenantlake_lock"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		blockers, berr := blockingLocks(ctx, conn, oids)
		if berr != nil {
			return errors.Join(err, berr)
		}
		if attempt >= r.opts.LockAttempts {
			return fmt.Errorf("%w: waited %d times %s for an ACCESS SHARE lock; %s", ErrLockTimeout, attempt, r.opts.LockTimeout, blockers)
		}
		r.opts.Logger.Warn("postgres reader: waiting for a table lock", "tenant", tenantID, "table", what,
			"attempt", attempt, "of", r.opts.LockAttempts, "lock_timeout", r.opts.LockTimeout, "retry_in", pause, "blocked_by", blockers)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a table lock (%s): %w", blockers, ctx.Err())
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// blockingLocks describes the locks that conflict with an ACCESS SHARE lock
// (only ACCESS EXCLUSIVE does) on the relations oids and their partitions,
// held or waited for by other sessions: pid, mode, relation, and from
// pg_stat_activity the user, application, state and transaction start. It
// never shows a query's text, which may hold secrets.
func blockingLocks(ctx context.Context, conn *pgx.Conn, oids []uint32) (string, error) {
	rows, err := conn.Query(ctx, `
WITH RECURSIVE rels(oid) AS (
    SELECT unnest($1::oid[])
  UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN rels r ON i.inhparent = r.oid
)
SELECT l.pid, l.mode, l.granted, n.nspname, c.relname,
       coalesce(a.usename::text, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')
FROM pg_locks l
JOIN rels ON rels.oid = l.relation
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY l.granted DESC, l.pid, n.nspname, c.relname
LIMIT 10`, oids)
	if err != nil {
		return "", fmt.Errorf("find blocking locks: %w", err)
	}
	var out []string
	for rows.Next() {
		var (
			pid                       int32
			mode                      string
			granted                   bool
			schema, rel               string
			user, app, state, started string
		)
		if err := rows.Scan(&pid, &mode, &granted, &schema, &rel, &user, &app, &state, &started); err != nil {
			return "", fmt.Errorf("find blocking locks: %w", err)
		}
		verb := "holds"
		if !granted {
			verb = "waits for" // a queued request blocks later ones behind it
		}
		var who []string
		if user != "" {
			who = append(who, fmt.Sprintf("user %q", user))
		}
		if app != "" {
			who = append(who, fmt.Sprintf("application %q", app))
		}
		if state != "" {
			who = append(who, state)
		}
		if started != "" {
			who = append(who, "transaction started "+started)
		}
		s := fmt.Sprintf("pid %d %s %s on %s.%s", pid, verb, mode, displayIdent(schema), displayIdent(rel))
		if len(who) > 0 {
			s += " (" + strings.Join(who, ", ") + ")"
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("find blocking locks: %w", err)
	}
	if len(out) == 0 {
		return "no conflicting lock is held any more", nil
	}
	return "blocked by " + strings.Join(out, "; "), nil
}

// tracker follows a read for its periodic log line.
type tracker struct {
	rows, bytes atomic.Int64
	mu          sync.Mutex
	phase       string
	active      map[string]int // table source → ranges being read
}

func (tr *tracker) setPhase(p string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.phase = p
}

// reading marks one range of table as being read (delta 1) or done (-1).
func (tr *tracker) reading(table string, delta int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.active == nil {
		tr.active = map[string]int{}
	}
	tr.active[table] += delta
	if tr.active[table] <= 0 {
		delete(tr.active, table)
	}
}

// logEvery logs, every interval until stop is closed, that the read of
// tenantID is still running: its phase, the tables being read, the rows and
// bytes read so far and the time taken.
func (tr *tracker) logEvery(log *slog.Logger, interval time.Duration, tenantID string, stop <-chan struct{}) {
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		tr.mu.Lock()
		phase := tr.phase
		tables := make([]string, 0, len(tr.active))
		for t := range tr.active {
			tables = append(tables, t)
		}
		tr.mu.Unlock()
		sort.Strings(tables)
		log.Info("postgres reader: still reading", "tenant", tenantID, "phase", phase, "tables", strings.Join(tables, ", "),
			"rows", tr.rows.Load(), "bytes", tr.bytes.Load(), "elapsed", time.Since(start).Round(time.Second))
	}
}
