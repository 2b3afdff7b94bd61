package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// errStagingGone: an attempt's jobs exist and succeeded, but its staging
// table has expired since (a replay of an old snapshot). The next attempt
// loads it again.
var errStagingGone = errors.New("staging table of a finished attempt no longer exists")

// errRestage: a staged table that an earlier delivery loaded failed
// validation; the next attempt stages it afresh.
var errRestage = errors.New("table staged by an earlier delivery failed validation")

// errEarlierAttempt: an attempt's job was started by an earlier delivery of
// the request and failed. The next attempt id is tried, and this delivery
// is not charged for it.
var errEarlierAttempt = errors.New("a job of an earlier delivery failed")

// maxAttemptIDs bounds the attempt ids one delivery walks past (earlier
// deliveries' failed attempts, expired staging tables), so a table whose
// history holds that many ends with an error rather than looping.
const maxAttemptIDs = 1000

// stageTable loads table t of snapshot m into a fresh staging table and
// validates it. Attempts are numbered from 1; a redelivered request walks
// the same attempt ids and attaches to their jobs.
//
// MaxAttempts bounds the attempts of this delivery: only a job this
// delivery started, and that failed for a reason retryable calls
// transient, is charged to it. An attempt id whose job an earlier delivery
// started and that failed, whose staging table has expired since (a
// replay of an old snapshot), or whose table, staged by an earlier
// delivery, does not validate, is walked past for free: a snapshot never
// runs out of attempts because of earlier deliveries or replays.
func (w *Writer) stageTable(ctx context.Context, lk *lake.Lake, m *lake.Manifest, t *lake.Table) (*bigquery.Table, writers.TableResult, error) {
	res := writers.TableResult{Table: t.Name, SourceRows: t.Rows}
	for _, f := range t.Files {
		res.LakeRows += f.Rows
	}
	schema, err := tableSchema(t)
	if err != nil {
		return nil, res, err
	}
	staged := stagedSchema(schema)
	if err := w.checkQuotas(lk, t); err != nil {
		return nil, res, err
	}
	charged := 0
	for attempt := 1; attempt <= maxAttemptIDs; attempt++ {
		st := w.client.Dataset(w.cfg.StagingDataset).Table(stagingTableName(m.Tenant, m.SnapshotID, t.Name, attempt))
		jobs, jobRows, attached, err := w.loadAttempt(ctx, lk, m, t, staged, st, attempt)
		res.Jobs = append(res.Jobs, jobs...)
		var md *bigquery.TableMetadata
		if err == nil {
			md, err = st.Metadata(ctx)
			if isNotFound(err) {
				err = errStagingGone
			}
		}
		if err == nil {
			res.Checks, res.TargetRows, err = w.validate(ctx, st, md, t, schema, staged, jobRows)
			if err == nil && attached && writers.FailedChecks([]writers.TableResult{res}) != "" {
				// A table staged by an earlier delivery is trusted only if it
				// validates: that delivery may have been cut off mid-upload
				// (the emulator records an upload's job before reading its
				// data). Stage it again rather than quarantine on its strength.
				err = errRestage
			}
			if err == nil {
				return st, res, nil
			}
		}
		switch {
		case errors.Is(err, errEarlierAttempt) || errors.Is(err, errStagingGone) || errors.Is(err, errRestage):
			continue // not this delivery's attempt
		case !retryable(err):
			return nil, res, fmt.Errorf("attempt %d: %w", attempt, err)
		}
		if charged++; charged >= w.cfg.MaxAttempts {
			return nil, res, fmt.Errorf("attempt %d, the %d of this delivery (max_attempts): %w", attempt, charged, err)
		}
	}
	return nil, res, fmt.Errorf("%d attempt ids walked past without a table staged", maxAttemptIDs)
}

