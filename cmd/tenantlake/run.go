package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/functions"
	"github.com/tenantlake/tenantlake/functions/local"
	"github.com/tenantlake/tenantlake/internal/logging"
	"github.com/tenantlake/tenantlake/internal/metrics"
	"github.com/tenantlake/tenantlake/ops"
)

var runFlags struct {
	targets    []string
	listen     string
	once       bool
	schedule   string
	attempts   int
	backoff    time.Duration
	deliveries int
	timeout    time.Duration
}

var runCmd = &cobra.Command{
	Use:   "run [--once | --schedule CRON] --target URL [--target URL ...]",
	Short: "Run the whole event-driven pipeline in one process: scheduler, Pub/Sub, every function",
	Long: `run starts, in one process, what runs on Google Cloud as separate services:

  - every function (Schedule, Read, Load per target, Replay, Snapshots) behind
    the functions-framework HTTP server on --listen;
  - an in-process Pub/Sub with the topics read-requests, snapshots and loads,
    their dead-letter topics, and the same subscriptions as on GCP (ordering by
    tenant, a dead-letter policy of --attempts deliveries, one snapshots
    subscription per target filtered on the target attribute);
  - a dispatcher that delivers each subscription's messages to its function over
    HTTP as a Pub/Sub push subscription does (acknowledged on 2xx, redelivered
    after --backoff otherwise, dead-lettered after --attempts);
  - the scheduler: with --once, one full cycle (Schedule → Read → Load → loads)
    for the next whole second (waited for, so that two runs never share a
    schedule time and its request ids), then a summary and exit; otherwise
    Schedule at every --schedule time until interrupted.

While it runs, replays can be requested over HTTP:
  curl -X POST http://LISTEN/Replay -H 'Content-Type: application/json' -d '{"tenant":"acme","at":"2026-11-20"}'
(a body sent as a form or as text/plain is refused: browsers send those across sites)
and a tenant's history read with GET http://LISTEN/Snapshots?tenant=acme;
GET http://LISTEN/metrics gives the OpenTelemetry metrics (rows, bytes,
durations, outcomes per tenant, table and target) in Prometheus's format.

Settings come from the environment variables of the functions (see README,
Configuration): TENANTLAKE_LAKE, TENANTLAKE_REGISTRY, TENANTLAKE_TARGETS and
the others; --lake, --registry and --target override them.

With --once the exit status is non-zero when any tenant's read or load failed
or any message was dead-lettered.`,
	Example: `  tenantlake run --once --registry tenants.yaml --lake file:///var/lib/tenantlake --target postgres://localhost/warehouse
  tenantlake run --schedule "0 2 * * *" --listen 127.0.0.1:8080
  tenantlake run --once --json`,
	Args: cobra.NoArgs,
	RunE: runRun,
}

var serveFlags struct {
	listen    string
	publicURL string
	ensure    bool
	attempts  int
}

var serveCmd = &cobra.Command{
	Use:   "serve [--listen HOST:PORT] [--ensure --public-url URL]",
	Short: "Serve every function over HTTP against real Pub/Sub or the Pub/Sub emulator",
	Long: `serve starts every function (Schedule, Read, Load per target, Replay,
Snapshots) behind the functions-framework HTTP server, publishing to the Pub/Sub
of TENANTLAKE_PROJECT: Google Cloud, or the emulator named by PUBSUB_EMULATOR_HOST.
Pub/Sub pushes to it: push endpoints are
  URL/Read/projects/PROJECT/topics/read-requests
  URL/Load/TARGET/projects/PROJECT/topics/snapshots
With --ensure, serve creates the topics and subscriptions (push subscriptions to
--public-url) that do not exist yet, as Terraform does on GCP. Logs are JSON on
stdout, with Cloud Logging's field names.`,
	Args: cobra.NoArgs,
	RunE: runServe,
}

func init() {
	f := runCmd.Flags()
	f.StringArrayVar(&runFlags.targets, "target", nil, "target URL (repeatable; env TENANTLAKE_TARGETS)")
	f.StringVar(&runFlags.listen, "listen", "127.0.0.1:8080", "address of the functions' HTTP server (port 0: any free port)")
	f.BoolVar(&runFlags.once, "once", false, "run one full cycle, print a summary and exit")
	f.StringVar(&runFlags.schedule, "schedule", "0 2 * * *", "cron expression (UTC) of the scheduled reads, without --once")
	f.IntVar(&runFlags.attempts, "attempts", 5, "deliveries of a message before it is dead-lettered (5 to 100, as on Pub/Sub)")
	f.DurationVar(&runFlags.backoff, "backoff", time.Second, "wait before a failed delivery is retried")
	f.DurationVar(&runFlags.timeout, "cycle-timeout", time.Hour, "with --once, give up on a cycle that takes longer")
	f.IntVar(&runFlags.deliveries, "deliveries", 1, "deliver every message this many times at once (tests at-least-once delivery)")
	must(f.MarkHidden("deliveries"))
	root.AddCommand(runCmd)

	sf := serveCmd.Flags()
	sf.StringVar(&serveFlags.listen, "listen", "127.0.0.1:8080", "address of the HTTP server")
	sf.StringVar(&serveFlags.publicURL, "public-url", "", "URL at which Pub/Sub reaches this server (push endpoints), with --ensure")
	sf.BoolVar(&serveFlags.ensure, "ensure", false, "create missing topics and subscriptions (for the emulator)")
	sf.IntVar(&serveFlags.attempts, "attempts", 5, "with --ensure: deliveries of a message before it is dead-lettered")
	root.AddCommand(serveCmd)
}

