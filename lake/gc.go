package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// The timing contract between reads and retention (see the package doc).
const (
	// MaxReadDuration is the longest a read may take, from its snapshot id's
	// own time (the start of the source transaction) to writing its
	// manifest: NewSnapshot and Snapshot.Commit refuse with ErrExpired from
	// then on.
	MaxReadDuration = 45 * time.Minute
	// MinOrphanGrace is the shortest Policy.OrphanGrace that GC accepts. It
	// exceeds MaxReadDuration by 15 minutes: what a manifest's upload, and
	// the difference between the clocks of the source database, the reader
	// and GC, may take at most.
	MinOrphanGrace = time.Hour
	// DefaultOrphanGrace is the orphan grace of a Policy that sets none.
	DefaultOrphanGrace = 24 * time.Hour
	// SealKeep is how long after the grace GC keeps the empty manifest
	// with which it sealed a swept snapshot (see the package doc): a later
	// GC deletes it once the id is older than the grace plus SealKeep.
	SealKeep = 7 * 24 * time.Hour
)

// Policy says which snapshots of each tenant retention keeps. A snapshot is
// kept if either rule keeps it; with neither rule set every snapshot is kept.
// The newest committed snapshot is always kept, and so is every snapshot
// that the newest ledger record of one of the tenant's targets in the lake
// says is live, unless Force is set.
type Policy struct {
	KeepLast   int           // keep the newest N committed snapshots (0: no count rule)
	KeepWithin time.Duration // keep snapshots whose id is younger than this at GC time (0: no age rule)
	// OrphanGrace: the objects of an uncommitted snapshot are swept once its
	// id, by its own time, is at least this old at GC time. 0 means
	// DefaultOrphanGrace; anything else below MinOrphanGrace is refused.
	// Since no read may commit a snapshot whose id is MaxReadDuration old,
	// a read that may still commit is never swept, however long it runs.
	OrphanGrace time.Duration
	// Force deletes snapshots beyond the rules even when a target's ledger
	// says they are live.
	Force  bool
	DryRun bool // report what would be deleted, delete nothing
}

// GCReport says what GC deleted (or, in a dry run, would delete).
type GCReport struct {
	Tenant           string      `json:"tenant"`
	Kept             []string    `json:"kept"`              // committed snapshots kept, newest first
	Protected        []Protected `json:"protected"`         // kept only because they are live in a target, newest first
	DeletedSnapshots []string    `json:"deleted_snapshots"` // committed snapshots deleted, newest first
	SweptOrphans     []string    `json:"swept_orphans"`     // uncommitted snapshots whose objects were swept
	DeletedObjects   int         `json:"deleted_objects"`
	DryRun           bool        `json:"dry_run"`
}

// Protected is a snapshot that the retention rules would delete and GC kept
// because the lake's ledger says it is live in targets (or, with
// Policy.Force, deleted all the same: then it is in DeletedSnapshots too).
type Protected struct {
	SnapshotID string   `json:"snapshot_id"`
	Targets    []string `json:"targets"`
	Forced     bool     `json:"forced,omitempty"` // deleted because of Policy.Force
}