// loadAttempt runs the load jobs of one attempt into st: one job from the
// parts' gs:// URIs when the lake is on GCS, else one job per part, streamed
// through the load API as Parquet or, with StreamJSON, as NDJSON. It creates
// st first, with the manifest's schema, so that an empty table keeps its
// columns. It returns the job ids, the rows the jobs reported loading (-1
// when a job reported no statistics) and whether any job was an earlier
// delivery's.
//
// Every part is checked against the manifest before its data can reach a
// staged table: gs:// parts by the CRC-32C GCS stores (lake.CheckStored,
// nothing downloaded) before the job starts; streamed Parquet parts by
// SHA-256 as they stream (lake.StreamPart fails the upload's last read, so
// the upload is never finalised); NDJSON parts by SHA-256 before they are
// decoded (lake.OpenPart, through writers.PartRows). A mismatch fails the
// attempt with an error wrapping lake.ErrCorrupt, which is not retried and
// which the writer reports as quarantined; it wins over whatever the job
// says, since the emulator can record a job whose upload failed.
func (w *Writer) loadAttempt(ctx context.Context, lk *lake.Lake, m *lake.Manifest, t *lake.Table, schema bigquery.Schema, st *bigquery.Table, attempt int) (ids []string, rows int64, attachedAny bool, _ error) {
	scope := w.cfg.Project + "." + w.cfg.StagingDataset
	var uris []string
	for _, f := range t.Files {
		if uri, ok := lk.GCSURI(f.Path); ok {
			uris = append(uris, uri)
		}
	}
	type step struct {
		id    string
		first bool
		src   func() (bigquery.LoadSource, func() error, error)
	}
	var steps []step
	// badPart holds the first corrupt-part error a stream met; guarded by mu
	// since the client library may read a source on its own goroutine.
	var (
		mu      sync.Mutex
		badPart error
	)
	watch := func(r io.Reader) io.Reader {
		return readerFunc(func(p []byte) (int, error) {
			n, err := r.Read(p)
			if errors.Is(err, lake.ErrCorrupt) {
				mu.Lock()
				if badPart == nil {
					badPart = err
				}
				mu.Unlock()
			}
			return n, err
		})
	}
	corrupt := func() error {
		mu.Lock()
		defer mu.Unlock()
		return badPart
	}
	if len(uris) == len(t.Files) {
		for _, f := range t.Files {
			if err := lk.CheckStored(ctx, f); err != nil {
				return nil, 0, false, err
			}
		}
		batches, err := gcsBatches(t.Files)
		if err != nil {
			return nil, 0, false, err
		}
		for b, idx := range batches {
			batch := make([]string, len(idx))
			for i, j := range idx {
				batch[i] = uris[j]
			}
			steps = append(steps, step{
				id:    jobID(scope, m.Tenant, m.SnapshotID, t.Name, attempt, -1-b),
				first: b == 0,
				src: func() (bigquery.LoadSource, func() error, error) {
					return gcsLoadSource(batch, schema), func() error { return nil }, nil
				},
			})
		}
	} else {
		for i, f := range t.Files {
			steps = append(steps, step{
				id:    jobID(scope, m.Tenant, m.SnapshotID, t.Name, attempt, i),
				first: i == 0,
				src: func() (bigquery.LoadSource, func() error, error) {
					if w.cfg.StreamFormat == StreamJSON {
						p, err := openNDJSONPart(ctx, lk, t, f)
						if err != nil {
							return nil, nil, err
						}
						src := bigquery.NewReaderSource(watch(p))
						configureJSON(&src.FileConfig, schema)
						return src, p.Close, nil
					}
					r, err := lk.StreamPart(ctx, f)
					if err != nil {
						return nil, nil, err
					}
					src := bigquery.NewReaderSource(watch(r))
					configureParquet(&src.FileConfig, schema)
					return src, r.Close, nil
				},
			})
		}
	}

	// The staging table of this attempt; it may exist from an earlier
	// delivery of the same request.
	err := st.Create(ctx, &bigquery.TableMetadata{Schema: schema})
	created := err == nil
	if err != nil && !isAlreadyExists(err) {
		return nil, 0, false, fmt.Errorf("create staging table %s.%s: %w", st.DatasetID, st.TableID, err)
	}
	for _, s := range steps {
		ids = append(ids, s.id)
		attached, status, err := w.runJob(ctx, s.id, func(ctx context.Context) (*bigquery.Job, error) {
			src, closeSrc, err := s.src()
			if err != nil {
				return nil, err
			}
			loader := st.LoaderFrom(src)
			loader.LoadConfig = loadConfig(src, st, s.first, w.cfg.Labels)
			loader.JobID = s.id
			loader.Location = w.cfg.Location
			job, err := loader.Run(ctx)
			if cerr := closeSrc(); err == nil && cerr != nil {
				err = cerr
			}
			if bad := corrupt(); bad != nil {
				err = bad
			}
			return job, err
		})
		if bad := corrupt(); bad != nil {
			return ids, 0, attachedAny, bad
		}
		if err != nil && attached {
			return ids, 0, true, fmt.Errorf("%w: %w", errEarlierAttempt, err)
		}
		if err != nil {
			return ids, 0, attachedAny, err
		}
		if attached && created {
			// The job ran before, into a table that has expired since.
			return ids, 0, true, errStagingGone
		}
		attachedAny = attachedAny || attached
		if ls, ok := loadStatistics(status); ok && rows >= 0 {
			rows += ls.OutputRows
		} else {
			rows = -1
		}
	}
	return ids, rows, attachedAny, nil
}

// readerFunc is an io.Reader made of a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func loadStatistics(s *bigquery.JobStatus) (*bigquery.LoadStatistics, bool) {
	if s == nil || s.Statistics == nil {
		return nil, false
	}
	ls, ok := s.Statistics.Details.(*bigquery.LoadStatistics)
	return ls, ok
}