// localProject is the project of the in-process Pub/Sub.
const localProject = "tenantlake-local"

// envConfig reads the functions' configuration, with the global --lake and
// --registry flags (and targets, when given) taking precedence.
func envConfig(cmd *cobra.Command, targets []string, need config.Need) (config.Config, error) {
	lookup := func(name string) (string, bool) {
		switch {
		case name == config.EnvLake && cmd.Flags().Changed("lake"):
			return g.lake, true
		case name == config.EnvRegistry && cmd.Flags().Changed("registry"):
			return g.registry, true
		case name == config.EnvTargets && len(targets) > 0:
			return strings.Join(targets, " "), true
		case name == config.EnvLake:
			return g.lake, true // the flag's default: TENANTLAKE_LAKE or file:///var/lib/tenantlake
		}
		return os.LookupEnv(name)
	}
	return config.FromEnv(lookup, need)
}

// serviceLogger logs JSON with Cloud Logging's fields, or text on a terminal.
func serviceLogger(w *os.File) *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	if term.IsTerminal(int(w.Fd())) {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return logging.NewJSON(w, level, map[string]string{"service": "tenantlake"})
}

// startServer serves the mounted functions on listen and returns its base URL.
func startServer(ctx context.Context, listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("--listen %q: %w", listen, err)
		}
		port = fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
		if err := l.Close(); err != nil {
			return "", err
		}
	}
	// The framework prints a "Serving function" line per function on
	// stdout, which is for results: silence stdout until it listens.
	stdout := os.Stdout
	if devnull, err := os.Open(os.DevNull); err == nil {
		os.Stdout = devnull
		defer func() { os.Stdout = stdout; _ = devnull.Close() }()
	}
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(host, port) }()
	base := "http://" + net.JoinHostPort(host, port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-errc:
			return "", fmt.Errorf("functions server on %s: %w", listen, err)
		case <-ctx.Done():
			return "", ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 100*time.Millisecond); err == nil {
			_ = c.Close()
			return base, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("functions server on %s did not start", listen)
}

