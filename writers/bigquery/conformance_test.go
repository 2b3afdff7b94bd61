package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/writertest"
)

// TestConformance runs the shared write-strategy suite against the
// emulator. The suite's lake is mem://, so every part is streamed through
// the load API, as NDJSON (StreamJSON): the emulator's Parquet import
// corrupts dates, times and decimals. TestLoadCorpusFromGCS covers loads
// from gs:// URIs.
func TestConformance(t *testing.T) {
	writertest.RunConformance(t, harness{})
}

type harness struct{}

// Omissions are the corpus values the emulator cannot hold or return
// faithfully (goccy/bigquery-emulator v0.6.6, NDJSON loads), and one that
// NDJSON itself cannot carry. Each is a defect seen in the emulator's code,
// not in the values the writer sends (TestJSONEncoding checks those).
func (harness) Omissions() []writertest.Omission {
	return []writertest.Omission{
		{Column: "f8", Where: "f8 = 'NaN'",
			Reason: "the emulator cannot hold a FLOAT64 NaN: it stores NULL (it fails even on CAST('NaN' AS FLOAT64))"},
		{Column: "tstz", Where: "tstz NOT BETWEEN '1678-01-01' AND '2262-01-01'",
			Reason: "the emulator returns TIMESTAMPs through int64 nanoseconds (internal/types/types.go: UnixNano), which wrap outside 1677-09-21 .. 2262-04-11"},
		{Column: "b", Where: "length(b) > 0",
			Reason: "the emulator's NDJSON import keeps a BYTES value's base64 text as the bytes, without decoding it (go-zetasqlite casts the string to BYTES)"},
	}
}

func (harness) NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	cfg := emulatorConfig(t)
	cfg.StreamFormat = StreamJSON
	return New(ctx, cfg)
}

// NewChangesWriter is NewWriter with change tables (writertest.ChangesHarness).
func (harness) NewChangesWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	cfg := emulatorConfig(t)
	cfg.StreamFormat, cfg.Changes = StreamJSON, true
	return New(ctx, cfg)
}

// ChangeRows reads tenant's change table name; none when it does not exist.
func (harness) ChangeRows(ctx context.Context, w writers.Writer, tenant, name string) ([][]any, error) {
	bw, ok := w.(*Writer)
	if !ok {
		return nil, fmt.Errorf("writer is a %T", w)
	}
	tb := bw.client.Dataset(bw.datasetName(tenant)).Table(name)
	if _, err := tb.Metadata(ctx); isNotFound(err) {
		return nil, nil
	}
	rows, err := suiteRows(ctx, bw, tb, []string{"load_id", "previous_snapshot_id", "snapshot_id", "snapshot_time", "operation", "key", "row_before", "row_after"})
	for _, r := range rows {
		for i, v := range r {
			if v == nil {
				r[i] = nil // an untyped nil, as the suite wants for NULL
			}
		}
	}
	return rows, err
}

// LiveRows selects columns of tenant's live table and converts BigQuery's
// values to the suite's Go types (writertest.Canonical).
func (harness) LiveRows(ctx context.Context, w writers.Writer, tenant, table string, columns []string) ([][]any, error) {
	bw, ok := w.(*Writer)
	if !ok {
		return nil, fmt.Errorf("writer is a %T", w)
	}
	return suiteRows(ctx, bw, bw.client.Dataset(bw.datasetName(tenant)).Table(table), columns)
}

// AllTenantsRows selects tenant_id and columns of the combined table in the
// all-tenants dataset.
func (harness) AllTenantsRows(ctx context.Context, w writers.Writer, table string, columns []string) ([][]any, error) {
	bw, ok := w.(*Writer)
	if !ok {
		return nil, fmt.Errorf("writer is a %T", w)
	}
	return suiteRows(ctx, bw, bw.client.Dataset(bw.cfg.AllTenantsDataset).Table(table), append([]string{colTenantID}, columns...))
}

// suiteRows selects columns of tb and converts BigQuery's values to the
// suite's Go types (writertest.Canonical).
func suiteRows(ctx context.Context, bw *Writer, tb *bigquery.Table, columns []string) ([][]any, error) {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = quoteIdent(c)
	}
	it, err := bw.client.Query("SELECT " + strings.Join(cols, ", ") + " FROM " + tablePath(tb)).Read(ctx)
	if err != nil {
		return nil, err
	}
	var out [][]any
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		vals := make([]any, len(row))
		for i, v := range row {
			vals[i] = suiteValue(v)
		}
		out = append(out, vals)
	}
}

// suiteValue converts the civil types of the BigQuery client to the types
// writertest.Canonical takes; other values pass as they are.
func suiteValue(v bigquery.Value) any {
	switch x := v.(type) {
	case civil.Date:
		return x.In(time.UTC)
	case civil.DateTime:
		return x.In(time.UTC)
	case civil.Time:
		return time.Duration(x.Hour)*time.Hour + time.Duration(x.Minute)*time.Minute +
			time.Duration(x.Second)*time.Second + time.Duration(x.Nanosecond)
	}
	return v
}
