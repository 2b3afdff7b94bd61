package bigquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"gocloud.dev/blob/memblob"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// Unit tests of what the emulator cannot show: the exact job
// configurations sent (copy jobs, decimal target types), 409 on a reused
// job id; and of the pure functions.

const snap = "20261121T020304.123Z"

func TestJobIDDerivation(t *testing.T) {
	base := jobID("p.staging", "acme", snap, "orders", 1, -1)
	if !strings.HasPrefix(base, "tenantlake_load_acme_"+lake.ShortSnapshotID(snap)+"_orders_a1_") {
		t.Errorf("job id %q does not start with its readable fields", base)
	}
	if base != jobID("p.staging", "acme", snap, "orders", 1, -1) {
		t.Error("job id is not deterministic")
	}
	if ok := regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(base); !ok || len(base) > 1024 {
		t.Errorf("job id %q is not a valid BigQuery job id", base)
	}
	others := []string{
		jobID("p.staging2", "acme", snap, "orders", 1, -1),
		jobID("p.staging", "acme2", snap, "orders", 1, -1),
		jobID("p.staging", "acme", "20261121T020304.124Z", "orders", 1, -1),
		jobID("p.staging", "acme", snap, "orders2", 1, -1),
		jobID("p.staging", "acme", snap, "orders", 2, -1),
		jobID("p.staging", "acme", snap, "orders", 1, 0),
		// readable fields that run together still differ by the hash
		jobID("p.staging", "acme_x", snap, "orders", 1, -1),
	}
	seen := map[string]bool{base: true}
	for _, id := range others {
		if seen[id] {
			t.Errorf("job id %q repeats", id)
		}
		seen[id] = true
	}
	if got := jobID("p.staging", "acme", snap, "orders", 2, 3); !strings.Contains(got, "_a2_p00003_") {
		t.Errorf("part job id %q lacks attempt and part", got)
	}
	long := strings.Repeat("t", 1024)
	for _, name := range []string{jobID("p.s", "acme", snap, long, 1, 3), promoteJobID("p.d", "acme", snap, long, "l1"), stagingTableName("acme", snap, long, 1)} {
		if len(name) > 1024 {
			t.Errorf("name of %d characters", len(name))
		}
	}
	if jobID("p.s", "acme", snap, long, 1, -1) == jobID("p.s", "acme", snap, long+"u", 1, -1) ||
		stagingTableName("acme", snap, long, 1) == stagingTableName("acme", snap, long+"u", 1) {
		t.Error("cut names of two long tables are equal")
	}
	p1 := promoteJobID("p.tenant_acme", "acme", snap, "orders", "l1")
	if p1 == promoteJobID("p.tenant_acme", "acme", snap, "orders", "l2") {
		t.Error("promotion job ids of two loads (a replay promotes again) are equal")
	}
}

func TestFieldSchema(t *testing.T) {
	cases := []struct {
		typ      string
		nullable bool
		want     string
	}{
		{"INT64", true, "c INTEGER NULLABLE"},
		{"FLOAT64", false, "c FLOAT REQUIRED"},
		{"NUMERIC(12,2)", true, "c NUMERIC(12,2) NULLABLE"},
		{"BIGNUMERIC(50,20)", true, "c BIGNUMERIC(50,20) NULLABLE"},
		{"STRING", true, "c STRING NULLABLE"},
		{"BYTES", true, "c BYTES NULLABLE"},
		{"JSON", true, "c JSON NULLABLE"},
		{"BOOL", true, "c BOOLEAN NULLABLE"},
		{"DATE", true, "c DATE NULLABLE"},
		{"DATETIME", true, "c DATETIME NULLABLE"},
		{"TIMESTAMP", true, "c TIMESTAMP NULLABLE"},
		{"TIME", true, "c TIME NULLABLE"},
		{"ARRAY<INT64>", false, "c INTEGER REPEATED"},
	}
	for _, c := range cases {
		f, err := fieldSchema(lake.Column{Name: "c", BigQueryType: c.typ, Nullable: c.nullable})
		if err != nil {
			t.Errorf("%s: %v", c.typ, err)
			continue
		}
		if got := fieldString(f); got != c.want {
			t.Errorf("%s: %s, want %s", c.typ, got, c.want)
		}
	}
	for _, bad := range []string{"INTEGERX", "NUMERIC(12", "STRING(10)", ""} {
		if _, err := fieldSchema(lake.Column{Name: "c", BigQueryType: bad}); err == nil {
			t.Errorf("type %q accepted", bad)
		}
	}
}