func runRun(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	if runFlags.attempts < 5 || runFlags.attempts > 100 {
		return fmt.Errorf("run: --attempts %d: Pub/Sub allows 5 to 100", runFlags.attempts)
	}
	if runFlags.backoff <= 0 {
		return fmt.Errorf("run: --backoff %s: want a positive duration", runFlags.backoff)
	}
	if runFlags.timeout <= 0 {
		return fmt.Errorf("run: --cycle-timeout %s: want a positive duration", runFlags.timeout)
	}
	if runFlags.deliveries < 1 {
		return fmt.Errorf("run: --deliveries must be at least 1")
	}
	var sched cron.Schedule
	if !runFlags.once {
		s, err := cron.ParseStandard(runFlags.schedule)
		if err != nil {
			return fmt.Errorf("run: --schedule %q: %w", runFlags.schedule, err)
		}
		sched = s
	}
	cfg, err := envConfig(cmd, runFlags.targets, config.Need{Registry: true, Targets: true})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	cfg.Project = localProject
	log := serviceLogger(os.Stderr)

	srv := pstest.NewServer()
	defer srv.Close()
	pub, err := events.Dial(ctx, localProject, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := pub.Ensure(ctx, cfg.Topics, events.Layout(cfg, localProject, "", runFlags.attempts)); err != nil {
		return err
	}
	h, err := functions.New(ctx, cfg, pub, version, log)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer h.Ops.Close()
	if h.Ops.Metrics, h.MetricsHandler, err = metrics.Prometheus(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := functions.Mount(ctx, h, cfg.TargetNames()); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	base, err := startServer(ctx, runFlags.listen)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log.Info("functions serving", "url", base, "targets", strings.Join(cfg.TargetNames(), ","))

	d := &local.Dispatcher{Client: pub.Client(), Backoff: runFlags.backoff, Deliveries: runFlags.deliveries, Log: log}
	d.Routes = append(d.Routes, local.Route{
		Subscription: config.ReadSubscription(cfg.Topics),
		Endpoint:     fmt.Sprintf("%s/%s/%s", base, config.FunctionRead, events.TopicPath(localProject, cfg.Topics.ReadRequests)),
	})
	for _, t := range cfg.TargetNames() {
		d.Routes = append(d.Routes, local.Route{
			Subscription: config.LoadSubscription(cfg.Topics, t),
			Endpoint:     fmt.Sprintf("%s/%s/%s/%s", base, config.FunctionLoad, t, events.TopicPath(localProject, cfg.Topics.Snapshots)),
		})
	}
	dctx, stopDispatch := context.WithCancel(ctx)
	defer stopDispatch()
	derr := make(chan error, 1)
	go func() { derr <- d.Run(dctx) }()

	cycle := func(at time.Time) (*cycleSummary, error) {
		cctx, cancel := context.WithTimeout(ctx, runFlags.timeout)
		defer cancel()
		start := time.Now()
		d.Kick()
		res, err := callSchedule(cctx, base, at)
		if err != nil {
			return nil, err
		}
		d.Kick()
		if err := d.WaitIdle(cctx, 300*time.Millisecond); err != nil {
			return nil, fmt.Errorf("run: the cycle did not finish: %w", err)
		}
		return summarizeCycle(cctx, pub, cfg, res, time.Since(start))
	}

	if runFlags.once {
		// The schedule time is the next whole second, waited for: the
		// request ids derive from it (to the second), and the lake records
		// the requests a run published, while the in-process Pub/Sub that
		// held them dies with the run. A run killed after its Schedule
		// and started again within the same second would otherwise find
		// its requests "already published" and read nothing.
		at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
		sum, err := cycle(at)
		if err != nil {
			return err
		}
		if err := printCycle(cmd.OutOrStdout(), sum); err != nil {
			return err
		}
		if sum.Failed > 0 || len(sum.DeadLetters) > 0 {
			return fmt.Errorf("run: %d of %d tenants failed, %d message(s) dead-lettered", sum.Failed, len(sum.Tenants), len(sum.DeadLetters))
		}
		return nil
	}
	for {
		next := sched.Next(time.Now().UTC())
		log.Info("next scheduled cycle", "at", next.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return nil
		case err := <-derr:
			return err
		case <-time.After(time.Until(next)):
		}
		sum, err := cycle(next)
		if err != nil {
			log.Error("cycle failed", "err", err.Error())
			continue
		}
		if err := printCycle(cmd.OutOrStdout(), sum); err != nil {
			return err
		}
	}
}

// callSchedule calls the Schedule function over HTTP, as Cloud Scheduler does.
func callSchedule(ctx context.Context, base string, at time.Time) (*ops.ScheduleResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+config.FunctionSchedule, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-CloudScheduler-ScheduleTime", at.UTC().Format(time.RFC3339))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("run: call Schedule: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("run: call Schedule: %w", err)
	}
	var res ops.ScheduleResult
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("run: Schedule answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return &res, nil
}

// cycleSummary is what one cycle did, per tenant and target, from the
// events on the loads topic and the dead-letter topics.
type cycleSummary struct {
	ScheduleTime time.Time     `json:"schedule_time"`
	Took         string        `json:"took"`
	Tenants      []cycleTenant `json:"tenants"`
	Failed       int           `json:"failed_tenants"`
	DeadLetters  []deadLetter  `json:"dead_letters"`
	Targets      []string      `json:"targets"`
	Published    int           `json:"read_requests_published"`
}

type cycleTenant struct {
	Tenant   string                 `json:"tenant"`
	Snapshot string                 `json:"snapshot,omitempty"`
	Loads    map[string]cycleOutput `json:"loads"`
	Error    string                 `json:"error,omitempty"`
}

type cycleOutput struct {
	Outcome string `json:"outcome"`
	Live    string `json:"live,omitempty"`
	Checks  string `json:"checks"`
	Message string `json:"message,omitempty"`
}

type deadLetter struct {
	Topic  string            `json:"topic"`
	Tenant string            `json:"tenant"`
	Type   string            `json:"type"`
	Error  string            `json:"error,omitempty"`
	Attrs  map[string]string `json:"attributes"`
}

func summarizeCycle(ctx context.Context, pub *events.PubSub, cfg config.Config, res *ops.ScheduleResult, took time.Duration) (*cycleSummary, error) {
	sum := &cycleSummary{ScheduleTime: res.ScheduleTime, Took: took.Round(time.Millisecond).String(), Targets: cfg.TargetNames(), DeadLetters: []deadLetter{}}
	byTenant := map[string]*cycleTenant{}
	for _, r := range res.Requests {
		if r.Published {
			sum.Published++
		}
		ct := &cycleTenant{Tenant: r.Tenant, Loads: map[string]cycleOutput{}, Error: r.Error}
		byTenant[r.Tenant] = ct
	}
	msgs, err := pub.Drain(ctx, config.LoadsSubscription(cfg.Topics))
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		var lf events.LoadFinished
		if err := events.Decode(m, &lf); err != nil {
			return nil, fmt.Errorf("run: loads topic: %w", err)
		}
		ct, ok := byTenant[lf.Tenant]
		if !ok {
			ct = &cycleTenant{Tenant: lf.Tenant, Loads: map[string]cycleOutput{}}
			byTenant[lf.Tenant] = ct
		}
		if lf.Target == "" { // a read failure
			ct.Error = lf.Message
			continue
		}
		if lf.SnapshotID != "" {
			ct.Snapshot = lf.SnapshotID
		}
		okc, all := 0, 0
		for _, t := range lf.Tables {
			for _, c := range t.Checks {
				all++
				if c.OK {
					okc++
				}
			}
		}
		ct.Loads[lf.Target] = cycleOutput{Outcome: lf.Outcome.Outcome, Live: lf.Live, Checks: fmt.Sprintf("%d/%d", okc, all), Message: lf.Message}
		if lf.Outcome.Outcome != "failed" {
			ct.Error = "" // an earlier attempt's read failure was retried successfully
		}
	}
	for _, dl := range []string{cfg.Topics.ReadRequestsDeadLetter, cfg.Topics.SnapshotsDeadLetter, cfg.Topics.LoadsDeadLetter} {
		msgs, err := pub.Drain(ctx, config.DeadLetterSubscription(dl))
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			sum.DeadLetters = append(sum.DeadLetters, deadLetter{Topic: dl, Tenant: m.Attributes[events.AttrTenant], Type: m.Attributes[events.AttrType], Error: m.Attributes["tenantlake_error"], Attrs: m.Attributes})
		}
	}
	for _, ct := range byTenant {
		bad := ct.Error != ""
		for _, t := range cfg.TargetNames() {
			o, ok := ct.Loads[t]
			if !ok {
				bad = true
				ct.Loads[t] = cycleOutput{Outcome: "none", Checks: "-"}
				continue
			}
			if o.Outcome == "failed" || o.Outcome == "quarantined" {
				bad = true
			}
		}
		if bad {
			sum.Failed++
		}
		sum.Tenants = append(sum.Tenants, *ct)
	}
	sort.Slice(sum.Tenants, func(i, j int) bool { return sum.Tenants[i].Tenant < sum.Tenants[j].Tenant })
	return sum, nil
}

