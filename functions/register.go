package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	ffunctions "github.com/GoogleCloudPlatform/functions-framework-go/functions"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/events"
	"github.com/tenantlake/tenantlake/internal/logging"
	"github.com/tenantlake/tenantlake/internal/metrics"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
)

// New builds the Handlers of cfg: it checks every target's URL (without
// connecting), opens the lake and, when cfg names one, the registry; pub
// publishes the events. Errors name the environment variable at fault.
// Close the returned Ops when done.
func New(ctx context.Context, cfg config.Config, pub events.Publisher, version string, log *slog.Logger) (*Handlers, error) {
	// A target that cannot be read fails here, naming the variable, not
	// at the first load after every tenant was read.
	var errs []error
	for i, t := range cfg.Targets {
		if err := ops.CheckTarget(t.URL); err != nil {
			errs = append(errs, fmt.Errorf("%s: target %d (%s): %w", config.EnvTargets, i+1, t.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	lk, err := lake.Open(ctx, cfg.Lake)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvLake, err)
	}
	o := &ops.Ops{
		Lake:         lk,
		Reader:       postgres.New(postgres.Options{Parallel: cfg.Connections, ToolVersion: version}),
		Targets:      cfg.Targets,
		Events:       pub,
		Topics:       cfg.Topics,
		ReadsPerHost: cfg.ReadsPerHost,
		ClaimTTL:     cfg.TenantTimeout + time.Minute,
		Log:          log,
	}
	if cfg.BigTenantBytes > 0 && cfg.BigReadJob != "" {
		// Credentials from the environment; the client dials lazily.
		jc, err := run.NewJobsClient(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: cloud run client: %w", config.EnvBigReadJob, err), lk.Close())
		}
		o.BigTenantBytes, o.BigReads = cfg.BigTenantBytes, &ops.CloudRunJob{Name: cfg.BigReadJob, Client: jc}
	}
	if cfg.Registry != "" {
		reg, err := tenant.OpenRegistry(ctx, cfg.Registry)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: %w", config.EnvRegistry, err), lk.Close())
		}
		o.Registry = reg
	}
	return &Handlers{Ops: o, Topics: cfg.Topics, Project: cfg.Project, TenantTimeout: cfg.TenantTimeout, Log: log}, nil
}

// Mount registers every function with the functions framework at the paths
// `tenantlake run` and `serve` use, for the targets given: /Schedule,
// /Replay, /Snapshots (and the console at /Snapshots/console, or /Snapshots
// in a browser), /Read/… and /Load/<target>/… (push endpoints end in
// /projects/P/topics/T, from which the framework converts a raw push body),
// and /metrics when h has a MetricsHandler.
// Serve them with funcframework.StartHostPort.
func Mount(ctx context.Context, h *Handlers, targets []string) error {
	regs := []error{
		funcframework.RegisterHTTPFunctionContext(ctx, "/"+config.FunctionSchedule, h.Schedule),
		funcframework.RegisterHTTPFunctionContext(ctx, "/"+config.FunctionReplay, h.Replay),
		funcframework.RegisterHTTPFunctionContext(ctx, "/"+config.FunctionSnapshots, h.Snapshots),
		funcframework.RegisterHTTPFunctionContext(ctx, "/"+config.FunctionSnapshots+"/console", h.Snapshots),
		funcframework.RegisterCloudEventFunctionContext(ctx, "/"+config.FunctionRead+"/", h.Read),
	}
	for _, t := range targets {
		regs = append(regs, funcframework.RegisterCloudEventFunctionContext(ctx, "/"+config.FunctionLoad+"/"+t+"/", h.Load(t)))
	}
	if h.MetricsHandler != nil {
		regs = append(regs, funcframework.RegisterHTTPFunctionContext(ctx, "/metrics", h.MetricsHandler.ServeHTTP))
	}
	return errors.Join(regs...)
}

// Register registers every function under its entry-point name, for Cloud
// Functions: the deployment's FUNCTION_TARGET picks the one it serves, and
// that function's settings are read and checked at start, so a missing or
// malformed environment variable stops the instance with a log line naming
// it. Logs are JSON on stdout.
func Register() {
	log := logging.NewJSON(os.Stdout, slog.LevelInfo, map[string]string{"function": os.Getenv("FUNCTION_TARGET")})
	slog.SetDefault(log)
	g := &gcp{log: log}
	ffunctions.HTTP(config.FunctionSchedule, g.http(config.FunctionSchedule, (*Handlers).Schedule))
	ffunctions.HTTP(config.FunctionReplay, g.http(config.FunctionReplay, (*Handlers).Replay))
	ffunctions.HTTP(config.FunctionSnapshots, g.http(config.FunctionSnapshots, (*Handlers).Snapshots))
	ffunctions.CloudEvent(config.FunctionRead, g.event(config.FunctionRead, func(h *Handlers, ctx context.Context, e cloudevents.Event) error {
		return h.Read(ctx, e)
	}))
	ffunctions.CloudEvent(config.FunctionLoad, g.event(config.FunctionLoad, func(h *Handlers, ctx context.Context, e cloudevents.Event) error {
		return h.Load(h.Ops.Targets[0].Name)(ctx, e)
	}))
	if fn := os.Getenv("FUNCTION_TARGET"); fn != "" {
		if _, err := g.handlers(fn); err != nil {
			log.Error("cannot start: "+err.Error(), "function", fn)
			os.Exit(1)
		}
	}
}

// gcp builds the Handlers of a Cloud Functions instance once, from the
// environment.
type gcp struct {
	log  *slog.Logger
	once sync.Once
	h    *Handlers
	err  error
}

// needs says which settings each function cannot do without.
func needs(fn string) config.Need {
	switch fn {
	case config.FunctionSchedule, config.FunctionRead:
		return config.Need{Registry: true, Project: true}
	case config.FunctionLoad, config.FunctionReplay:
		return config.Need{Targets: true, Project: true}
	}
	return config.Need{Project: true}
}

func (g *gcp) handlers(fn string) (*Handlers, error) {
	g.once.Do(func() {
		ctx := context.Background()
		cfg, err := config.FromEnv(nil, needs(fn))
		if err == nil && fn == config.FunctionLoad && len(cfg.Targets) != 1 {
			err = fmt.Errorf("%s: a Load deployment serves exactly one target, %d are set", config.EnvTargets, len(cfg.Targets))
		}
		if err != nil {
			g.err = fmt.Errorf("function %s: %w", fn, err)
			return
		}
		pub, err := events.Dial(ctx, cfg.Project)
		if err != nil {
			g.err = err
			return
		}
		rec, _, err := metrics.GoogleCloud(ctx, cfg.Project)
		if err != nil {
			g.err = err
			return
		}
		g.h, g.err = New(ctx, cfg, pub, version(), g.log)
		if g.h != nil {
			g.h.Ops.Metrics = rec
		}
	})
	return g.h, g.err
}

func (g *gcp) http(fn string, serve func(*Handlers, http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		h, err := g.handlers(fn)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, httpError{Error: err.Error()})
			return
		}
		serve(h, w, r)
	}
}

func (g *gcp) event(fn string, serve func(*Handlers, context.Context, cloudevents.Event) error) func(context.Context, cloudevents.Event) error {
	return func(ctx context.Context, e cloudevents.Event) error {
		h, err := g.handlers(fn)
		if err != nil {
			return err
		}
		return serve(h, ctx, e)
	}
}

// version is the build's version control revision, for manifests.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "functions"
}
