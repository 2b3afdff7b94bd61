package lake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gocloud.dev/blob"
)

// Policy says which snapshots of each tenant retention keeps. A snapshot is
// kept if either rule keeps it; with neither rule set every snapshot is kept.
// The newest committed snapshot is always kept.
type Policy struct {
	KeepLast   int           // keep the newest N committed snapshots (0: no count rule)
	KeepWithin time.Duration // keep snapshots whose id is younger than this at GC time (0: no age rule)
	// OrphanGrace: the objects of an uncommitted snapshot are swept once the
	// newest of them (by the modification time the bucket lists) is at least
	// this old, so a read still running is never swept. It must be longer
	// than a read takes from writing a part to committing; 0 sweeps every
	// orphan at once, running reads included.
	OrphanGrace time.Duration
	DryRun      bool // report what would be deleted, delete nothing
}

// GCReport says what GC deleted (or, in a dry run, would delete).
type GCReport struct {
	Tenant           string   `json:"tenant"`
	Kept             []string `json:"kept"`              // committed snapshots kept, newest first
	DeletedSnapshots []string `json:"deleted_snapshots"` // committed snapshots deleted, newest first
	SweptOrphans     []string `json:"swept_orphans"`     // uncommitted snapshots whose objects were swept
	DeletedObjects   int      `json:"deleted_objects"`
	DryRun           bool     `json:"dry_run"`
}

// GC applies p to one tenant at time now. A snapshot is deleted manifest
// first, so it stops existing before its parts go; a GC that stops midway
// leaves only orphans, which a later GC sweeps. Load ledger records are kept.
// On error the report says what was done before it.
func (l *Lake) GC(ctx context.Context, tenant string, p Policy, now time.Time) (*GCReport, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: gc: %w", err)
	}
	if p.KeepLast < 0 || p.KeepWithin < 0 || p.OrphanGrace < 0 {
		return nil, fmt.Errorf("lake: gc of %s: %w: negative retention", tenant, ErrInvalid)
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
	rep := &GCReport{Tenant: tenant, DryRun: p.DryRun, Kept: []string{}, DeletedSnapshots: []string{}, SweptOrphans: []string{}}
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
		var newest time.Time
		for _, o := range objs[id] {
			if o.ModTime.IsZero() {
				newest = now // a driver that lists no times: never guess an age
			}
			if o.ModTime.After(newest) {
				newest = o.ModTime
			}
		}
		if now.Sub(newest) < p.OrphanGrace {
			continue
		}
		// The listing is a moment old: a read may have committed since.
		key := ManifestKey(tenant, id)
		ok, err := l.bucket.Exists(ctx, key)
		if err != nil {
			return rep, wrap("gc: check", key, err)
		}
		if ok {
			continue
		}
		rep.SweptOrphans = append(rep.SweptOrphans, id)
		if err := l.deleteSnapshot(ctx, tenant, id, objs[id], p.DryRun, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// GCAll applies p to every tenant folder in the lake (TenantFolders), so
// tenants whose only snapshots are orphans are swept too. It stops at the
// first error, returning the reports made so far.
func (l *Lake) GCAll(ctx context.Context, p Policy, now time.Time) ([]*GCReport, error) {
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
// manifest first.
func (l *Lake) deleteSnapshot(ctx context.Context, tenant, id string, objs []*blob.ListObject, dry bool, rep *GCReport) error {
	manifest := ManifestKey(tenant, id)
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Key == manifest && objs[j].Key != manifest })
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
