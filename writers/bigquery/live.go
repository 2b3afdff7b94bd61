package bigquery

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// The live record of a tenant is two labels on its dataset:
// tenantlake_live (the live snapshot, as lake.ShortSnapshotID) and
// tenantlake_state ("live", or "promoting" while a load replaces the
// tables). Both change only with a compare-and-swap on the dataset's etag
// (an If-Match header), so of two loads racing for the same tenant one
// claims the dataset and the other fails and can be retried.

// liveSnapshot reads the live snapshot id from a tenant dataset's labels:
// "" when none is live.
func liveSnapshot(labels map[string]string) (string, error) {
	short := labels[labelLive]
	if short == "" {
		return "", nil
	}
	id := snapshotFromShort(short)
	if _, err := lake.ParseSnapshotID(id); err != nil || lake.ShortSnapshotID(id) != short {
		return "", fmt.Errorf("label %s=%q is not a snapshot id", labelLive, short)
	}
	return id, nil
}

// snapshotFromShort inverts lake.ShortSnapshotID ("20261121t020304123z" →
// "20261121T020304.123Z"); liveSnapshot checks the round trip.
func snapshotFromShort(short string) string {
	s := strings.ToUpper(short)
	if len(s) < 4 {
		return s
	}
	return s[:len(s)-4] + "." + s[len(s)-4:]
}

// labelUpdate sets the live record to snapshotID in state. The writer's
// configured labels are sent again with it: the emulator replaces a
// dataset's whole label set on update, where BigQuery merges.
func labelUpdate(cfgLabels map[string]string, tenant, snapshotID, state string) bigquery.DatasetMetadataToUpdate {
	var u bigquery.DatasetMetadataToUpdate
	for k, v := range cfgLabels {
		u.SetLabel(k, v)
	}
	u.SetLabel(labelTenant, tenant)
	u.SetLabel(labelLive, lake.ShortSnapshotID(snapshotID))
	u.SetLabel(labelState, state)
	return u
}

// claim marks the tenant's dataset as promoting req's snapshot, with a
// compare-and-swap: it re-reads the dataset, checks that the live snapshot
// is still the one the load started from (and the stale rule against it),
// and updates the labels under the etag it read. It returns the dataset's
// metadata after the claim, whose etag releases it.
func (w *Writer) claim(ctx context.Context, ds *bigquery.Dataset, req writers.Request, startLive string) (*bigquery.DatasetMetadata, error) {
	md, err := ds.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("read dataset %s: %w", ds.DatasetID, err)
	}
	live, err := liveSnapshot(md.Labels)
	if err != nil {
		return nil, err
	}
	if live != startLive {
		return nil, fmt.Errorf("live snapshot changed from %q to %q while loading (a concurrent load); retry", startLive, live)
	}
	etag := md.ETag
	md, err = ds.Update(ctx, labelUpdate(w.cfg.Labels, req.Tenant, req.SnapshotID, statePromoting), etag)
	if err != nil {
		return nil, fmt.Errorf("claim dataset %s for promotion (compare-and-swap on etag %q): %w", ds.DatasetID, etag, err)
	}
	return md, nil
}
