package bigquery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/tenantlake/tenantlake/lake"
)

// jobID derives the id of a load job from what the load is: the dataset it
// stages for, tenant, snapshot (lake.ShortSnapshotID), table, attempt and,
// when parts are streamed, the part (part >= 0). Part -1 is the first (and
// usually only) job that loads parts from GCS; -1-b is its batch b
// (gcsBatches). A redelivered request derives the same id and so finds the job it
// started before. The readable fields come first; a hash of the full tuple
// keeps ids distinct even where readable fields could run together.
//
// BigQuery job ids allow [A-Za-z0-9_-], up to 1024 characters; every field
// here is within that alphabet (lake table names, tenant ids, short ids).
func jobID(dataset, tenant, snapshotID, table string, attempt, part int) string {
	short := lake.ShortSnapshotID(snapshotID)
	id := fmt.Sprintf("tenantlake_load_%s_%s_%s_a%d", tenant, short, table, attempt)
	switch {
	case part >= 0:
		id += fmt.Sprintf("_p%05d", part)
	case part < -1:
		id += fmt.Sprintf("_b%05d", -1-part)
	}
	return withHash(id, dataset, tenant, snapshotID, table, fmt.Sprint(attempt), fmt.Sprint(part))
}

// maxName is the longest job id or table name made here: BigQuery allows
// 1024 characters for both.
const maxName = 1024

// withHash appends to readable a hash of fields, cutting readable so the
// whole fits maxName: the hash keeps long names distinct.
func withHash(readable string, fields ...string) string {
	h := "_" + tupleHash(fields...)
	if len(readable)+len(h) > maxName {
		readable = readable[:maxName-len(h)]
	}
	return readable + h
}

// promoteJobID is the id of the job that promotes one staged table in one
// load (loadID): a promotion repeats whenever a snapshot becomes live again
// (a replay), so its id includes the load, not only the snapshot.
func promoteJobID(dataset, tenant, snapshotID, table, loadID string) string {
	return withHash(fmt.Sprintf("tenantlake_promote_%s_%s_%s_%s", tenant, lake.ShortSnapshotID(snapshotID), table, loadID),
		dataset, tenant, snapshotID, table, loadID)
}

