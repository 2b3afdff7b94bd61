// Package metrics records tenantlake's OpenTelemetry metrics: rows, bytes,
// durations and outcomes of reads and loads, per tenant, table and target.
// On GCP they are exported to Cloud Monitoring (GoogleCloud); `tenantlake
// run` and `serve` expose them at /metrics in Prometheus's text format
// (Prometheus). A nil *Recorder records nothing.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// Recorder records the metrics.
type Recorder struct {
	rows, bytes, outcomes metric.Int64Counter
	duration              metric.Float64Histogram
}

// New makes a Recorder on mp.
func New(mp metric.MeterProvider) (*Recorder, error) {
	m := mp.Meter("github.com/tenantlake/tenantlake")
	r := &Recorder{}
	var err error
	if r.rows, err = m.Int64Counter("tenantlake.rows", metric.WithDescription("rows read into the lake (op=read) or loaded into a target (op=load)"), metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if r.bytes, err = m.Int64Counter("tenantlake.bytes", metric.WithDescription("bytes of Parquet written to the lake"), metric.WithUnit("By")); err != nil {
		return nil, err
	}
	if r.outcomes, err = m.Int64Counter("tenantlake.outcomes", metric.WithDescription("reads and loads by outcome")); err != nil {
		return nil, err
	}
	if r.duration, err = m.Float64Histogram("tenantlake.duration", metric.WithDescription("duration of one tenant's read or load"), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	return r, nil
}

// Prometheus returns a Recorder whose metrics the handler serves in
// Prometheus's text format, from a registry of its own.
func Prometheus() (*Recorder, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	r, err := New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)))
	if err != nil {
		return nil, nil, err
	}
	return r, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// GoogleCloud returns a Recorder exporting to Cloud Monitoring in project
// every minute; call shutdown before the process exits.
func GoogleCloud(ctx context.Context, project string) (_ *Recorder, shutdown func(context.Context) error, _ error) {
	exp, err := mexporter.New(mexporter.WithProjectID(project))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: cloud monitoring exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Minute))))
	r, err := New(mp)
	if err != nil {
		return nil, nil, err
	}
	return r, mp.Shutdown, nil
}

// Read records one tenant's read: m is nil when it failed.
func (r *Recorder) Read(ctx context.Context, tenant string, m *lake.Manifest, took time.Duration, err error) {
	if r == nil {
		return
	}
	outcome := "committed"
	if err != nil {
		outcome = "failed"
	}
	op := attribute.String("op", "read")
	ten := attribute.String("tenant", tenant)
	r.outcomes.Add(ctx, 1, metric.WithAttributes(op, ten, attribute.String("outcome", outcome)))
	r.duration.Record(ctx, took.Seconds(), metric.WithAttributes(op, ten, attribute.String("outcome", outcome)))
	if m == nil {
		return
	}
	for _, t := range m.Tables {
		var b int64
		for _, f := range t.Files {
			b += f.Bytes
		}
		attrs := metric.WithAttributes(op, ten, attribute.String("table", t.Name))
		r.rows.Add(ctx, t.Rows, attrs)
		r.bytes.Add(ctx, b, attrs)
	}
}

// Load records one load's outcome (out may be nil when it failed early).
func (r *Recorder) Load(ctx context.Context, tenant, target string, out *writers.Outcome, took time.Duration) {
	if r == nil {
		return
	}
	outcome := writers.OutcomeFailed
	if out != nil {
		outcome = out.Outcome
	}
	op := attribute.String("op", "load")
	ten, tg := attribute.String("tenant", tenant), attribute.String("target", target)
	r.outcomes.Add(ctx, 1, metric.WithAttributes(op, ten, tg, attribute.String("outcome", outcome)))
	r.duration.Record(ctx, took.Seconds(), metric.WithAttributes(op, ten, tg, attribute.String("outcome", outcome)))
	if out == nil || out.Outcome != writers.OutcomeLoaded {
		return
	}
	for _, t := range out.Tables {
		r.rows.Add(ctx, t.TargetRows, metric.WithAttributes(op, ten, tg, attribute.String("table", t.Table)))
	}
}