func TestCompareFigure(t *testing.T) {
	ts := time.Date(2026, 11, 21, 2, 3, 4, 123456000, time.UTC)
	cases := []struct {
		typ  bigquery.FieldType
		name string
		want string
		got  bigquery.Value
		ok   bool
	}{
		{bigquery.IntegerFieldType, "min", "-32768", int64(-32768), true},
		{bigquery.StringFieldType, "nulls", "2", int64(2), true},
		{bigquery.BooleanFieldType, "nulls", "0", int64(1), false},
		{bigquery.IntegerFieldType, "sum", "99999999999999999999", big.NewRat(0, 1).SetFrac(bigInt("99999999999999999999"), big.NewInt(1)), true},
		{bigquery.IntegerFieldType, "max", "5", int64(6), false},
		{bigquery.NumericFieldType, "min", "1.50", big.NewRat(3, 2), true},
		{bigquery.NumericFieldType, "sum", "0.00", nil, true},
		{bigquery.NumericFieldType, "min", "0.01", nil, false},
		{bigquery.FloatFieldType, "sum", "NaN", math.NaN(), true},
		{bigquery.FloatFieldType, "sum", "1", 1 + 1e-12, true},
		{bigquery.FloatFieldType, "sum", "1", 1 + 1e-6, false},
		{bigquery.FloatFieldType, "max", "+Inf", math.Inf(1), true},
		{bigquery.FloatFieldType, "min", "0.1", 0.1 + 1e-17, true},
		{bigquery.FloatFieldType, "min", "0.1", 0.10000001, false},
		{bigquery.StringFieldType, "min", "Zebra", "Zebra", true},
		{bigquery.StringFieldType, "min", "zebra", "Zebra", false},
		{bigquery.BooleanFieldType, "max", "true", true, true},
		{bigquery.DateFieldType, "min", "0001-01-01", civil.Date{Year: 1, Month: 1, Day: 1}, true},
		{bigquery.DateTimeFieldType, "max", "2026-11-21T02:03:04.123456", civil.DateTimeOf(ts), true},
		{bigquery.TimestampFieldType, "max", "2026-11-21T02:03:04.123456Z", ts, true},
		{bigquery.TimestampFieldType, "max", "2026-11-21T02:03:04.123457Z", ts, false},
		{bigquery.TimeFieldType, "max", "23:59:59.999999", civil.Time{Hour: 23, Minute: 59, Second: 59, Nanosecond: 999999000}, true},
	}
	for _, c := range cases {
		ok, actual := compareFigure(figure{name: c.name, typ: c.typ, want: c.want}, c.got)
		if ok != c.ok {
			t.Errorf("%s %s: want %s, got %v (%s): match %v, expected %v", c.typ, c.name, c.want, c.got, actual, ok, c.ok)
		}
	}
}

func bigInt(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

func TestPromoteSQL(t *testing.T) {
	src := &bigquery.Table{ProjectID: "p", DatasetID: "stg", TableID: "acme__x__a1__orders"}
	dst := &bigquery.Table{ProjectID: "p", DatasetID: "tenant_acme", TableID: "orders"}
	live := bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "total", Type: bigquery.NumericFieldType, Precision: 12, Scale: 2},
		{Name: "doc", Type: bigquery.JSONFieldType},
		{Name: "at", Type: bigquery.TimestampFieldType},
	}
	want := "CREATE OR REPLACE TABLE `p.tenant_acme.orders` (`id` INT64 NOT NULL, `total` NUMERIC(12, 2), `doc` JSON, `at` TIMESTAMP) AS SELECT `id`, `total`, PARSE_JSON(`doc`, wide_number_mode => 'exact') AS `doc`, `at` FROM `p.stg.acme__x__a1__orders`"
	if got := promoteSQL(src, dst, live); got != want {
		t.Errorf("promotion statement:\n%s\nwant\n%s", got, want)
	}
	staged := stagedSchema(live)
	if staged[2].Type != bigquery.StringFieldType || live[2].Type != bigquery.JSONFieldType || staged[1].Precision != 12 {
		t.Errorf("staged schema %v (live %v): want JSON staged as STRING, the rest unchanged", staged, live)
	}
}

func TestGCSBatches(t *testing.T) {
	files := make([]lake.File, 25000)
	for i := range files {
		files[i] = lake.File{Path: fmt.Sprintf("p%d", i), Bytes: 1 << 20}
	}
	b, err := gcsBatches(files)
	if err != nil || len(b) != 3 || len(b[0]) != maxURIsPerLoad || len(b[2]) != 5000 || b[1][0] != maxURIsPerLoad {
		t.Fatalf("25,000 parts: %d batches, err %v", len(b), err)
	}
	big := []lake.File{{Path: "a", Bytes: 10 << 40}, {Path: "b", Bytes: 10 << 40}, {Path: "c", Bytes: 1}}
	if b, err := gcsBatches(big); err != nil || len(b) != 2 || len(b[0]) != 1 || len(b[1]) != 2 {
		t.Errorf("two 10 TB parts: batches %v, err %v; want one job each (15 TB per job)", b, err)
	}
	if _, err := gcsBatches([]lake.File{{Path: "huge", Bytes: 16 << 40}}); err == nil || !strings.Contains(err.Error(), "15 TB") {
		t.Errorf("a 16 TB part: %v", err)
	}
	if jobID("p.s", "acme", snap, "t", 1, -1) == jobID("p.s", "acme", snap, "t", 1, -2) ||
		!strings.Contains(jobID("p.s", "acme", snap, "t", 1, -3), "_a1_b00002_") {
		t.Error("batch job ids are not distinct or readable")
	}
	// A streamed table with more parts than load jobs a table takes a day
	// is refused before any job starts.
	_, w := newFakeAPI(t)
	lk := lake.NewLake(memblob.OpenBucket(nil), "mem://", "")
	t.Cleanup(func() { lk.Close() })
	tb := &lake.Table{Name: "wide", Files: make([]lake.File, maxLoadJobsPerTable+1)}
	if err := w.checkQuotas(lk, tb); err == nil || !strings.Contains(err.Error(), "1500 load jobs per table per day") {
		t.Errorf("streamed table of %d parts: %v", len(tb.Files), err)
	}
	tb.Files = tb.Files[:maxLoadJobsPerTable]
	if err := w.checkQuotas(lk, tb); err != nil {
		t.Errorf("streamed table of %d parts: %v", len(tb.Files), err)
	}
}

