package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// Scheduled is one tenant's line of a Schedule result.
type Scheduled struct {
	Tenant    string `json:"tenant"`
	RequestID string `json:"request_id"`
	// Published is false when an earlier call for the same day already
	// published this request.
	Published bool   `json:"published"`
	Error     string `json:"error,omitempty"`
}

// ScheduleResult is what Schedule published.
type ScheduleResult struct {
	ScheduleTime time.Time   `json:"schedule_time"`
	Requests     []Scheduled `json:"requests"`
}

const requestKind = "requests"

// publishedRequest is the lake record of a published read request.
type publishedRequest struct {
	PublishedAt time.Time `json:"published_at"`
	MessageID   string    `json:"message_id"`
}

// Schedule publishes one scheduled read request per active tenant of the
// registry for schedule time at (the Schedule function; Cloud Scheduler
// gives the schedule time). The request ids derive from at, and a lake
// record per tenant says the request was published, so calling Schedule
// again for the same schedule time publishes nothing new, and a call that
// failed for some tenants publishes only those when retried. It never reads
// a source. A schedule time that is zero or more than events.MaxClockSkew
// ahead of this machine's clock is refused (ErrRejected): its request ids
// would be taken when that time comes. The error lists the tenants whose
// request could not be published.
func (o *Ops) Schedule(ctx context.Context, at time.Time) (*ScheduleResult, error) {
	if at.IsZero() {
		return nil, rejected("schedule time is missing")
	}
	if at.After(time.Now().Add(events.MaxClockSkew)) {
		// Its request ids would be taken when that time comes: the real
		// call would publish nothing.
		return nil, rejected("schedule time %s is in the future", at.UTC().Format(time.RFC3339))
	}
	ts, err := o.Registry.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedule: registry: %w", err)
	}
	res := &ScheduleResult{ScheduleTime: at.UTC(), Requests: []Scheduled{}}
	rid := events.ScheduledRequestID(at)
	var errs []error
	for _, t := range ts {
		if !t.Active {
			continue
		}
		line := Scheduled{Tenant: t.ID, RequestID: rid}
		var rec publishedRequest
		err := o.Lake.GetRecord(ctx, t.ID, requestKind, rid, &rec)
		switch {
		case err == nil:
		case errors.Is(err, lake.ErrNotFound):
			err = o.publishRequest(ctx, &events.ReadRequested{Tenant: t.ID, RequestID: rid, Reason: writers.ReasonScheduled, RequestedAt: at.UTC()})
			line.Published = err == nil
		}
		if err != nil {
			line.Error = err.Error()
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
		}
		res.Requests = append(res.Requests, line)
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("schedule: %d of %d requests not published: %w", len(errs), len(res.Requests), errors.Join(errs...))
	}
	return res, nil
}

// RequestRead publishes a manual read request for one tenant, now.
func (o *Ops) RequestRead(ctx context.Context, tenantID string) (*events.ReadRequested, error) {
	if _, err := o.Registry.Get(ctx, tenantID); err != nil {
		return nil, rejected("read request: %v", err)
	}
	now := time.Now().UTC()
	req := &events.ReadRequested{Tenant: tenantID, RequestID: "manual-" + lake.SnapshotID(now), Reason: writers.ReasonManual, RequestedAt: now}
	return req, o.publishRequest(ctx, req)
}

// publishRequest publishes req, then records it: a crash in between
// publishes it again on the next call, which Read's idempotence absorbs.
func (o *Ops) publishRequest(ctx context.Context, req *events.ReadRequested) error {
	m, err := events.New(req)
	if err != nil {
		return err
	}
	if o.Events == nil {
		return errors.New("no events publisher configured")
	}
	id, err := o.Events.Publish(ctx, o.Topics.ReadRequests, m)
	if err != nil {
		return err
	}
	err = o.Lake.PutRecord(ctx, req.Tenant, requestKind, req.RequestID, publishedRequest{PublishedAt: time.Now().UTC(), MessageID: id})
	if errors.Is(err, lake.ErrExists) { // a concurrent call published it too
		err = nil
	}
	return err
}
