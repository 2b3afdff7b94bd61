package ops

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake/laketest"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is an Ops over a file lake with a real PostgreSQL reader,
// publishing to an in-process Pub/Sub whose pull subscription "test-loads"
// shows what reached the loads topic.
type fixture struct {
	t   *testing.T
	o   *Ops
	pub *events.PubSub
}

func newFixture(t *testing.T, targets ...config.Target) *fixture {
	t.Helper()
	ctx := context.Background()
	srv := pstest.NewServer()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	pub, err := events.Dial(ctx, "test-project", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg, err := config.FromEnv(func(name string) (string, bool) { return "mem://", name == config.EnvLake }, config.Need{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Ensure(ctx, cfg.Topics, []events.Subscription{{Name: "test-loads", Topic: cfg.Topics.Loads, AckDeadline: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	o := &Ops{Lake: laketest.File(t).Lake, Reader: postgres.New(postgres.Options{}), Targets: targets, Events: pub, Topics: cfg.Topics}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{t: t, o: o, pub: pub}
}

// loads returns the outcomes that reached the loads topic since the last call.
func (f *fixture) loads() []events.LoadFinished {
	f.t.Helper()
	msgs, err := f.pub.Drain(context.Background(), "test-loads")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []events.LoadFinished
	for _, m := range msgs {
		var lf events.LoadFinished
		if err := events.Decode(m, &lf); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, lf)
	}
	return out
}

// snapshot reads a small real tenant database into the lake and returns the
// snapshot.committed event Read would publish.
func (f *fixture) snapshot(id string) events.SnapshotCommitted {
	f.t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(f.t)
	conn := pgtest.Connect(f.t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 50) g`); err != nil {
		f.t.Fatal(err)
	}
	m, err := f.o.ReadTenant(ctx, tenant.Tenant{ID: id, Connection: dsn, Active: true}, "manual-1")
	if err != nil {
		f.t.Fatal(err)
	}
	return events.SnapshotCommitted{Tenant: id, SnapshotID: m.SnapshotID, ManifestURL: f.o.Lake.ManifestURL(id, m.SnapshotID),
		Reason: writers.ReasonManual, RequestID: "manual-1"}
}

// TestLoadWhileTheTargetIsDown: a warehouse that cannot be reached fails
// the load with an error worth retrying, and the failure is published on
// the loads topic (the write strategy had no outcome to give); once the
// warehouse is there, the redelivered event loads, in the same process:
// the failed open was not kept.
func TestLoadWhileTheTargetIsDown(t *testing.T) {
	ctx := context.Background()
	admin := pgtest.AdminURL(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	db := "ops_later_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	u.Path = "/" + db
	f := newFixture(t, config.Target{Name: "warehouse", URL: u.String() + "&name=warehouse"})
	ev := f.snapshot("acme")

	out, err := f.o.Load(ctx, "warehouse", ev)
	if err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("load into a missing database: %v, want an error worth retrying", err)
	}
	got := f.loads()
	if len(got) != 1 || got[0].Outcome.Outcome != writers.OutcomeFailed || got[0].Target != "warehouse" ||
		got[0].SnapshotID != ev.SnapshotID || got[0].RequestID != ev.RequestID || !strings.Contains(got[0].Message, db) {
		t.Fatalf("loads topic after the failure: %+v (returned %+v)", got, out)
	}

	adm := pgtest.Connect(t, admin)
	if _, err := adm.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.o.Close(); err != nil {
			t.Error(err)
		}
		if _, err := adm.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	out, err = f.o.Load(ctx, "warehouse", ev)
	if err != nil || out == nil || out.Outcome != writers.OutcomeLoaded || out.Live != ev.SnapshotID {
		t.Fatalf("load once the warehouse is there: %+v, %v", out, err)
	}
	if got := f.loads(); len(got) != 1 || got[0].Outcome.Outcome != writers.OutcomeLoaded {
		t.Fatalf("loads topic after the load: %+v", got)
	}
}

// TestLoadRefusesWhatCannotSucceed: an event naming a snapshot that is not
// committed (older or newer than the live one) and, for the PostgreSQL
// warehouse, a table subset are refused (ErrRejected: no retry), with the
// failure on the loads topic, and nothing is recorded in the lake's ledger.
func TestLoadRefusesWhatCannotSucceed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, config.Target{Name: "warehouse", URL: pgtest.NewDatabase(t) + "&name=warehouse"})
	ev := f.snapshot("acme")
	if out, err := f.o.Load(ctx, "warehouse", ev); err != nil || out.Outcome != writers.OutcomeLoaded {
		t.Fatalf("first load: %+v, %v", out, err)
	}
	f.loads()
	for name, bad := range map[string]events.SnapshotCommitted{
		"older, not committed": {Tenant: "acme", SnapshotID: "20200101T000000.000Z", Reason: writers.ReasonScheduled, RequestID: "forged-1"},
		"newer, not committed": {Tenant: "acme", SnapshotID: "20990101T000000.000Z", Reason: writers.ReasonManual, RequestID: "forged-2"},
		"a table subset":       {Tenant: "acme", SnapshotID: ev.SnapshotID, Reason: writers.ReasonReplay, RequestID: "forged-3", Tables: []string{"customers"}},
	} {
		_, err := f.o.Load(ctx, "warehouse", bad)
		if !errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", name, err)
		}
		got := f.loads()
		if len(got) != 1 || got[0].Outcome.Outcome != writers.OutcomeFailed || got[0].SnapshotID != bad.SnapshotID {
			t.Errorf("%s: loads topic %+v, want one failure", name, got)
		}
		recs, err := f.o.Lake.LedgerOf(ctx, "acme", "warehouse", bad.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		if bad.Tables == nil && len(recs) != 0 {
			t.Errorf("%s: %d ledger records of a snapshot that does not exist", name, len(recs))
		}
	}
}
