package bigquery

import (
	"fmt"

	"github.com/tenantlake/tenantlake/lake"
)

// BigQuery's limits that one table's load meets (cloud.google.com/bigquery/quotas,
// "Load jobs"). The writer stays within them by construction: a table on
// GCS is loaded by as few jobs as these allow (one, up to 10,000 parts and
// 15 TB); a streamed table takes one job per part, and a table with more
// parts than one staging table accepts jobs a day is refused before any
// job starts, naming the limit.
const (
	// maxURIsPerLoad is the most source URIs of one load job.
	maxURIsPerLoad = 10000
	// maxBytesPerLoad is the most bytes one load job reads (15 TB).
	maxBytesPerLoad = 15 << 40
	// maxLoadJobsPerTable is BigQuery's limit of load jobs (failed ones
	// included) per destination table per day. Each attempt stages into a
	// fresh table, so it bounds the jobs of one attempt.
	maxLoadJobsPerTable = 1500
)

// gcsBatches splits the parts of a table on GCS into the load jobs that
// carry them, in order: each batch holds at most maxURIsPerLoad URIs and
// maxBytesPerLoad bytes (a single part larger than that is refused).
func gcsBatches(files []lake.File) ([][]int, error) {
	var batches [][]int
	var bytes int64
	for i, f := range files {
		if f.Bytes > maxBytesPerLoad {
			return nil, fmt.Errorf("part %s holds %d bytes: BigQuery loads at most 15 TB per load job", f.Path, f.Bytes)
		}
		n := len(batches)
		if n == 0 || len(batches[n-1]) == maxURIsPerLoad || bytes+f.Bytes > maxBytesPerLoad {
			batches = append(batches, nil)
			n++
			bytes = 0
		}
		batches[n-1] = append(batches[n-1], i)
		bytes += f.Bytes
	}
	if len(batches) == 0 {
		batches = [][]int{nil}
	}
	return batches, nil
}

// checkQuotas refuses, before any job starts, a table whose load would
// pass a limit of BigQuery's: a streamed table (the lake is not on GCS)
// with more parts than load jobs a staging table accepts a day, or a part
// on GCS beyond what one load job reads.
func (w *Writer) checkQuotas(lk *lake.Lake, t *lake.Table) error {
	onGCS := true
	for _, f := range t.Files {
		if _, ok := lk.GCSURI(f.Path); !ok {
			onGCS = false
		}
	}
	if onGCS {
		_, err := gcsBatches(t.Files)
		return err
	}
	if len(t.Files) > maxLoadJobsPerTable {
		return fmt.Errorf("table %s has %d parts: a lake not on GCS streams one load job per part, and BigQuery accepts at most %d load jobs per table per day; put the lake on GCS (one load job per %d parts) or read the table into fewer, larger parts",
			t.Name, len(t.Files), maxLoadJobsPerTable, maxURIsPerLoad)
	}
	return nil
}