func TestConfigFromURL(t *testing.T) {
	cfg, err := ConfigFromURL("bigquery://my-proj?location=EU&dataset_template=t_{tenant}&staging_dataset=stg&all_tenants_dataset=all&ledger_dataset=led&mode=ctas&profile_check=false&labels=team:data,env:dev&endpoint=http://127.0.0.1:9050&stream_format=json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Project != "my-proj" || cfg.Location != "EU" || cfg.DatasetTemplate != "t_{tenant}" || cfg.StagingDataset != "stg" ||
		cfg.AllTenantsDataset != "all" || cfg.LedgerDataset != "led" || cfg.Promotion != PromoteCTAS || cfg.StreamFormat != StreamJSON || !cfg.SkipProfiles || cfg.SkipSchema ||
		!reflect.DeepEqual(cfg.Labels, map[string]string{"team": "data", "env": "dev"}) || len(cfg.ClientOptions) != 2 {
		t.Errorf("config %+v", cfg)
	}
	for _, bad := range []string{"bigquery://", "postgres://x", "bigquery://p?nope=1", "bigquery://p?profile_check=maybe", "bigquery://u:pw@p"} {
		if _, err := ConfigFromURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Open(context.Background(), "bigquery://p?stream_format=csv"); err == nil {
		t.Error("stream_format=csv accepted")
	}
	// A URL that does not parse is named redacted, and net/url's error,
	// which quotes the URL, is not passed on.
	for _, bad := range []string{"bigquery://u:S3cretPW@p:notaport", "bigquery://u:S3cret%zzPW@p", "bigquery://u:S3cretPW@[::1", "bigquery://u:S3cretPW@p?nope=1"} {
		_, err := ConfigFromURL(bad)
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), "u:xxxxx@") {
			t.Errorf("ConfigFromURL(%q) = %v, want an error naming the URL redacted", bad, err)
		}
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&bigquery.Error{Reason: "backendError"}, true},
		{&bigquery.Error{Reason: "invalid"}, false},
		{&googleapi.Error{Code: 503}, true},
		{&googleapi.Error{Code: 400}, false},
		{context.Canceled, false},
		{lake.ErrNotFound, false},
		{errors.New("connection reset by peer"), true},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v", c.err, got)
		}
	}
}

// fakeAPI is a minimal BigQuery REST API that records what the client
// sends: job insertions, whose configuration the tests check field by
// field. It answers the job lookups from what was inserted, or 404.
type fakeAPI struct {
	mu        sync.Mutex
	jobs      map[string]json.RawMessage // job id → the job as inserted
	tables    map[string]bool            // tables created
	inserts   []map[string]any
	insertErr int                       // answer job insertions with this status (after recording the job)
	failJobs  map[string]string         // job id substring → the reason its status fails with
	schemas   map[string]any            // table id → schema, of the tables created
	meta      map[string]map[string]any // table id → more of its metadata (expirationTime, etag, type)
	patches   []patch                   // table patches received
}

// patch is one tables.patch request: the table, its If-Match header and body.
type patch struct {
	table, ifMatch string
	body           map[string]any
}

