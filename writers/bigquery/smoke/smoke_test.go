//go:build bigquerysmoke

// The smoke check runs the BigQuery writer against a real BigQuery project
// and GCS bucket: scripts/bigquery-smoke.sh PROJECT BUCKET runs it (build
// tag bigquerysmoke; never part of make test, and never run from the
// machines tenantlake is developed on, which reach no Google service).
//
// It runs the round-trip cases of the shared suite twice: with the lake on
// gs://BUCKET (one load job from the parts' URIs, the real path on GCP) and
// with an in-memory lake (parts streamed as Parquet through the load API),
// both with copy-job promotion. The corpus holds the extremes (years 1 and
// 9999, TIME, NaN and ±Infinity FLOAT64, the widest NUMERIC and
// BIGNUMERIC, JSON objects, arrays, strings, null, numbers), and every value
// read back from the live tables is compared with the source database's.
// After each case every live table's metadata is checked: no expiration.
// Every dataset it creates is named smoke_<run>_… and deleted at the end.

package smoke

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	bqw "github.com/tenantlake/tenantlake/writers/bigquery"
	"github.com/tenantlake/tenantlake/writers/writertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run scripts/bigquery-smoke.sh PROJECT BUCKET", name)
	}
	return v
}

type harness struct {
	project, location, run string
	client                 *bigquery.Client
	n                      *int
}

// cfg is the configuration of writer number i: datasets of its own.
func (h harness) cfg(i int) bqw.Config {
	p := fmt.Sprintf("smoke_%s_%d_", h.run, i)
	return bqw.Config{
		Project: h.project, Location: h.location,
		DatasetTemplate: p + "tenant_{tenant}", StagingDataset: p + "staging", AllTenantsDataset: p + "all_tenants", LedgerDataset: p + "ledger",
		Labels: map[string]string{"tenantlake_smoke": h.run},
	}
}

func (h harness) NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error) {
	*h.n++
	return bqw.New(ctx, h.cfg(*h.n))
}

func (h harness) dataset(tenant string) string {
	return strings.Replace(h.cfg(*h.n).DatasetTemplate, "{tenant}", tenant, 1)
}

func (h harness) LiveRows(ctx context.Context, w writers.Writer, tenant, table string, columns []string) ([][]any, error) {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = "`" + c + "`"
	}
	q := h.client.Query("SELECT " + strings.Join(cols, ", ") + " FROM `" + h.project + "." + h.dataset(tenant) + "." + table + "`")
	q.Location = h.location
	it, err := q.Read(ctx)
	if err != nil {
		return nil, err
	}
	// A live table never carries an expiration.
	md, err := h.client.Dataset(h.dataset(tenant)).Table(table).Metadata(ctx)
	if err != nil {
		return nil, err
	}
	if !md.ExpirationTime.IsZero() {
		return nil, fmt.Errorf("live table %s.%s expires at %v", h.dataset(tenant), table, md.ExpirationTime)
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
			switch x := v.(type) {
			case civil.Date:
				vals[i] = x.In(time.UTC)
			case civil.DateTime:
				vals[i] = x.In(time.UTC)
			case civil.Time:
				vals[i] = time.Duration(x.Hour)*time.Hour + time.Duration(x.Minute)*time.Minute + time.Duration(x.Second)*time.Second + time.Duration(x.Nanosecond)
			default:
				vals[i] = v
			}
		}
		out = append(out, vals)
	}
}

func TestRealBigQuery(t *testing.T) {
	ctx := context.Background()
	project, bucket := env(t, "TENANTLAKE_SMOKE_PROJECT"), env(t, "TENANTLAKE_SMOKE_BUCKET")
	client, err := bigquery.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	run := strings.ToLower(time.Now().UTC().Format("20060102t150405"))
	n := 0
	h := harness{project: project, location: os.Getenv("TENANTLAKE_SMOKE_LOCATION"), run: run, client: client, n: &n}
	t.Cleanup(func() {
		it := client.Datasets(ctx)
		for {
			ds, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Errorf("list datasets: %v", err)
				break
			}
			if strings.HasPrefix(ds.DatasetID, "smoke_"+run+"_") {
				if err := ds.DeleteWithContents(ctx); err != nil {
					t.Errorf("delete dataset %s: %v", ds.DatasetID, err)
				}
			}
		}
		if err := client.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	})
	gcs, err := lake.Open(ctx, "gs://"+bucket+"/tenantlake-smoke-"+run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gcs.Close(); err != nil {
			t.Errorf("close lake: %v", err)
		}
	})
	t.Run("FromGCS", func(t *testing.T) { writertest.RunRoundTripOn(t, h, gcs) })
	t.Run("Streamed", func(t *testing.T) { writertest.RunRoundTripOn(t, h, nil) })
	t.Logf("the lake objects under gs://%s/tenantlake-smoke-%s stay; remove them with: gcloud storage rm -r gs://%s/tenantlake-smoke-%s", bucket, run, bucket, run)
}