func printCycle(w io.Writer, s *cycleSummary) error {
	if g.json {
		return printJSON(w, s)
	}
	fmt.Fprintf(w, "cycle %s: %d read requests published, %d tenants, %d failed, %d dead-lettered, in %s\n",
		s.ScheduleTime.Format(time.RFC3339), s.Published, len(s.Tenants), s.Failed, len(s.DeadLetters), s.Took)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSNAPSHOT\tTARGET\tOUTCOME\tLIVE\tCHECKS\tNOTE")
	for _, t := range s.Tenants {
		for _, name := range s.Targets {
			o := t.Loads[name]
			note := o.Message
			if t.Error != "" {
				note = t.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Tenant, orDash(t.Snapshot), name, o.Outcome, orDash(o.Live), o.Checks, clipNote(note))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range s.DeadLetters {
		fmt.Fprintf(w, "dead letter on %s: tenant %s, %s: %s\n", d.Topic, d.Tenant, d.Type, d.Error)
	}
	return nil
}

func clipNote(s string) string {
	if len(s) > 160 {
		return s[:157] + "..."
	}
	return s
}

func runServe(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	cfg, err := envConfig(cmd, nil, config.Need{Project: true})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log := logging.NewJSON(os.Stdout, slog.LevelInfo, map[string]string{"service": "tenantlake"})
	slog.SetDefault(log)
	pub, err := events.Dial(ctx, cfg.Project)
	if err != nil {
		return err
	}
	defer pub.Close()
	if serveFlags.ensure {
		if serveFlags.publicURL == "" {
			return errors.New("serve: --ensure needs --public-url, the URL Pub/Sub pushes to")
		}
		if err := pub.Ensure(ctx, cfg.Topics, events.Layout(cfg, cfg.Project, strings.TrimRight(serveFlags.publicURL, "/"), serveFlags.attempts)); err != nil {
			return err
		}
	}
	h, err := functions.New(ctx, cfg, pub, version, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer h.Ops.Close()
	if h.Ops.Metrics, h.MetricsHandler, err = metrics.Prometheus(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := functions.Mount(ctx, h, cfg.TargetNames()); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	base, err := startServer(ctx, serveFlags.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("functions serving", "url", base, "project", cfg.Project, "targets", strings.Join(cfg.TargetNames(), ","))
	<-ctx.Done()
	return nil
}