func newFakeAPI(t *testing.T) (*fakeAPI, *Writer) {
	f := &fakeAPI{jobs: map[string]json.RawMessage{}, tables: map[string]bool{}, failJobs: map[string]string{}, schemas: map[string]any{}, meta: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	w, err := New(context.Background(), Config{
		Project: "p", Location: "EU", Labels: map[string]string{"env": "test"},
		ClientOptions: []option.ClientOption{option.WithEndpoint(srv.URL), option.WithoutAuthentication()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return f, w
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/bigquery/v2")
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	fail := func(code int, reason string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": reason, "errors": []any{map[string]any{"reason": reason}}}})
	}
	switch {
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "jobs":
		var job map[string]any
		json.Unmarshal(body, &job)
		id := job["jobReference"].(map[string]any)["jobId"].(string)
		f.inserts = append(f.inserts, job)
		if _, dup := f.jobs[id]; dup {
			fail(http.StatusConflict, "duplicate")
			return
		}
		f.jobs[id] = body
		if f.insertErr != 0 {
			fail(f.insertErr, "jobInternalError")
			return
		}
		f.writeJob(w, id)
	case r.Method == http.MethodGet && len(parts) == 4 && parts[2] == "jobs":
		if _, ok := f.jobs[parts[3]]; !ok {
			fail(http.StatusNotFound, "notFound")
			return
		}
		f.writeJob(w, parts[3])
	case r.Method == http.MethodPost && len(parts) == 5 && parts[4] == "tables":
		key := parts[3] + "." + string(body)
		if f.tables[key] {
			fail(http.StatusConflict, "duplicate")
			return
		}
		f.tables[key] = true
		var tb map[string]any
		json.Unmarshal(body, &tb)
		tid := tb["tableReference"].(map[string]any)["tableId"].(string)
		f.schemas[tid] = tb["schema"]
		if tb["labels"] != nil {
			if f.meta[tid] == nil {
				f.meta[tid] = map[string]any{}
			}
			f.meta[tid]["labels"] = tb["labels"]
		}
		w.Write(body)
	case r.Method == http.MethodGet && len(parts) == 6 && parts[4] == "tables":
		schema, ok := f.schemas[parts[5]]
		if !ok {
			fail(http.StatusNotFound, "notFound")
			return
		}
		tb := map[string]any{"tableReference": map[string]any{"projectId": "p", "datasetId": parts[3], "tableId": parts[5]}, "schema": schema}
		for k, v := range f.meta[parts[5]] {
			tb[k] = v
		}
		json.NewEncoder(w).Encode(tb)
	case r.Method == http.MethodPatch && len(parts) == 6 && parts[4] == "tables":
		var b map[string]any
		json.Unmarshal(body, &b)
		f.patches = append(f.patches, patch{table: parts[5], ifMatch: r.Header.Get("If-Match"), body: b})
		m := f.meta[parts[5]]
		if etag, ok := m["etag"]; ok && r.Header.Get("If-Match") != etag {
			fail(http.StatusPreconditionFailed, "conditionNotMet")
			return
		}
		if v, ok := b["expirationTime"]; ok && v == nil {
			delete(m, "expirationTime")
			m["etag"] = "etag-after-patch"
		}
		json.NewEncoder(w).Encode(map[string]any{"tableReference": map[string]any{"projectId": "p", "datasetId": parts[3], "tableId": parts[5]}, "schema": f.schemas[parts[5]]})
	case r.Method == http.MethodGet && len(parts) == 4 && parts[2] == "queries":
		// The results of a statement or a query into a destination: none.
		json.NewEncoder(w).Encode(map[string]any{"jobComplete": true, "totalRows": "0",
			"jobReference": map[string]any{"projectId": "p", "jobId": parts[3], "location": "EU"},
			"schema":       map[string]any{"fields": []any{}}})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "queries":
		// The validation query of testManifest: COUNT(*) and three nulls.
		fields := []any{}
		cells := []any{}
		for i, v := range []string{"7", "0", "0", "0"} {
			fields = append(fields, map[string]any{"name": fmt.Sprintf("f%d", i), "type": "INTEGER"})
			cells = append(cells, map[string]any{"v": v})
		}
		json.NewEncoder(w).Encode(map[string]any{"jobComplete": true, "totalRows": "1",
			"jobReference": map[string]any{"projectId": "p", "jobId": "q", "location": "EU"},
			"schema":       map[string]any{"fields": fields}, "rows": []any{map[string]any{"f": cells}}})
	default:
		fail(http.StatusNotImplemented, r.Method+" "+path)
	}
}

func (f *fakeAPI) writeJob(w http.ResponseWriter, id string) {
	var job map[string]any
	json.Unmarshal(f.jobs[id], &job)
	job["status"] = map[string]any{"state": "DONE"}
	for sub, reason := range f.failJobs {
		if strings.Contains(id, sub) {
			job["status"] = map[string]any{"state": "DONE", "errorResult": map[string]any{"reason": reason, "message": "injected"}}
		}
	}
	job["statistics"] = map[string]any{"load": map[string]any{"outputRows": "7"}}
	json.NewEncoder(w).Encode(job)
}

// configOf returns the configuration of the only job inserted.
func (f *fakeAPI) configOf(t *testing.T, kind string) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.inserts) != 1 {
		t.Fatalf("%d job insertions, want 1", len(f.inserts))
	}
	cfg, ok := f.inserts[0]["configuration"].(map[string]any)[kind].(map[string]any)
	if !ok {
		t.Fatalf("job has no %s configuration: %v", kind, f.inserts[0])
	}
	return cfg
}

func wantJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	b, _ := json.Marshal(got)
	if string(b) != want {
		t.Errorf("%s = %s, want %s", what, b, want)
	}
}

// testManifest is a two-part table on a GCS lake (a memblob bucket that
// says it is gs://lake/pre/). The parts exist (the writer checks them before
// a load job) but are not Parquet: the fake API never reads them.
func testManifest(t *testing.T) (*lake.Lake, *lake.Manifest) {
	lk := lake.NewLake(memblob.OpenBucket(nil), "gs://lake/pre", "gs://lake/pre/")
	t.Cleanup(func() { lk.Close() })
	ctx := context.Background()
	start, _ := lake.ParseSnapshotID(snap)
	s, err := lk.WithClock(func() time.Time { return start }).NewSnapshot(ctx, "acme", snap)
	if err != nil {
		t.Fatal(err)
	}
	var files []lake.File
	for i, rows := range []int64{3, 4} {
		p, err := s.CreatePart(ctx, "orders", i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(p, "part %d", i); err != nil {
			t.Fatal(err)
		}
		p.SetRows(rows)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		files = append(files, p.File())
	}
	m := &lake.Manifest{FormatVersion: 1, Tenant: "acme", SnapshotID: snap, Tables: []lake.Table{{
		Name: "orders", Rows: 7,
		Columns: []lake.Column{
			{Name: "id", BigQueryType: "INT64"},
			{Name: "total", BigQueryType: "NUMERIC(12,2)", Nullable: true},
			{Name: "at", BigQueryType: "TIMESTAMP", Nullable: true},
		},
		Files: files,
	}}}
	return lk, m
}

func TestLoadJobConfigurationSent(t *testing.T) {
	f, w := newFakeAPI(t)
	lk, m := testManifest(t)
	tb := &m.Tables[0]
	schema, err := tableSchema(tb)
	if err != nil {
		t.Fatal(err)
	}
	st := w.client.Dataset("tenantlake_staging").Table(stagingTableName("acme", snap, "orders", 1))
	ids, rows, attached, err := w.loadAttempt(context.Background(), lk, m, tb, schema, st, 1)
	if err != nil || attached {
		t.Fatalf("attached %v, err %v", attached, err)
	}
	wantID := jobID("p.tenantlake_staging", "acme", snap, "orders", 1, -1)
	if !reflect.DeepEqual(ids, []string{wantID}) || rows != 7 {
		t.Errorf("jobs %v rows %d, want [%s] 7", ids, rows, wantID)
	}
	wantJSON(t, "jobReference", f.inserts[0]["jobReference"], `{"jobId":"`+wantID+`","location":"EU","projectId":"p"}`)
	load := f.configOf(t, "load")
	wantJSON(t, "sourceUris", load["sourceUris"], `["gs://lake/pre/tenant=acme/snapshot=20261121T020304.123Z/table=orders/part-00000.parquet","gs://lake/pre/tenant=acme/snapshot=20261121T020304.123Z/table=orders/part-00001.parquet"]`)
	wantJSON(t, "sourceFormat", load["sourceFormat"], `"PARQUET"`)
	wantJSON(t, "decimalTargetTypes", load["decimalTargetTypes"], `["NUMERIC","BIGNUMERIC"]`)
	wantJSON(t, "parquetOptions", load["parquetOptions"], `{"enableListInference":true}`)
	wantJSON(t, "writeDisposition", load["writeDisposition"], `"WRITE_TRUNCATE"`)
	wantJSON(t, "createDisposition", load["createDisposition"], `"CREATE_NEVER"`)
	wantJSON(t, "autodetect", load["autodetect"], `null`)
	wantJSON(t, "destinationTable", load["destinationTable"], `{"datasetId":"tenantlake_staging","projectId":"p","tableId":"acme__20261121t020304123z__a1__orders"}`)
	wantJSON(t, "schema", load["schema"], `{"fields":[{"mode":"REQUIRED","name":"id","type":"INTEGER"},{"name":"total","precision":"12","scale":"2","type":"NUMERIC"},{"name":"at","type":"TIMESTAMP"}]}`)
	wantJSON(t, "labels", f.inserts[0]["configuration"].(map[string]any)["labels"], `{"env":"test"}`)

	// A redelivery finds the job by its id and inserts nothing.
	if _, _, attached, err := w.loadAttempt(context.Background(), lk, m, tb, schema, st, 1); err != nil || !attached {
		t.Fatalf("redelivery: attached %v, err %v", attached, err)
	}
	if len(f.inserts) != 1 {
		t.Errorf("redelivery inserted %d jobs, want none", len(f.inserts)-1)
	}
}

// TestCopyJobConfigurationSent: the copy job that promotes a table, then
// the live table's expiration (carried from the staged table by the copy)
// read and cleared under the etag read, and read again.
func TestCopyJobConfigurationSent(t *testing.T) {
	f, w := newFakeAPI(t)
	src := w.client.Dataset("tenantlake_staging").Table("acme__x__a1__orders")
	dst := w.client.Dataset("tenant_acme").Table("orders")
	f.schemas["orders"] = map[string]any{"fields": []any{map[string]any{"name": "id", "type": "INTEGER"}}}
	f.meta["orders"] = map[string]any{"expirationTime": "1900000000000", "etag": "etag-1"}
	req := writers.Request{Tenant: "acme", SnapshotID: snap, Reason: writers.ReasonScheduled}
	live := bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}}
	id, err := w.promote(context.Background(), src, dst, live, req, "orders", "l1")
	if err != nil {
		t.Fatal(err)
	}
	if id != promoteJobID("p.tenant_acme", "acme", snap, "orders", "l1") {
		t.Errorf("promotion job id %s", id)
	}
	cp := f.configOf(t, "copy")
	wantJSON(t, "sourceTables", cp["sourceTables"], `[{"datasetId":"tenantlake_staging","projectId":"p","tableId":"acme__x__a1__orders"}]`)
	wantJSON(t, "destinationTable", cp["destinationTable"], `{"datasetId":"tenant_acme","projectId":"p","tableId":"orders"}`)
	wantJSON(t, "writeDisposition", cp["writeDisposition"], `"WRITE_TRUNCATE"`)
	wantJSON(t, "createDisposition", cp["createDisposition"], `"CREATE_IF_NEEDED"`)
	wantJSON(t, "jobId", f.inserts[0]["jobReference"].(map[string]any)["jobId"], `"`+id+`"`)
	if len(f.patches) != 1 || f.patches[0].table != "orders" || f.patches[0].ifMatch != "etag-1" {
		t.Fatalf("patches %+v; want one of table orders under etag-1", f.patches)
	}
	if v, ok := f.patches[0].body["expirationTime"]; !ok || v != nil {
		t.Errorf("patch body %v; want expirationTime null", f.patches[0].body)
	}
	if _, ok := f.meta["orders"]["expirationTime"]; ok {
		t.Error("the live table still expires")
	}

	// A table without an expiration is not patched.
	f.patches = nil
	if err := w.clearExpiration(context.Background(), dst); err != nil || len(f.patches) != 0 {
		t.Errorf("no expiration: err %v, patches %+v", err, f.patches)
	}
}

