package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/internal/pgtest"
)

// logBuffer collects slog text lines from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewTextHandler(b, nil))
}

const lockSecret = "S3cretPW-in-a-query"

// TestLockHeld: with an ACCESS EXCLUSIVE lock held by another session, the
// read does not wait forever: each wait is bounded by LockTimeout, logged,
// retried, and the read fails with ErrLockTimeout naming the tenant, the
// table and the blocking lock (pid, mode, application) but never the
// holder's query text; nothing is committed. Released during a pause, the
// lock is taken on a retry and the read succeeds.
func TestLockHeld(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE customers (id int PRIMARY KEY, name text)`,
		`INSERT INTO customers SELECT i, 'c' || i FROM generate_series(1, 100) i`,
		`CREATE TABLE other (id int PRIMARY KEY)`,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	holder := pgtest.Connect(t, dsn)
	mustExec(t, holder, `SET application_name = 'locker'`)
	var holderPID int
	if err := holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID); err != nil {
		t.Fatal(err)
	}

	t.Run("fails", func(t *testing.T) {
		mustExec(t, holder, `BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE /* `+lockSecret+` */`)
		defer mustExec(t, holder, `ROLLBACK`)
		logs, logger := newLogBuffer()
		lk := openLake(t)
		start := time.Now()
		_, err := New(Options{LockTimeout: 200 * time.Millisecond, LockAttempts: 3, Logger: logger}).Read(ctx, lk, tn)
		took := time.Since(start)
		t.Logf("error: %v", err)
		if !errors.Is(err, ErrLockTimeout) {
			t.Fatalf("read behind a held lock: %v, want ErrLockTimeout", err)
		}
		for _, s := range []string{"tenant acme", "lock tables", "waited 3 times 200ms",
			fmt.Sprintf("pid %d holds AccessExclusiveLock on public.customers", holderPID), `application "locker"`, "idle in transaction"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not contain %q", err, s)
			}
		}
		// Three waits of 200ms and pauses of 100ms and 200ms.
		if took < 900*time.Millisecond || took > 20*time.Second {
			t.Errorf("the read failed after %s, want about 0.9s", took)
		}
		waits := logs.lines("waiting for a table lock")
		if len(waits) != 2 {
			t.Errorf("%d lock-wait log lines, want 2 (one per retry): %q", len(waits), waits)
		}
		for _, l := range waits {
			if !strings.Contains(l, "tenant=acme") || !strings.Contains(l, "public.customers") {
				t.Errorf("log line %q names neither tenant nor the blocked table", l)
			}
		}
		if strings.Contains(err.Error(), lockSecret) || len(logs.lines(lockSecret)) > 0 {
			t.Errorf("the holder's query text leaked: %v", err)
		}
		noSnapshots(t, lk, "acme")
	})

	t.Run("released", func(t *testing.T) {
		mustExec(t, holder, `BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE`)
		released := make(chan error, 1)
		go func() {
			time.Sleep(400 * time.Millisecond)
			_, err := holder.Exec(ctx, `ROLLBACK`)
			released <- err
		}()
		logs, logger := newLogBuffer()
		lk := openLake(t)
		m, err := New(Options{LockTimeout: 200 * time.Millisecond, LockAttempts: 5, LogInterval: 50 * time.Millisecond, Logger: logger}).Read(ctx, lk, tn)
		if rerr := <-released; rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			t.Fatalf("read after the lock was released: %v", err)
		}
		if m.Table("customers").Rows != 100 {
			t.Errorf("customers: %d rows", m.Table("customers").Rows)
		}
		if len(logs.lines("waiting for a table lock")) == 0 {
			t.Error("no lock-wait log line")
		}
		// The first tick may fall in the listing of the tables, before the
		// locks (a loaded machine): one of the lines must say the wait.
		still := logs.lines("still reading")
		locking := false
		for _, l := range still {
			if !strings.Contains(l, "tenant=acme") {
				t.Errorf("periodic log line %q does not name the tenant", l)
			}
			locking = locking || strings.Contains(l, `phase="locking tables"`)
		}
		if !locking {
			t.Errorf("no periodic log line in phase \"locking tables\" while waiting: %q", still)
		}
	})
}

// TestLockQueued: an ACCESS EXCLUSIVE request queued while the read runs
// waits for the read's own ACCESS SHARE lock, and blocks the workers' reads
// of that table behind it; without a bound that is a hang no deadlock
// detector sees. The worker's wait is bounded and retried, and the read
// fails naming the table and the waiting request.
func TestLockQueued(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE a (id int PRIMARY KEY, pad text)`,
		`INSERT INTO a SELECT i, repeat('a', 200) FROM generate_series(1, 20000) i`,
		`CREATE TABLE b (id int PRIMARY KEY)`,
		`INSERT INTO b VALUES (1)`,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	locker := pgtest.Connect(t, dsn)
	watcher := pgtest.Connect(t, dsn)
	var lockerPID int
	if err := locker.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&lockerPID); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	locked := make(chan error, 1)
	queue := func(rows, bytes int64) {
		once.Do(func() {
			// While table a is being read (one worker, largest first),
			// queue an exclusive lock on b and wait until it waits.
			go func() {
				_, err := locker.Exec(ctx, `BEGIN; LOCK TABLE b IN ACCESS EXCLUSIVE MODE`)
				if err == nil {
					_, err = locker.Exec(ctx, `ROLLBACK`)
				}
				locked <- err
			}()
			for i := 0; ; i++ {
				var waiting bool
				err := watcher.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $1 AND NOT granted AND mode = 'AccessExclusiveLock')`, lockerPID).Scan(&waiting)
				if err != nil || waiting || i > 500 {
					if err != nil || !waiting {
						t.Errorf("the exclusive lock request is not waiting: %v", err)
					}
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	lk := openLake(t)
	_, err := New(Options{Parallel: 1, LockTimeout: 150 * time.Millisecond, LockAttempts: 2, Progress: queue}).Read(ctx, lk, tn)
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("read with a queued exclusive lock: %v, want ErrLockTimeout", err)
	}
	for _, s := range []string{"tenant acme", "table public.b", fmt.Sprintf("pid %d waits for AccessExclusiveLock on public.b", lockerPID)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	// The read's end released its locks, so the queued request got its lock.
	if err := <-locked; err != nil {
		t.Errorf("the exclusive lock: %v", err)
	}
	noSnapshots(t, lk, "acme")
}
