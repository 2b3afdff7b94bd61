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
	o.Metrics.Read(ctx, t.ID, m, time.Since(start), err)
	if err != nil {
		return nil, err
	}
	s := Summarize(m)
	o.log().Info("snapshot committed", "tenant", t.ID, "snapshot", m.SnapshotID, "request_id", requestID,
		"tables", s.Tables, "rows", s.Rows, "bytes", s.Bytes, "took", time.Since(start).Round(time.Millisecond).String())
	return m, nil
}

// Read serves one read request (the Read function): it reads the tenant
// once per request id and publishes snapshot.committed; a tenant bigger
// than BigTenantBytes is handed to the big-read job instead (see routeBig):
// Read then returns a nil event and a nil error. A redelivered
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
		big, err := o.routeBig(ctx, t, req)
		if big || err != nil {
			release()
			return nil, err
		}
		m, err := o.ReadTenant(ctx, t, req.RequestID)
		release()
		if err != nil {
			log.Error("read failed", "err", err.Error())
			return nil, o.readFailed(ctx, t.ID, req.Reason, req.RequestID, "read failed", err)
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

// readFailed publishes a read's failure on the loads topic (outcome
// failed, no target) and returns err, joined with a failure to publish.
func (o *Ops) readFailed(ctx context.Context, tenantID, reason, requestID, what string, err error) error {
	now := time.Now().UTC()
	failed := &events.LoadFinished{Outcome: writers.Outcome{
		Tenant: tenantID, Reason: reason, RequestID: requestID, Outcome: writers.OutcomeFailed,
		Message: what + ": " + err.Error(), Tables: []writers.TableResult{}, StartedAt: now, FinishedAt: now,
	}}
	if perr := o.publish(context.WithoutCancel(ctx), o.Topics.Loads, failed); perr != nil {
		err = errors.Join(err, perr)
	}
	return err
}

// snapshotOfRequest finds the committed snapshot whose manifest records
// req's id. Only snapshots taken since the request was made are looked at,
// newest first, so this reads few manifests.
func (o *Ops) snapshotOfRequest(ctx context.Context, req events.ReadRequested) (*lake.Manifest, error) {
	// requested_at may be up to MaxClockSkew ahead of the clock that timed
	// the snapshot (the scheduler's and the database's clocks differ).
	since := req.RequestedAt.Add(-events.MaxClockSkew)
	snaps, err := o.Lake.SnapshotsSince(ctx, req.Tenant, since)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
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

// JobStarter starts one execution of the big-read job for a tenant's read
// request (CloudRunJob on GCP). The execution publishes snapshot.committed
// itself.
type JobStarter interface {
	StartBigRead(ctx context.Context, tenantID, requestID string) (execution string, err error)
}

// Sizer is the optional ability of a Reader to estimate, from the source's
// catalog, the bytes a read of t would read (readers/postgres has it).
type Sizer interface {
	EstimateBytes(ctx context.Context, t tenant.Tenant) (int64, error)
}

// jobKind holds the records of requests handed to the big-read job:
// read.<request-id> (the request, written before the job is started) and
// read.<request-id>.started (written once it is).
const jobKind = "jobs"

// bigRead is the body of the jobs records.
type bigRead struct {
	Request   events.ReadRequested `json:"request"`
	Bytes     int64                `json:"bytes"`
	Execution string               `json:"execution,omitempty"`
	At        time.Time            `json:"at"`
}

// routeBig hands req to the big-read job when BigTenantBytes and BigReads
// are set, the Reader is a Sizer and t is bigger than BigTenantBytes; it
// reports whether it did (or an earlier delivery did). The request is
// recorded in the lake before the job starts, so the job finds its reason
// and time; a redelivery after the start starts nothing.
func (o *Ops) routeBig(ctx context.Context, t tenant.Tenant, req events.ReadRequested) (bool, error) {
	sz, ok := o.Reader.(Sizer)
	if o.BigTenantBytes <= 0 || o.BigReads == nil || !ok {
		return false, nil
	}
	n, err := sz.EstimateBytes(ctx, t)
	if err != nil {
		return false, fmt.Errorf("read request %s: %w", req.RequestID, err)
	}
	if n <= o.BigTenantBytes {
		return false, nil
	}
	log := o.log().With("tenant", t.ID, "request_id", req.RequestID, "bytes", n, "threshold", o.BigTenantBytes)
	name := "read." + req.RequestID
	var started bigRead
	err = o.Lake.GetRecord(ctx, t.ID, jobKind, name+".started", &started)
	if err == nil {
		log.Info("big tenant: the big-read job was already started for this request", "execution", started.Execution)
		return true, nil
	}
	if !errors.Is(err, lake.ErrNotFound) {
		return false, err
	}
	rec := bigRead{Request: req, Bytes: n, At: time.Now().UTC()}
	if err := o.Lake.PutRecord(ctx, t.ID, jobKind, name, rec); err != nil && !errors.Is(err, lake.ErrExists) {
		return false, err
	}
	exec, err := o.BigReads.StartBigRead(ctx, t.ID, req.RequestID)
	if err != nil {
		return false, fmt.Errorf("read request %s of tenant %s (%d bytes): start the big-read job: %w", req.RequestID, t.ID, n, err)
	}
	rec.Execution, rec.At = exec, time.Now().UTC()
	if err := o.Lake.PutRecord(ctx, t.ID, jobKind, name+".started", rec); err != nil && !errors.Is(err, lake.ErrExists) {
		log.Warn("big-read job started, but its record could not be written: a redelivery may start it again", "execution", exec, "err", err.Error())
	}
	log.Info("big tenant: big-read job started", "execution", exec)
	return true, nil
}

// ReadJob serves the coordinator of a big-read job execution: tenantID's
// request requestID, recorded by the Read function that started the job
// (a request that was never recorded, as when the job is run by hand, is
// read with reason manual). Like Read, it reads once per request id: when
// the request's snapshot is committed it republishes snapshot.committed
// without reading. read does the distributed read (readers/postgres
// ReadTask) and must record the request id of its ctx (readers.RequestID)
// in the manifest. A failed read is reported on the loads topic and
// returned.
func (o *Ops) ReadJob(ctx context.Context, tenantID, requestID string, read func(ctx context.Context, t tenant.Tenant) (*lake.Manifest, error)) (*events.SnapshotCommitted, error) {
	t, err := o.Registry.Get(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("big read of request %s: %w", requestID, err)
	}
	var rec bigRead
	err = o.Lake.GetRecord(ctx, t.ID, jobKind, "read."+requestID, &rec)
	switch {
	case errors.Is(err, lake.ErrNotFound):
		rec.Request = events.ReadRequested{Tenant: t.ID, RequestID: requestID, Reason: writers.ReasonManual, RequestedAt: time.Now().UTC()}
	case err != nil:
		return nil, err
	case rec.Request.Tenant != t.ID || rec.Request.RequestID != requestID:
		return nil, fmt.Errorf("big read of request %s: %w: its record is for tenant %s, request %s", requestID, lake.ErrCorrupt, rec.Request.Tenant, rec.Request.RequestID)
	}
	req := rec.Request
	found, err := o.snapshotOfRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	if found == nil {
		m, err := read(readers.WithRequestID(ctx, requestID), t)
		if err != nil {
			return nil, o.readFailed(ctx, t.ID, req.Reason, requestID, "big read failed", err)
		}
		found = m
	} else {
		o.log().Info("request already read: republishing its snapshot", "tenant", t.ID, "request_id", requestID, "snapshot", found.SnapshotID)
	}
	ev := &events.SnapshotCommitted{
		Tenant: t.ID, SnapshotID: found.SnapshotID, ManifestURL: o.Lake.ManifestURL(t.ID, found.SnapshotID),
		Reason: req.Reason, RequestID: requestID,
	}
	if err := o.publish(ctx, o.Topics.Snapshots, ev); err != nil {
		return nil, err
	}
	return ev, nil
}
