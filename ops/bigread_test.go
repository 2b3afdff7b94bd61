package ops_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// fakeJobs is a Cloud Run Admin API Jobs service that records the RunJob
// requests it gets over gRPC (the real Admin API is never called here).
type fakeJobs struct {
	runpb.UnimplementedJobsServer
	mu   sync.Mutex
	reqs []*runpb.RunJobRequest
}

const execName = "projects/p1/locations/europe-west1/jobs/tenantlake-big-read/executions/tenantlake-big-read-x7k2p"

func (f *fakeJobs) RunJob(ctx context.Context, req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	md, err := anypb.New(&runpb.Execution{Name: execName})
	if err != nil {
		return nil, err
	}
	return &longrunningpb.Operation{Name: "projects/p1/locations/europe-west1/operations/op-1", Metadata: md}, nil
}

func (f *fakeJobs) requests() []*runpb.RunJobRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*runpb.RunJobRequest(nil), f.reqs...)
}

// jobsClient serves fake over gRPC on a loopback port and returns the real
// Cloud Run client library's JobsClient pointed at it.
func jobsClient(t *testing.T, fake *fakeJobs) *run.JobsClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runpb.RegisterJobsServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	c, err := run.NewJobsClient(ctx, option.WithEndpoint(lis.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// TestBigTenantStartsJob: a read request for a tenant over the threshold
// starts the big-read job with the tenant and request id as overrides
// (checked at the request level), reads nothing itself, and a redelivery
// starts nothing more; under the threshold the tenant is read in process.
func TestBigTenantStartsJob(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE big (id int PRIMARY KEY, pad text);
INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 2000) i;
CREATE TABLE other (id int PRIMARY KEY, pad text);
INSERT INTO other SELECT i, repeat('x', 100) FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	var bigBytes, otherBytes int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('big'), pg_total_relation_size('other')`).Scan(&bigBytes, &otherBytes); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	regPath := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(regPath, []byte("tenants:\n  - tenant_id: acme\n    connection: "+dsn+"\n    exclude: [\"public.other\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := tenant.OpenRegistry(ctx, regPath)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := lake.Open(ctx, "file://"+filepath.Join(dir, "lake"))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	rd := postgres.New(postgres.Options{LogInterval: -1})
	tn, err := reg.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	est, err := rd.EstimateBytes(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if est != bigBytes { // the excluded table is not counted
		t.Fatalf("estimate %d bytes, want %d (table big only; other has %d)", est, bigBytes, otherBytes)
	}

	fake := &fakeJobs{}
	const job = "projects/p1/locations/europe-west1/jobs/tenantlake-big-read"
	o := &ops.Ops{Lake: lk, Registry: reg, Reader: rd, BigTenantBytes: est - 1,
		BigReads: &ops.CloudRunJob{Name: job, Client: jobsClient(t, fake)}}
	req := events.ReadRequested{Version: 1, Tenant: "acme", RequestID: "scheduled-20261201T020000Z", Reason: writers.ReasonScheduled, RequestedAt: time.Now().UTC()}
	for range 2 { // a redelivery starts nothing more
		ev, err := o.Read(ctx, req)
		if err != nil || ev != nil {
			t.Fatalf("Read = %v, %v; want no event and no error (the job publishes it)", ev, err)
		}
	}
	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d RunJob requests, want 1", len(reqs))
	}
	want := &runpb.RunJobRequest{Name: job, Overrides: &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: []*runpb.EnvVar{
			{Name: config.EnvJobTenant, Values: &runpb.EnvVar_Value{Value: "acme"}},
			{Name: config.EnvJobRequestID, Values: &runpb.EnvVar_Value{Value: req.RequestID}},
		}}},
	}}
	if !proto.Equal(reqs[0], want) {
		t.Errorf("RunJob request\n%v\nwant\n%v", reqs[0], want)
	}
	snaps, err := lk.Snapshots(ctx, "acme")
	if err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots %v, %v: the function must not read a big tenant", snaps, err)
	}
	var rec struct {
		Request   events.ReadRequested `json:"request"`
		Execution string               `json:"execution"`
	}
	if err := lk.GetRecord(ctx, "acme", "jobs", "read."+req.RequestID+".started", &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Execution != execName || rec.Request.RequestID != req.RequestID || rec.Request.Reason != req.Reason {
		t.Errorf("job record %+v", rec)
	}

	// Under the threshold: read here.
	o.BigTenantBytes = est
	req2 := req
	req2.RequestID = "manual-1"
	ev, err := o.Read(ctx, req2)
	if err != nil || ev == nil {
		t.Fatalf("Read under the threshold = %v, %v", ev, err)
	}
	if len(fake.requests()) != 1 {
		t.Errorf("a tenant under the threshold started the job")
	}
}
