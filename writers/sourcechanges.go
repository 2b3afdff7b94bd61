package writers

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantlake/tenantlake/lake"
)

// SourceChanges lists the destinations whose source changed from prev (the
// snapshot live before a load) to next (the snapshot loaded), one line each,
// in next's table and column order: a table whose destination name was
// another source table's in prev, and, in a table whose source stayed, a
// column whose destination name was another source column's. The reader
// keeps names stable across consecutive snapshots, so such a change means a
// name was freed and given again later, or snapshots written before names
// were kept stable; a load's outcome says so. A nil prev or next has no
// changes.
func SourceChanges(prev, next *lake.Manifest) []string {
	if prev == nil || next == nil {
		return nil
	}
	var out []string
	for i := range next.Tables {
		nt := &next.Tables[i]
		pt := prev.Table(nt.Name)
		if pt == nil {
			continue
		}
		if pt.Source != nt.Source {
			out = append(out, fmt.Sprintf("table %s held %s in snapshot %s and holds %s now", nt.Name, pt.Source, prev.SnapshotID, nt.Source))
			continue
		}
		prevCols := make(map[string]string, len(pt.Columns))
		for _, c := range pt.Columns {
			prevCols[c.Name] = c.Source
		}
		for _, c := range nt.Columns {
			if src, ok := prevCols[c.Name]; ok && src != c.Source {
				out = append(out, fmt.Sprintf("column %s.%s held source column %q in snapshot %s and holds %q now", nt.Name, c.Name, src, prev.SnapshotID, c.Source))
			}
		}
	}
	return out
}

// NoteSourceChanges sets out.SourceChanges to SourceChanges from the
// manifest of the snapshot live before the load (out.PreviousLive) to next.
// A previous manifest that retention deleted leaves nothing to compare.
func NoteSourceChanges(ctx context.Context, lk *lake.Lake, out *Outcome, next *lake.Manifest) error {
	if out.PreviousLive == "" || out.PreviousLive == next.SnapshotID {
		return nil
	}
	prev, err := lk.Manifest(ctx, next.Tenant, out.PreviousLive)
	if errors.Is(err, lake.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("previous live snapshot's manifest: %w", err)
	}
	out.SourceChanges = SourceChanges(prev, next)
	return nil
}