// GC applies p to one tenant at time now. A snapshot is deleted manifest
// first, so it stops existing before its parts go, and its claim last; a GC
// that stops midway leaves only orphans, which a later GC sweeps. The
// objects of an uncommitted snapshot are swept only when its id is older
// than the orphan grace and, checked again right before, it has no
// manifest; nothing of a snapshot that has a manifest is ever deleted but by
// the retention rules, whole. Load ledger records are kept. A p.OrphanGrace
// below MinOrphanGrace (other than 0) or a negative rule fails with
// ErrInvalid before anything is deleted; so does a ledger record that
// cannot be read. On error the report says what was done before it.
func (l *Lake) GC(ctx context.Context, tenant string, p Policy, now time.Time) (*GCReport, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: gc: %w", err)
	}
	grace, err := p.grace()
	if err != nil {
		return nil, fmt.Errorf("lake: gc of %s: %w", tenant, err)
	}
	live, err := l.liveInTargets(ctx, tenant)
	if err != nil {
		return nil, err
	}
	objs, committed, err := l.snapshotObjects(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id := range committed {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	rep := &GCReport{Tenant: tenant, DryRun: p.DryRun, Kept: []string{}, Protected: []Protected{}, DeletedSnapshots: []string{}, SweptOrphans: []string{}}
	for i, id := range ids {
		t, _ := ParseSnapshotID(id)
		keep := i == 0 ||
			(p.KeepLast == 0 && p.KeepWithin == 0) ||
			(p.KeepLast > 0 && i < p.KeepLast) ||
			(p.KeepWithin > 0 && now.Sub(t) < p.KeepWithin)
		if keep {
			rep.Kept = append(rep.Kept, id)
			continue
		}
		if targets := live[id]; len(targets) > 0 {
			rep.Protected = append(rep.Protected, Protected{SnapshotID: id, Targets: targets, Forced: p.Force})
			if !p.Force {
				rep.Kept = append(rep.Kept, id)
				continue
			}
		}
		rep.DeletedSnapshots = append(rep.DeletedSnapshots, id)
		if err := l.deleteSnapshot(ctx, tenant, id, objs[id], p.DryRun, rep); err != nil {
			return rep, err
		}
	}
	var orphans []string
	for id := range objs {
		if !committed[id] {
			orphans = append(orphans, id)
		}
	}
	sort.Strings(orphans)
	for _, id := range orphans {
		// By the id's own time, never by object times: a read may write its
		// last part long after its first, but commits within
		// MaxReadDuration of its id or not at all.
		t, _ := ParseSnapshotID(id)
		age := now.Sub(t)
		if age < grace {
			continue
		}
		// The listing is a moment old: a read may have committed since.
		// The seal settles it.
		leave, err := l.seal(ctx, tenant, id, p.DryRun)
		if err != nil {
			return rep, err
		}
		if leave {
			continue
		}
		manifest := ManifestKey(tenant, id)
		var doomed []*blob.ListObject
		for _, o := range objs[id] {
			if o.Key != manifest {
				doomed = append(doomed, o)
			}
		}
		if age >= grace+SealKeep { // the seal too, listed or just written
			doomed = append(doomed, &blob.ListObject{Key: manifest})
		}
		if len(doomed) == 0 {
			continue // only the seal, kept for now
		}
		rep.SweptOrphans = append(rep.SweptOrphans, id)
		if err := l.deleteSnapshot(ctx, tenant, id, doomed, p.DryRun, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// seal writes an empty manifest for snapshot id of tenant, write-once, so
// that no read can commit it any more, and reports whether GC must leave the
// snapshot be instead: a real manifest was there first (it is committed), or
// another GC is sweeping it. An existing empty manifest is an earlier
// sweep's seal. In a dry run nothing is written: it only checks.
func (l *Lake) seal(ctx context.Context, tenant, id string, dry bool) (leave bool, _ error) {
	key := ManifestKey(tenant, id)
	if !dry {
		err := l.writeOnce(ctx, key, "application/json", nil)
		switch {
		case err == nil:
			return false, nil
		case kind(err) == ErrNotFound:
			// A file:// lake: another GC removed the emptied folder.
			return true, nil
		case !errors.Is(err, ErrExists):
			return false, fmt.Errorf("lake: gc: seal: %w", err)
		}
	}
	attrs, err := l.bucket.Attributes(ctx, key)
	switch {
	case kind(err) == ErrNotFound:
		// Dry run: no manifest. Otherwise it vanished after the seal
		// failed (another GC finished with it): leave the snapshot be.
		return !dry, nil
	case err != nil:
		return false, wrap("gc: check", key, err)
	}
	return attrs.Size > 0, nil
}

// grace checks p and returns its orphan grace.
func (p Policy) grace() (time.Duration, error) {
	if p.KeepLast < 0 || p.KeepWithin < 0 {
		return 0, fmt.Errorf("%w: negative retention", ErrInvalid)
	}
	g := p.OrphanGrace
	if g == 0 {
		g = DefaultOrphanGrace
	}
	if g < MinOrphanGrace {
		return 0, fmt.Errorf("%w: orphan grace %s is below the minimum of %s (lake.MinOrphanGrace): a read may take up to %s to commit",
			ErrInvalid, g, MinOrphanGrace, MaxReadDuration)
	}
	return g, nil
}

// ledgerRecord is what GC reads of a load record: the fields of
// writers.Outcome that say what is live.
type ledgerRecord struct {
	Live       string    `json:"live"`
	LoadID     string    `json:"load_id"`
	FinishedAt time.Time `json:"finished_at"`
}

// liveInTargets returns, per snapshot id, the targets whose newest ledger
// record in the lake (by finished_at, then load id) says it is live.
func (l *Lake) liveInTargets(ctx context.Context, tenant string) (map[string][]string, error) {
	prefix := tenantPrefix(tenant) + "_loads/"
	dirs, err := l.listDirs(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("lake: gc of %s: list ledger targets: %w", tenant, err)
	}
	live := map[string][]string{}
	for _, d := range dirs {
		target, ok := strings.CutPrefix(d, "target=")
		if !ok || validName("target", target) != nil {
			continue // not a ledger folder this package writes
		}
		raw, err := l.Ledger(ctx, tenant, target)
		if err != nil {
			return nil, fmt.Errorf("lake: gc of %s: %w", tenant, err)
		}
		var newest *ledgerRecord
		for i, data := range raw {
			var rec ledgerRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return nil, fmt.Errorf("lake: gc of %s: %w: ledger record %d of target %s: %w", tenant, ErrInvalid, i, target, err)
			}
			if newest == nil || rec.FinishedAt.After(newest.FinishedAt) ||
				rec.FinishedAt.Equal(newest.FinishedAt) && rec.LoadID > newest.LoadID {
				newest = &rec
			}
		}
		if newest != nil && newest.Live != "" {
			live[newest.Live] = append(live[newest.Live], target)
		}
	}
	return live, nil
}

// GCAll applies p to every tenant folder in the lake (TenantFolders), so
// tenants whose only snapshots are orphans are swept too. It stops at the
// first error, returning the reports made so far.
func (l *Lake) GCAll(ctx context.Context, p Policy, now time.Time) ([]*GCReport, error) {
	if _, err := p.grace(); err != nil {
		return nil, fmt.Errorf("lake: gc: %w", err)
	}
	tenants, err := l.TenantFolders(ctx)
	if err != nil {
		return nil, err
	}
	var reps []*GCReport
	for _, t := range tenants {
		rep, err := l.GC(ctx, t, p, now)
		if rep != nil {
			reps = append(reps, rep)
		}
		if err != nil {
			return reps, err
		}
	}
	return reps, nil
}

// deleteSnapshot deletes objs, the listed objects of one snapshot, the
// manifest first and the claim last.
func (l *Lake) deleteSnapshot(ctx context.Context, tenant, id string, objs []*blob.ListObject, dry bool, rep *GCReport) error {
	manifest, claim := ManifestKey(tenant, id), ClaimKey(tenant, id)
	rank := func(key string) int {
		switch key {
		case manifest:
			return 0
		case claim:
			return 2
		}
		return 1
	}
	sort.SliceStable(objs, func(i, j int) bool { return rank(objs[i].Key) < rank(objs[j].Key) })
	for _, o := range objs {
		rep.DeletedObjects++
		if dry {
			continue
		}
		if err := l.bucket.Delete(ctx, o.Key); err != nil && kind(err) != ErrNotFound {
			return wrap("gc: delete", o.Key, err)
		}
	}
	if !dry && l.dir != "" {
		return removeEmptyDirs(filepath.Join(l.dir, filepath.FromSlash(SnapshotPrefix(tenant, id))))
	}
	return nil
}

// removeEmptyDirs removes the folder dir of a file:// lake and the folders in
// it once they are empty; a folder that is not empty (a read writing into it
// again) is left.
func removeEmptyDirs(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lake: gc: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeEmptyDirs(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) && !isNotEmpty(dir) {
		return fmt.Errorf("lake: gc: %w", err)
	}
	return nil
}

// isNotEmpty reports whether dir holds anything.
func isNotEmpty(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}
