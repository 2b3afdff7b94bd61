// Package ops holds tenantlake's operations: schedule the daily reads, read
// one tenant, load one snapshot into one target, resolve and request a
// replay, list a tenant's history. Both front ends call them: the command
// line (cmd/tenantlake) and the Cloud Functions (functions/), which only
// parse input, call an operation and render its result.
//
// Every operation that an event triggers is idempotent under redelivery and
// under concurrent duplicates (Pub/Sub delivers at least once):
//
//   - Read finds the snapshot a request already committed (the manifest
//     records the request id) and republishes it instead of reading again;
//   - Load finds the lake ledger's record of the same request and republishes
//     its outcome instead of loading again;
//   - a delivery that finds another delivery of the same request at work (a
//     claim record in the lake) waits for its result; a claim whose holder
//     died expires after ClaimTTL and the work is taken over.
//
// Errors: ErrRejected marks a request that no retry can make succeed
// (unknown tenant, snapshot or table, bad input): functions acknowledge it and
// answer 4xx. Any other error is worth retrying.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/internal/metrics"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/readers"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// ErrRejected: the request cannot succeed as it is; retrying is pointless.
var ErrRejected = errors.New("rejected")

// ErrBusy: another delivery of the same request is still at work; retry later.
var ErrBusy = errors.New("another delivery of this request is at work")

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Ops runs operations against one lake. Fields left nil disable what needs
// them (an Ops without Events publishes nothing: the command line by hand).
// An Ops is safe for concurrent use.
type Ops struct {
	Lake     *lake.Lake
	Registry tenant.Registry
	Reader   readers.Reader
	Targets  []config.Target
	Events   events.Publisher
	Topics   config.Topics
	// ReadsPerHost bounds the reads this process runs at once against one
	// source host (0: 2).
	ReadsPerHost int
	// ClaimTTL is how long a delivery's claim on a request holds before
	// another delivery may take the work over (0: 10 minutes). It must be
	// longer than a read or load can take.
	ClaimTTL time.Duration
	// BigTenantBytes: Read hands a tenant whose selected tables take more
	// than this on disk (the Reader's Sizer estimate) to the big-read job,
	// started with BigReads, instead of reading it in this process. Zero,
	// or a nil BigReads, means never.
	BigTenantBytes int64
	BigReads       JobStarter
	// OpenTarget opens a target's write strategy (nil: OpenTarget).
	OpenTarget func(ctx context.Context, url string) (writers.Writer, error)
	// Log receives the operations' log lines (nil: slog.Default()).
	Log *slog.Logger
	// Metrics records rows, bytes, durations and outcomes (nil: none).
	Metrics *metrics.Recorder

	mu      sync.Mutex
	hosts   map[string]chan struct{}
	writers map[string]*openWriter
}

// openWriter is one target's write strategy, opened at its first use. A
// failed open is not kept: the next load tries again, so that a target
// that was down when the process started is used once it is back.
type openWriter struct {
	mu sync.Mutex
	w  writers.Writer
}

func (o *Ops) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

func (o *Ops) claimTTL() time.Duration {
	if o.ClaimTTL > 0 {
		return o.ClaimTTL
	}
	return 10 * time.Minute
}

// Close closes the write strategies Load opened, and BigReads when it has
// a Close method.
func (o *Ops) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for name, ow := range o.writers {
		ow.mu.Lock()
		if ow.w != nil {
			if err := ow.w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close target %s: %w", name, err))
			}
		}
		ow.mu.Unlock()
	}
	o.writers = nil
	if c, ok := o.BigReads.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the big-read job's client: %w", err))
		}
	}
	return errors.Join(errs...)
}

// writer returns target's write strategy, opened at its first successful
// open and kept until Close.
func (o *Ops) writer(ctx context.Context, target config.Target) (writers.Writer, error) {
	o.mu.Lock()
	if o.writers == nil {
		o.writers = map[string]*openWriter{}
	}
	ow, ok := o.writers[target.Name]
	if !ok {
		ow = &openWriter{}
		o.writers[target.Name] = ow
	}
	o.mu.Unlock()
	ow.mu.Lock()
	defer ow.mu.Unlock()
	if ow.w != nil {
		return ow.w, nil
	}
	open := o.OpenTarget
	if open == nil {
		open = OpenTarget
	}
	w, err := open(context.WithoutCancel(ctx), target.URL) // the writer outlives this request
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", target.Name, err)
	}
	ow.w = w
	return w, nil
}

