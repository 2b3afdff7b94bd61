package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/readers"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// ReadTenant reads t into a committed snapshot, holding one of the
// ReadsPerHost slots of its source host while it reads. requestID (may be
// "") is recorded in the manifest.
func (o *Ops) ReadTenant(ctx context.Context, t tenant.Tenant, requestID string) (*lake.Manifest, error) {
	release, err := o.hostSlot(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: waiting for a read slot: %w", t.ID, err)
	}
	defer release()
	start := time.Now()
	m, err := o.Reader.Read(readers.WithRequestID(ctx, requestID), o.Lake, t)
	if err != nil {
		return nil, err
	}
	s := Summarize(m)
	o.log().Info("snapshot committed", "tenant", t.ID, "snapshot", m.SnapshotID, "request_id", requestID,
		"tables", s.Tables, "rows", s.Rows, "bytes", s.Bytes, "took", time.Since(start).Round(time.Millisecond).String())
	return m, nil
}

// Read serves one read request (the Read function): it reads the tenant
// once per request id and publishes snapshot.committed. A redelivered
// request whose snapshot is committed republishes the event without reading
// the source again. A read that fails is reported on the loads topic
// (outcome failed, no target) and returned as an error to retry, unless
// the request is rejected (unknown or inactive tenant).
func (o *Ops) Read(ctx context.Context, req events.ReadRequested) (*events.SnapshotCommitted, error) {
	log := o.log().With("tenant", req.Tenant, "request_id", req.RequestID)
	t, err := o.Registry.Get(ctx, req.Tenant)
	if errors.Is(err, tenant.ErrNotFound) || errors.Is(err, tenant.ErrInvalidID) {
		return nil, rejected("read request %s: %v", req.RequestID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read request %s: registry: %w", req.RequestID, err)
	}
	if !t.Active {
		return nil, rejected("read request %s: tenant %s is not active in the registry", req.RequestID, t.ID)
	}
	var found *lake.Manifest
	done := func(ctx context.Context) (bool, error) {
		m, err := o.snapshotOfRequest(ctx, req)
		found = m
		return m != nil, err
	}
	release, err := o.acquire(ctx, t.ID, "read."+req.RequestID, done)
	if err != nil {
		return nil, fmt.Errorf("read request %s of tenant %s: %w", req.RequestID, t.ID, err)
	}
	if release != nil {
		m, err := o.ReadTenant(ctx, t, req.RequestID)
		release()
		if err != nil {
			log.Error("read failed", "err", err.Error())
			failed := &events.LoadFinished{Outcome: writers.Outcome{
				Tenant: t.ID, Reason: req.Reason, RequestID: req.RequestID, Outcome: writers.OutcomeFailed,
				Message: "read failed: " + err.Error(), Tables: []writers.TableResult{},
				StartedAt: time.Now().UTC(), FinishedAt: time.Now().UTC(),
			}}
			if perr := o.publish(context.WithoutCancel(ctx), o.Topics.Loads, failed); perr != nil {
				err = errors.Join(err, perr)
			}
			return nil, err
		}
		found = m
	} else {
		log.Info("request already read: republishing its snapshot", "snapshot", found.SnapshotID)
	}
	ev := &events.SnapshotCommitted{
		Tenant: t.ID, SnapshotID: found.SnapshotID, ManifestURL: o.Lake.ManifestURL(t.ID, found.SnapshotID),
		Reason: req.Reason, RequestID: req.RequestID,
	}
	if err := o.publish(ctx, o.Topics.Snapshots, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// snapshotOfRequest finds the committed snapshot whose manifest records
// req's id. Only snapshots taken since the request was made are looked at,
// newest first, so this reads few manifests.
func (o *Ops) snapshotOfRequest(ctx context.Context, req events.ReadRequested) (*lake.Manifest, error) {
	snaps, err := o.Lake.Snapshots(ctx, req.Tenant)
	if err != nil {
		return nil, err
	}
	// requested_at may be up to MaxClockSkew ahead of the clock that timed
	// the snapshot (the scheduler's and the database's clocks differ).
	since := req.RequestedAt.Add(-events.MaxClockSkew)
	for _, s := range snaps {
		if s.Time.Before(since) {
			break
		}
		m, err := o.Lake.Manifest(ctx, req.Tenant, s.SnapshotID)
		if errors.Is(err, lake.ErrNotFound) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			return nil, err
		}
		if m.RequestID == req.RequestID {
			return m, nil
		}
	}
	return nil, nil
}

// Summary is a snapshot's size in one line.
type Summary struct {
	SnapshotID  string    `json:"snapshot_id"`
	Time        time.Time `json:"time"` // the snapshot id as a time
	CommittedAt time.Time `json:"committed_at"`
	Tables      int       `json:"tables"`
	Rows        int64     `json:"rows"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	Skipped     int       `json:"skipped"`
}

// Summarize counts a manifest's tables, rows, files and bytes.
func Summarize(m *lake.Manifest) Summary {
	s := Summary{SnapshotID: m.SnapshotID, Time: m.StartedAt, CommittedAt: m.CommittedAt, Tables: len(m.Tables), Skipped: len(m.Skipped)}
	if t, err := lake.ParseSnapshotID(m.SnapshotID); err == nil {
		s.Time = t
	}
	for _, t := range m.Tables {
		s.Rows += t.Rows
		s.Files += len(t.Files)
		for _, f := range t.Files {
			s.Bytes += f.Bytes
		}
	}
	return s
}