// A table with a JSON column is promoted by one statement that parses it
// (a copy job cannot), in copy mode too.
func TestJSONTablePromotedByStatement(t *testing.T) {
	f, w := newFakeAPI(t)
	src := w.client.Dataset("tenantlake_staging").Table("acme__x__a1__docs")
	dst := w.client.Dataset("tenant_acme").Table("docs")
	f.schemas["docs"] = map[string]any{"fields": []any{map[string]any{"name": "j", "type": "JSON"}}}
	req := writers.Request{Tenant: "acme", SnapshotID: snap, Reason: writers.ReasonScheduled}
	live := bigquery.Schema{{Name: "j", Type: bigquery.JSONFieldType}}
	if _, err := w.promote(context.Background(), src, dst, live, req, "docs", "l1"); err != nil {
		t.Fatal(err)
	}
	q := f.configOf(t, "query")
	if got, want := q["query"], "CREATE OR REPLACE TABLE `p.tenant_acme.docs` (`j` JSON) AS SELECT PARSE_JSON(`j`, wide_number_mode => 'exact') AS `j` FROM `p.tenantlake_staging.acme__x__a1__docs`"; got != want {
		t.Errorf("query %v, want %s", got, want)
	}
}

// TestSliceQueryConfigSent: a tenant's slice of a combined table is
// replaced by one query job into its partition decorator, WRITE_TRUNCATE,
// new columns allowed; a column the tenant lacks is a typed NULL.
func TestSliceQueryConfigSent(t *testing.T) {
	f, w := newFakeAPI(t)
	f.schemas["orders"] = map[string]any{"fields": []any{
		map[string]any{"name": "tenant_id", "type": "STRING", "mode": "REQUIRED"},
		map[string]any{"name": "tenant_num", "type": "INTEGER", "mode": "REQUIRED"},
		map[string]any{"name": "id", "type": "INTEGER"},
		map[string]any{"name": "gone", "type": "STRING"},
	}}
	live := bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "tenant_id", Type: bigquery.StringFieldType}}
	if err := w.replaceSlice(context.Background(), "acme", 7, snap, "l1", sliceTable{name: "orders", schema: live}); err != nil {
		t.Fatal(err)
	}
	q := f.configOf(t, "query")
	wantJSON(t, "destinationTable", q["destinationTable"], `{"datasetId":"all_tenants","projectId":"p","tableId":"orders$7"}`)
	wantJSON(t, "writeDisposition", q["writeDisposition"], `"WRITE_TRUNCATE"`)
	wantJSON(t, "createDisposition", q["createDisposition"], `"CREATE_NEVER"`)
	wantJSON(t, "schemaUpdateOptions", q["schemaUpdateOptions"], `["ALLOW_FIELD_ADDITION","ALLOW_FIELD_RELAXATION"]`)
	wantJSON(t, "query", q["query"], "\"SELECT 'acme' AS tenant_id, 7 AS tenant_num, `id` AS `id`, CAST(NULL AS STRING) AS `gone`, `tenant_id` AS `source_tenant_id` FROM `p.tenant_acme.orders`\"")

	// A column of another type than the combined table's is never cast:
	// the slice is refused, naming it.
	clash := bigquery.Schema{{Name: "id", Type: bigquery.StringFieldType}}
	err := w.replaceSlice(context.Background(), "acme", 7, snap, "l2", sliceTable{name: "orders", schema: clash})
	if err == nil || !strings.Contains(err.Error(), "column id is STRING in this tenant and INT64") {
		t.Errorf("type clash: %v", err)
	}
}

