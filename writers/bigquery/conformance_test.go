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
// the load API; TestLoadCorpusFromGCS covers loads from gs:// URIs.
func TestConformance(t *testing.T) {
	writertest.RunConformance(t, harness{})
}

type harness struct{}

func (harness) NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	return New(ctx, emulatorConfig(t))
}

// LiveRows selects columns of tenant's live table and converts BigQuery's
// values to the suite's Go types (writertest.Canonical).
func (harness) LiveRows(ctx context.Context, w writers.Writer, tenant, table string, columns []string) ([][]any, error) {
	bw, ok := w.(*Writer)
	if !ok {
		return nil, fmt.Errorf("writer is a %T", w)
	}
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = quoteIdent(c)
	}
	tb := bw.client.Dataset(bw.datasetName(tenant)).Table(table)
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
