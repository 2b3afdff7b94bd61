package lake

import (
	"context"
	"fmt"
	"gocloud.dev/blob"
	"sort"
	"time"
)

// Policy says which snapshots of each tenant retention keeps. A snapshot is
// kept if either rule keeps it; the newest snapshot is always kept.
type Policy struct {
	KeepLast   int           // keep the newest N committed snapshots (0: no count rule)
	KeepWithin time.Duration // keep snapshots younger than this (0: no age rule)
	// OrphanGrace: parts of uncommitted snapshots are swept once the newest of
	// them is older than this, so a read still running is never swept.
	OrphanGrace time.Duration
	DryRun      bool // report what would be deleted, delete nothing
}

// GCReport says what GC deleted (or, in a dry run, would delete).
type GCReport struct {
	Tenant           string   `json:"tenant"`
	Kept             []string `json:"kept"`              // committed snapshots kept
	DeletedSnapshots []string `json:"deleted_snapshots"` // committed snapshots deleted
	SweptOrphans     []string `json:"swept_orphans"`     // uncommitted snapshots whose parts were swept
	DeletedObjects   int      `json:"deleted_objects"`
	DryRun           bool     `json:"dry_run"`
}

// GC applies p to one tenant at time now. A snapshot is deleted manifest
// first, so it stops existing before its parts go; a GC that stops midway
// leaves only orphans, which the next GC sweeps.
func (l *Lake) GC(ctx context.Context, tenant string, p Policy, now time.Time) (*GCReport, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: gc: %w", err)
	}
	if p.KeepLast < 0 || p.KeepWithin < 0 || p.OrphanGrace < 0 {
		return nil, fmt.Errorf("lake: gc: %w: negative retention", ErrInvalid)
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
		newest := time.Time{}
		for _, o := range objs[id] {
			if o.ModTime.After(newest) {
				newest = o.ModTime
			}
		}
		if now.Sub(newest) < p.OrphanGrace {
			continue
		}
		rep.SweptOrphans = append(rep.SweptOrphans, id)
		if err := l.deleteSnapshot(ctx, tenant, id, objs[id], p.DryRun, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

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
	return nil
}