// hostSlot waits for one of the ReadsPerHost slots of t's source host.
func (o *Ops) hostSlot(ctx context.Context, t tenant.Tenant) (release func(), err error) {
	host := ""
	if dsn, err := t.ResolveConnection(); err == nil {
		if cfg, err := pgconn.ParseConfig(dsn); err == nil {
			host = fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
		}
	}
	n := o.ReadsPerHost
	if n <= 0 {
		n = 2
	}
	o.mu.Lock()
	if o.hosts == nil {
		o.hosts = map[string]chan struct{}{}
	}
	sem, ok := o.hosts[host]
	if !ok {
		sem = make(chan struct{}, n)
		o.hosts[host] = sem
	}
	o.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// publish publishes body when o has Events.
func (o *Ops) publish(ctx context.Context, topic string, body any) error {
	if o.Events == nil {
		return nil
	}
	m, err := events.New(body)
	if err != nil {
		return err
	}
	_, err = o.Events.Publish(ctx, topic, m)
	return err
}

// claim is one delivery's hold on a request's work.
type claim struct {
	ClaimedAt time.Time `json:"claimed_at"`
	ExpiresAt time.Time `json:"expires_at"`
	By        string    `json:"by"`
}

const claimKind = "claims"

// acquire takes the claim named key for tenant. When another delivery holds
// an unexpired claim, it polls done (which reports whether that delivery's
// result exists) until the result appears (returns a nil release: nothing
// to do), the claim is released or expires (takes the work over), or ctx
// ends (ErrBusy). The caller of a non-nil release calls it when its work
// ends, failed or not, so a redelivery need not wait for the claim to
// expire. Claims are records key.NNNN, their releases key.NNNN.end.
func (o *Ops) acquire(ctx context.Context, tenantID, key string, done func(context.Context) (bool, error)) (release func(), err error) {
	for {
		names, err := o.Lake.RecordNames(ctx, tenantID, claimKind, key+".")
		if err != nil {
			return nil, err
		}
		n, ended := 0, map[int]bool{}
		for _, name := range names {
			var i int
			rest := strings.TrimPrefix(name, key+".")
			if _, err := fmt.Sscanf(rest, "%04d", &i); err != nil || len(rest) < 4 {
				continue
			}
			if strings.HasSuffix(rest, ".end") {
				ended[i] = true
			} else if i > n {
				n = i
			}
		}
		if n > 0 && !ended[n] {
			var c claim
			if err := o.Lake.GetRecord(ctx, tenantID, claimKind, fmt.Sprintf("%s.%04d", key, n), &c); err != nil {
				return nil, err
			}
			if time.Now().Before(c.ExpiresAt) {
				ok, err := done(ctx)
				if err != nil || ok {
					return nil, err
				}
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("%w (claimed by %s at %s)", ErrBusy, c.By, c.ClaimedAt.Format(time.RFC3339))
				case <-time.After(500 * time.Millisecond):
				}
				continue
			}
		}
		host, _ := os.Hostname()
		now := time.Now().UTC()
		c := claim{ClaimedAt: now, ExpiresAt: now.Add(o.claimTTL()), By: fmt.Sprintf("%s/%d", host, os.Getpid())}
		name := fmt.Sprintf("%s.%04d", key, n+1)
		err = o.Lake.PutRecord(ctx, tenantID, claimKind, name, c)
		if errors.Is(err, lake.ErrExists) {
			continue // another delivery claimed it first: look again
		}
		if err != nil {
			return nil, err
		}
		release := func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := o.Lake.PutRecord(rctx, tenantID, claimKind, name+".end", claim{ClaimedAt: c.ClaimedAt, ExpiresAt: time.Now().UTC(), By: c.By}); err != nil {
				o.log().Warn("could not release a claim; it expires by itself", "tenant", tenantID, "claim", name, "err", err.Error())
			}
		}
		// The work may have finished between the check and the claim.
		ok, err := done(ctx)
		if err != nil || ok {
			release()
			return nil, err
		}
		return release, nil
	}
}

// ForEach runs fn for every item, at most parallel at once, and waits.
func ForEach[T any](ctx context.Context, items []T, parallel int, fn func(ctx context.Context, i int, item T)) {
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				fn(ctx, i, it) // fn sees the cancelled ctx and reports it
				return
			}
			defer func() { <-sem }()
			fn(ctx, i, it)
		}()
	}
	wg.Wait()
}