// A job id BigQuery already knows, inserted by a concurrent delivery: the
// insert answers 409 (the emulator: 400) and runJob attaches to the job.
func TestRunJobAttachesOnConflict(t *testing.T) {
	for _, code := range []int{http.StatusConflict, http.StatusBadRequest} {
		f, w := newFakeAPI(t)
		f.insertErr = code
		src := w.client.Dataset("s").Table("a")
		dst := w.client.Dataset("d").Table("b")
		attached, status, err := w.runJob(context.Background(), "job1", func(ctx context.Context) (*bigquery.Job, error) {
			c := dst.CopierFrom(src)
			c.JobID = "job1"
			return c.Run(ctx)
		})
		if err != nil || !attached || status == nil || status.State != bigquery.Done {
			t.Errorf("insert answered %d: attached %v, status %v, err %v", code, attached, status, err)
		}
	}
	// An insert that fails with no job behind it is an error.
	_, w := newFakeAPI(t)
	_, _, err := w.runJob(context.Background(), "job2", func(ctx context.Context) (*bigquery.Job, error) {
		return nil, &googleapi.Error{Code: 400, Message: "bad"}
	})
	if err == nil {
		t.Error("a failed insert with no job was not an error")
	}
}

// The live record of a tenant is its own table, created with its row by
// one CREATE TABLE ... AS SELECT and changed by an UPDATE conditioned on
// the load id read; TestLiveRecordCompareAndSwap runs these on the
// emulator.
func TestSwapSQL(t *testing.T) {
	client, err := bigquery.NewClient(context.Background(), "p", option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{cfg: Config{Project: "p", LedgerDataset: "led"}, client: client}
	next := liveRecord{Snapshot: snap, State: statePromoting, LoadID: "l2", TenantNum: 4}
	want := "UPDATE `p.led.live__acme` SET snapshot_id = '20261121T020304.123Z', state = 'promoting', load_id = 'l2', updated_at = CURRENT_TIMESTAMP() WHERE load_id = 'l1'"
	if got := w.swapSQL("acme", "l1", next); got != want {
		t.Errorf("update:\n%s\nwant\n%s", got, want)
	}
	want = "CREATE TABLE `p.led.live__acme` AS SELECT 'acme' AS tenant, '20261121T020304.123Z' AS snapshot_id, 'promoting' AS state, 'l2' AS load_id, 4 AS tenant_num, CURRENT_TIMESTAMP() AS updated_at"
	if got := w.swapSQL("acme", "", next); got != want {
		t.Errorf("create:\n%s\nwant\n%s", got, want)
	}
	if got := literal(`a'b\c`); got != `'a\'b\\c'` {
		t.Errorf("literal: %s", got)
	}
}

// TestAttemptBudgetPerDelivery: failed attempts of an earlier delivery are
// walked past without being charged, so a redelivery still has its own
// MaxAttempts.
func TestAttemptBudgetPerDelivery(t *testing.T) {
	f, w := newFakeAPI(t)
	w.cfg.MaxAttempts = 2
	lk, m := testManifest(t)
	f.failJobs["_a1_"] = "backendError"
	f.failJobs["_a2_"] = "backendError"
	_, res, err := w.stageTable(context.Background(), lk, m, &m.Tables[0])
	if err == nil || len(res.Jobs) != 2 || !strings.Contains(err.Error(), "the 2 of this delivery") {
		t.Fatalf("first delivery: jobs %v, error %v; want two charged attempts, then an error", res.Jobs, err)
	}
	inserted := len(f.inserts)
	st, res, err := w.stageTable(context.Background(), lk, m, &m.Tables[0])
	if err != nil {
		t.Fatalf("redelivery: %v (jobs %v)", err, res.Jobs)
	}
	a3 := jobID("p.tenantlake_staging", "acme", snap, "orders", 3, -1)
	if st.TableID != stagingTableName("acme", snap, "orders", 3) || res.Jobs[len(res.Jobs)-1] != a3 || len(f.inserts) != inserted+1 {
		t.Errorf("redelivery staged in %s with jobs %v and %d new insertions; want attempt 3, one insertion", st.TableID, res.Jobs, len(f.inserts)-inserted)
	}
}

// A job that fails for a transient reason is retried under the next attempt
// id, into a fresh staging table; one that fails for any other reason is
// not retried.
func TestFailedJobRetriedUnderNextAttempt(t *testing.T) {
	f, w := newFakeAPI(t)
	lk, m := testManifest(t)
	f.failJobs["_a1_"] = "backendError"
	st, res, err := w.stageTable(context.Background(), lk, m, &m.Tables[0])
	if err != nil {
		t.Fatal(err)
	}
	a1 := jobID("p.tenantlake_staging", "acme", snap, "orders", 1, -1)
	a2 := jobID("p.tenantlake_staging", "acme", snap, "orders", 2, -1)
	if !reflect.DeepEqual(res.Jobs, []string{a1, a2}) || st.TableID != stagingTableName("acme", snap, "orders", 2) {
		t.Errorf("jobs %v, staged in %s; want %v and attempt 2's table", res.Jobs, st.TableID, []string{a1, a2})
	}
	if writers.FailedChecks([]writers.TableResult{res}) != "" || res.TargetRows != 7 {
		t.Errorf("checks after the retry: %+v", res)
	}

	f, w = newFakeAPI(t)
	f.failJobs["_a1_"] = "invalid"
	if _, res, err := w.stageTable(context.Background(), lk, m, &m.Tables[0]); err == nil || len(res.Jobs) != 1 {
		t.Errorf("an invalid job was retried or not reported: jobs %v, error %v", res.Jobs, err)
	}
}

// TestOptionsRefused: every option is checked when the writer is opened,
// before anything is written, and the error names it (issue 8, item 9).
func TestOptionsRefused(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"bigquery://p?name=../../x", "option name=../../x"},
		{"bigquery://p?name=a%20b", "option name=a b"},
		{"bigquery://p?name=a&name=b", "option name given 2 times"},
		{"bigquery://p?dataset_template=tenant", "option dataset_template: template \"tenant\" lacks {tenant}"},
		{"bigquery://p?dataset_template=t-{tenant}", "option dataset_template=t-{tenant}"},
		{"bigquery://p?staging_dataset=stg.x", "option staging_dataset=stg.x"},
		{"bigquery://p?all_tenants_dataset=tenantlake_ledger", "options all_tenants_dataset=tenantlake_ledger and ledger_dataset=tenantlake_ledger"},
		{"bigquery://p?dataset_template=t_{tenant}&staging_dataset=t_staging", "options dataset_template=t_{tenant} and staging_dataset=t_staging"},
		{"bigquery://p?dataset_template={tenant}", "options dataset_template={tenant} and staging_dataset=tenantlake_staging"},
		{"bigquery://p?labels=Team:data", "option labels: key \"Team\""},
		{"bigquery://p?labels=team:Data", "option labels: value \"Data\""},
		{"bigquery://p?mode=fast", "option mode=fast"},
		{"bigquery://p?stream_format=csv", "option stream_format=csv"},
		{"bigquery://p?profile_check=maybe", "profile_check"},
		{"bigquery://p?endpoint=localhost:9050", "option endpoint=localhost:9050"},
	} {
		w, err := Open(context.Background(), c.url)
		if err == nil {
			t.Errorf("Open(%s): no error", c.url)
			if cerr := w.Close(); cerr != nil {
				t.Error(cerr)
			}
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s): %v; want an error containing %q", c.url, err, c.want)
		}
	}
}

