package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// History is one page of a tenant's committed snapshots, newest first, with
// what each target did with each (the Snapshots function).
type History struct {
	Tenant    string            `json:"tenant"`
	Targets   []string          `json:"targets"`
	Snapshots []HistorySnapshot `json:"snapshots"`
	// Next, when set, is the Before value of the following (older) page.
	Next string `json:"next,omitempty"`
}

// HistorySnapshot is one snapshot of a History page.
type HistorySnapshot struct {
	Summary
	// Loads maps a target's name to its loads of this snapshot, in order.
	Loads map[string][]LoadRecord `json:"loads"`
}

// LoadRecord is one load of the lake's ledger, in short.
type LoadRecord struct {
	LoadID       string    `json:"load_id"`
	Outcome      string    `json:"outcome"`
	Reason       string    `json:"reason"`
	RequestID    string    `json:"request_id,omitempty"`
	PreviousLive string    `json:"previous_live,omitempty"`
	Live         string    `json:"live,omitempty"`
	Message      string    `json:"message,omitempty"`
	Checks       int       `json:"checks"`
	FailedChecks int       `json:"failed_checks"`
	FinishedAt   time.Time `json:"finished_at"`
}

// MaxPage bounds a History page.
const MaxPage = 100

// History returns up to limit (1..MaxPage; 0 means 20) committed snapshots
// of tenantID older than before (a snapshot id; "" for the newest), with
// every configured target's loads of each from the lake's ledger.
func (o *Ops) History(ctx context.Context, tenantID, before string, limit int) (*History, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return nil, rejected("tenant: %v", err)
	}
	if before != "" {
		if _, err := lake.ParseSnapshotID(before); err != nil {
			return nil, rejected("before: %v", err)
		}
	}
	switch {
	case limit == 0:
		limit = 20
	case limit < 0 || limit > MaxPage:
		return nil, rejected("limit %d: want 1 to %d", limit, MaxPage)
	}
	snaps, err := o.Lake.Snapshots(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, rejected("tenant %s has no snapshots in the lake", tenantID)
	}
	h := &History{Tenant: tenantID, Targets: o.targetNames(), Snapshots: []HistorySnapshot{}}
	for _, s := range snaps {
		if before != "" && s.SnapshotID >= before {
			continue
		}
		if len(h.Snapshots) == limit {
			h.Next = h.Snapshots[len(h.Snapshots)-1].SnapshotID
			break
		}
		m, err := o.Lake.Manifest(ctx, tenantID, s.SnapshotID)
		if errors.Is(err, lake.ErrNotFound) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			return nil, err
		}
		hs := HistorySnapshot{Summary: Summarize(m), Loads: map[string][]LoadRecord{}}
		for _, target := range h.Targets {
			recs, err := o.Lake.LedgerOf(ctx, tenantID, target, s.SnapshotID)
			if err != nil {
				return nil, err
			}
			loads := []LoadRecord{}
			for _, raw := range recs {
				var out writers.Outcome
				if err := json.Unmarshal(raw, &out); err != nil {
					return nil, fmt.Errorf("ledger of %s/%s in %s: %w: %v", tenantID, s.SnapshotID, target, lake.ErrCorrupt, err)
				}
				r := LoadRecord{LoadID: out.LoadID, Outcome: out.Outcome, Reason: out.Reason, RequestID: out.RequestID,
					PreviousLive: out.PreviousLive, Live: out.Live, Message: out.Message, FinishedAt: out.FinishedAt}
				for _, t := range out.Tables {
					for _, c := range t.Checks {
						r.Checks++
						if !c.OK {
							r.FailedChecks++
						}
					}
				}
				loads = append(loads, r)
			}
			hs.Loads[target] = loads
		}
		h.Snapshots = append(h.Snapshots, hs)
	}
	return h, nil
}
