package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// LoadSnapshot loads one snapshot into target and returns the write
// strategy's outcome: `tenantlake load` by hand, and the work of Load.
func (o *Ops) LoadSnapshot(ctx context.Context, target config.Target, req writers.Request) (*writers.Outcome, error) {
	w, err := o.writer(ctx, target)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	out, err := w.Load(ctx, o.Lake, req)
	o.Metrics.Load(ctx, req.Tenant, target.Name, out, time.Since(start))
	return out, err
}

// Load serves one snapshot.committed event for one target (a Load
// function): it loads the snapshot once per request id and publishes
// load.finished. A redelivered event whose load the lake's ledger already
// records republishes that outcome without loading again. An event aimed at
// another target is ignored (nil outcome). A load that failed is published
// too, and returned as an error to retry unless no retry can help (the
// snapshot or one of its parts is missing, invalid or corrupt: ErrRejected).
func (o *Ops) Load(ctx context.Context, targetName string, ev events.SnapshotCommitted) (*writers.Outcome, error) {
	if ev.Target != "" && ev.Target != targetName {
		return nil, nil
	}
	target, ok := o.target(targetName)
	if !ok {
		return nil, fmt.Errorf("load: target %q is not configured (%s)", targetName, config.EnvTargets)
	}
	log := o.log().With("tenant", ev.Tenant, "snapshot", ev.SnapshotID, "target", targetName, "request_id", ev.RequestID)
	var found *writers.Outcome
	done := func(ctx context.Context) (bool, error) {
		out, err := o.recordedLoad(ctx, targetName, ev)
		found = out
		return out != nil, err
	}
	release, err := o.acquire(ctx, ev.Tenant, "load."+targetName+"."+ev.SnapshotID+"."+ev.RequestID, done)
	if err != nil {
		return nil, fmt.Errorf("load %s/%s into %s: %w", ev.Tenant, ev.SnapshotID, targetName, err)
	}
	out := found
	var lerr error
	if release != nil {
		// A snapshot that is not committed is refused before the write
		// strategy sees it: it would call an older one skipped-stale and
		// record a load of a snapshot that does not exist.
		if _, merr := o.Lake.Manifest(ctx, ev.Tenant, ev.SnapshotID); merr != nil {
			lerr = fmt.Errorf("load %s/%s into %s: %w", ev.Tenant, ev.SnapshotID, targetName, merr)
		} else {
			out, lerr = o.LoadSnapshot(ctx, target, writers.Request{
				Tenant: ev.Tenant, SnapshotID: ev.SnapshotID, Reason: ev.Reason, Tables: ev.Tables, RequestID: ev.RequestID,
			})
		}
		release()
		if lerr != nil && (errors.Is(lerr, lake.ErrNotFound) || errors.Is(lerr, lake.ErrInvalid) || errors.Is(lerr, lake.ErrCorrupt)) {
			lerr = fmt.Errorf("%w: %w", ErrRejected, lerr)
		}
		if lerr != nil && out == nil {
			// The write strategy failed before it had an outcome (the
			// target could not be opened or reached, the request was
			// refused): the failure is published all the same, so that
			// the loads topic says why the snapshot is not live.
			now := time.Now().UTC()
			out = &writers.Outcome{
				Tenant: ev.Tenant, SnapshotID: ev.SnapshotID, Target: targetName, Reason: ev.Reason, RequestID: ev.RequestID,
				Outcome: writers.OutcomeFailed, Message: "load failed: " + lerr.Error(), Tables: []writers.TableResult{},
				StartedAt: now, FinishedAt: now,
			}
		}
	} else {
		log.Info("load already recorded in the lake's ledger: republishing its outcome", "outcome", out.Outcome)
	}
	if out != nil {
		log.Info("load finished", "outcome", out.Outcome, "live", out.Live, "previous_live", out.PreviousLive, "load_id", out.LoadID)
		if perr := o.publish(context.WithoutCancel(ctx), o.Topics.Loads, &events.LoadFinished{Outcome: *out}); perr != nil {
			lerr = errors.Join(lerr, perr)
		}
	}
	if lerr != nil {
		log.Error("load failed", "err", lerr.Error())
	}
	return out, lerr
}

// recordedLoad returns the lake ledger's final outcome of ev for target: a
// record of the same snapshot and request id that is not a failure.
func (o *Ops) recordedLoad(ctx context.Context, target string, ev events.SnapshotCommitted) (*writers.Outcome, error) {
	recs, err := o.Lake.LedgerOf(ctx, ev.Tenant, target, ev.SnapshotID)
	if err != nil {
		return nil, err
	}
	for i := len(recs) - 1; i >= 0; i-- {
		var out writers.Outcome
		if err := json.Unmarshal(recs[i], &out); err != nil {
			return nil, fmt.Errorf("ledger of %s/%s in %s: %w: %v", ev.Tenant, ev.SnapshotID, target, lake.ErrCorrupt, err)
		}
		if out.RequestID == ev.RequestID && out.Outcome != writers.OutcomeFailed {
			return &out, nil
		}
	}
	return nil, nil
}