// TestChangeAppendConfigurationSent: staged change rows are appended by a
// copy job, WRITE_APPEND into the change table created before (labelled
// tenantlake_changes=true), under an id derived from the load whose
// promotion they belong to: a load completing that promotion attaches to
// the job instead of appending again. A table of that name without the
// label is never appended to.
func TestChangeAppendConfigurationSent(t *testing.T) {
	f, w := newFakeAPI(t)
	ds := w.client.Dataset("tenant_acme")
	c := &changeLoad{summary: &writers.ChangeSummary{LoadID: "l1"}, staged: []stagedChanges{{
		name: "orders_changes", table: w.client.Dataset("tenantlake_staging").Table("acme__l1__orders_changes"),
	}}}
	ids, err := w.appendChanges(context.Background(), ds, "acme", c)
	if err != nil || len(ids) != 1 {
		t.Fatalf("append: ids %v, err %v", ids, err)
	}
	cp := f.configOf(t, "copy")
	wantJSON(t, "sourceTables", cp["sourceTables"], `[{"datasetId":"tenantlake_staging","projectId":"p","tableId":"acme__l1__orders_changes"}]`)
	wantJSON(t, "destinationTable", cp["destinationTable"], `{"datasetId":"tenant_acme","projectId":"p","tableId":"orders_changes"}`)
	wantJSON(t, "writeDisposition", cp["writeDisposition"], `"WRITE_APPEND"`)
	wantJSON(t, "createDisposition", cp["createDisposition"], `"CREATE_NEVER"`)
	wantJSON(t, "labels", f.meta["orders_changes"]["labels"], `{"env":"test","tenantlake_changes":"true","tenantlake_tenant":"acme"}`)
	c.staged[0].source = "orders"
	results := []writers.TableResult{{Table: "orders", Jobs: []string{"promote"}}, {Table: "items"}}
	c.noteJobs(results)
	if !reflect.DeepEqual(results[0].Jobs, []string{"promote", ids[0]}) || results[1].Jobs != nil {
		t.Errorf("jobs in the outcome: %+v; want the append job on orders", results)
	}

	// A later load completing the same promotion (its own staged table,
	// the same origin): the append job is found by its id, not run again.
	c.staged[0].table = w.client.Dataset("tenantlake_staging").Table("acme__l2__orders_changes")
	again, err := w.appendChanges(context.Background(), ds, "acme", c)
	if err != nil || !reflect.DeepEqual(again, ids) {
		t.Fatalf("second append: ids %v (want %v), err %v", again, ids, err)
	}
	if n := len(f.inserts); n != 1 {
		t.Errorf("%d jobs inserted, want 1", n)
	}

	// A user's table named like a change table.
	f.schemas["items_changes"] = map[string]any{"fields": []any{map[string]any{"name": "x", "type": "STRING"}}}
	f.tables["tenant_acme.mine"] = true
	c = &changeLoad{summary: &writers.ChangeSummary{LoadID: "l3"}, staged: []stagedChanges{{
		name: "items_changes", table: w.client.Dataset("tenantlake_staging").Table("acme__l3__items_changes"),
	}}}
	if err := w.checkChangeTable(context.Background(), ds.Table("items_changes")); err == nil || !strings.Contains(err.Error(), "is not tenantlake's change table") {
		t.Errorf("user's items_changes: %v; want it refused", err)
	}
	if err := w.checkChangeTable(context.Background(), ds.Table("missing_changes")); !errors.Is(err, errNoTable) {
		t.Errorf("missing change table: %v; want errNoTable", err)
	}

	// A snapshot table with the name of the change table made above is
	// refused before anything is loaded; one named like a table that is
	// not a change table, or like none, is not.
	m := &lake.Manifest{Tenant: "acme", SnapshotID: snap, Tables: []lake.Table{{Name: "orders_changes"}, {Name: "items_changes"}, {Name: "new_changes"}}}
	if err := w.checkNotChangeTables(context.Background(), ds, m, []*lake.Table{&m.Tables[0]}); !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "tenant_acme.orders_changes") {
		t.Errorf("snapshot table orders_changes over the change table: %v; want ErrInvalid naming it", err)
	}
	if err := w.checkNotChangeTables(context.Background(), ds, m, []*lake.Table{&m.Tables[1], &m.Tables[2]}); err != nil {
		t.Errorf("snapshot tables items_changes and new_changes: %v", err)
	}
}

// TestChangeAppendSQL: with mode=ctas the append is one INSERT ... SELECT
// of the change columns.
func TestChangeAppendSQL(t *testing.T) {
	src := &bigquery.Table{ProjectID: "p", DatasetID: "tenantlake_staging", TableID: "acme__l1__orders_changes"}
	dst := &bigquery.Table{ProjectID: "p", DatasetID: "tenant_acme", TableID: "orders_changes"}
	cols := "`load_id`, `previous_snapshot_id`, `snapshot_id`, `snapshot_time`, `operation`, `key`, `row_before`, `row_after`"
	want := "INSERT INTO `p.tenant_acme.orders_changes` (" + cols + ") SELECT " + cols + " FROM `p.tenantlake_staging.acme__l1__orders_changes`"
	if got := appendSQL(src, dst); got != want {
		t.Errorf("appendSQL:\n%s\nwant\n%s", got, want)
	}
}