func tupleHash(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// stagingTableName is the staging table of one attempt at one table. Each
// attempt loads into a fresh table, so a retried or repeated load never
// appends to rows loaded before (the emulator ignores write dispositions).
// A name that would pass BigQuery's limit is cut and ends with a hash.
func stagingTableName(tenant, snapshotID, table string, attempt int) string {
	name := fmt.Sprintf("%s__%s__a%d__%s", tenant, lake.ShortSnapshotID(snapshotID), attempt, table)
	if len(name) <= maxName {
		return name
	}
	return withHash(name, tenant, snapshotID, table, fmt.Sprint(attempt))
}

// gcsLoadSource is the load source for a table whose parts are on GCS: the
// URIs listed in the manifest, never a wildcard or a guess.
func gcsLoadSource(uris []string, schema bigquery.Schema) *bigquery.GCSReference {
	src := bigquery.NewGCSReference(uris...)
	configureParquet(&src.FileConfig, schema)
	return src
}

// configureParquet sets what every load of a lake part needs: Parquet, the
// manifest's schema (never autodetected), and list inference so Parquet
// LISTs become REPEATED fields.
func configureParquet(fc *bigquery.FileConfig, schema bigquery.Schema) {
	fc.SourceFormat = bigquery.Parquet
	fc.Schema = schema
	fc.AutoDetect = false
	fc.ParquetOptions = &bigquery.ParquetOptions{EnableListInference: true}
}

// configureJSON sets what a load of a part streamed as NDJSON
// (openNDJSONPart) needs: the manifest's schema, never autodetected.
func configureJSON(fc *bigquery.FileConfig, schema bigquery.Schema) {
	fc.SourceFormat = bigquery.JSON
	fc.Schema = schema
	fc.AutoDetect = false
}

// loadConfig is the configuration of a load job into dst. The first job of
// an attempt truncates (the table was created empty by this attempt, so a
// re-run job can never double its rows); the following part jobs append.
// The table exists already (created with the manifest's schema, so empty
// tables keep their columns): CREATE_NEVER. DECIMAL columns land as NUMERIC
// or BIGNUMERIC, the first that holds their precision and scale.
func loadConfig(src bigquery.LoadSource, dst *bigquery.Table, first bool, labels map[string]string) bigquery.LoadConfig {
	wd := bigquery.WriteAppend
	if first {
		wd = bigquery.WriteTruncate
	}
	return bigquery.LoadConfig{
		Src:                src,
		Dst:                dst,
		CreateDisposition:  bigquery.CreateNever,
		WriteDisposition:   wd,
		Labels:             labels,
		DecimalTargetTypes: []bigquery.DecimalTargetType{bigquery.NumericTargetType, bigquery.BigNumericTargetType},
	}
}

// copyConfig is the configuration of the copy job that promotes a staged
// table: the whole live table is replaced atomically (WRITE_TRUNCATE),
// created on the first load.
func copyConfig(src, dst *bigquery.Table, labels map[string]string) bigquery.CopyConfig {
	return bigquery.CopyConfig{
		Srcs:              []*bigquery.Table{src},
		Dst:               dst,
		CreateDisposition: bigquery.CreateIfNeeded,
		WriteDisposition:  bigquery.WriteTruncate,
		Labels:            labels,
	}
}

// runJob runs the job with the given id exactly once across redeliveries:
// it first looks the id up and attaches to the job if it exists (running or
// done); otherwise it starts it with start. If start fails but a job with
// that id exists by then (BigQuery answers 409 Duplicate when two deliveries
// race; the emulator answers 400 for a reused id), it attaches to that job.
// It waits for the job and returns whether it attached to an existing job
// and the job's final status; a job that finished with an error returns
// that error (a *bigquery.Error).
func (w *Writer) runJob(ctx context.Context, id string, start func(context.Context) (*bigquery.Job, error)) (attached bool, _ *bigquery.JobStatus, _ error) {
	job, err := w.client.JobFromIDLocation(ctx, id, w.cfg.Location)
	if err != nil && !isNotFound(err) {
		return false, nil, fmt.Errorf("look up job %s: %w", id, err)
	}
	attached = err == nil
	if !attached {
		job, err = start(ctx)
		if err != nil {
			existing, gerr := w.client.JobFromIDLocation(ctx, id, w.cfg.Location)
			if gerr != nil {
				return false, nil, fmt.Errorf("start job %s: %w", id, err)
			}
			job, attached = existing, true
		}
	}
	status, err := job.Wait(ctx)
	if err != nil {
		return attached, nil, fmt.Errorf("job %s: %w", id, err)
	}
	if err := status.Err(); err != nil {
		return attached, status, fmt.Errorf("job %s: %w", id, err)
	}
	return attached, status, nil
}

// retryable is the one place that decides whether a failed attempt is tried
// again under the next attempt id. HTTP calls are already retried by the
// client library; what is left is a job that failed for a reason BigQuery
// calls transient, a server error, or a broken stream while uploading a
// part. Invalid input (a schema mismatch, a bad part, a missing object), a
// cancelled context and a lake error that says the object is missing are
// not retried: they would fail the same way.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, lake.ErrNotFound) || errors.Is(err, lake.ErrInvalid) || errors.Is(err, lake.ErrCorrupt) {
		return false
	}
	var jerr *bigquery.Error
	if errors.As(err, &jerr) {
		switch jerr.Reason {
		case "backendError", "internalError", "rateLimitExceeded", "jobBackendError", "jobInternalError":
			return true
		}
		return false
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code >= 500 || gerr.Code == http.StatusTooManyRequests
	}
	return true
}

func isNotFound(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusNotFound
}

func isAlreadyExists(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusConflict
}
