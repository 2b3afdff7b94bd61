package ops

import (
	"context"
	"errors"
	"time"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// DiffRequest asks what changed in a tenant between two snapshots: the
// console's diff form and `tenantlake diff`'s flags. From and To are each a
// snapshot id (that snapshot exactly) or a time (RFC 3339, or a date
// meaning the end of that day, UTC: the newest snapshot at or before it).
type DiffRequest struct {
	Tenant string   `json:"tenant"`
	From   string   `json:"from"`
	To     string   `json:"to"`
	Tables []string `json:"tables,omitempty"` // destination table names; empty: every table
}

// Diff resolves req's two snapshots and compares them (package diff) from
// the lake alone; opt says how (its Tables are req's). The result turns
// From's rows into To's, whichever is older. Every problem with the request
// (a bad tenant id, time or snapshot id, a snapshot or table that does not
// exist) is an ErrRejected error saying what is wrong.
func (o *Ops) Diff(ctx context.Context, req DiffRequest, opt diff.Options) (*diff.Result, error) {
	if err := tenant.ValidateID(req.Tenant); err != nil {
		return nil, rejected("tenant: %v", err)
	}
	from, err := o.resolveSnapshot(ctx, req.Tenant, "from", req.From)
	if err != nil {
		return nil, err
	}
	to, err := o.resolveSnapshot(ctx, req.Tenant, "to", req.To)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, t := range req.Tables {
		if seen[t] {
			return nil, rejected("table %.80q is listed twice", t)
		}
		seen[t] = true
	}
	opt.Tables = req.Tables
	res, err := diff.Snapshots(ctx, o.Lake, from, to, opt)
	if errors.Is(err, diff.ErrNoTable) {
		return nil, rejected("%v", err)
	}
	return res, err
}

// resolveSnapshot reads the manifest ref names: a snapshot id exactly, else
// the newest snapshot at or before the time ref.
func (o *Ops) resolveSnapshot(ctx context.Context, tenantID, what, ref string) (*lake.Manifest, error) {
	if ref == "" {
		return nil, rejected("%s: give a snapshot id or a time", what)
	}
	id := ref
	if _, err := lake.ParseSnapshotID(ref); err != nil {
		at, err := lake.ParseAsOf(ref)
		if err != nil {
			return nil, rejected("%s: %v", what, err)
		}
		s, err := o.Lake.Resolve(ctx, tenantID, at)
		if errors.Is(err, lake.ErrNotFound) {
			return nil, rejected("%s: tenant %s has no snapshot at or before %s", what, tenantID, at.UTC().Format(time.RFC3339Nano))
		}
		if err != nil {
			return nil, err
		}
		id = s.SnapshotID
	}
	m, err := o.Lake.Manifest(ctx, tenantID, id)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, rejected("%s: tenant %s has no committed snapshot %s", what, tenantID, id)
	}
	return m, err
}
