// Command tenantlake copies every tenant's PostgreSQL database into BigQuery
// (or a PostgreSQL warehouse) through a lake of immutable Parquet snapshots,
// and reloads any tenant from any stored snapshot. Run `tenantlake --help`.
//
// Each subcommand lives in its own file and registers itself with root in an
// init function.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// flags shared by every subcommand.
var g struct {
	lake     string
	registry string
	json     bool
	verbose  bool
}

var root = &cobra.Command{
	Use:   "tenantlake",
	Short: "Copy every tenant's PostgreSQL database into BigQuery through a lake of Parquet snapshots",
	Long: `tenantlake reads each tenant's PostgreSQL database in one consistent snapshot,
stores it as immutable Parquet files in a lake (a local folder or GCS), and loads
snapshots into BigQuery or a PostgreSQL warehouse, validated against the snapshot's
manifest before they go live. Any stored snapshot can be replayed later by time.

The lake and the tenant registry are given by --lake and --registry, or by the
environment variables TENANTLAKE_LAKE and TENANTLAKE_REGISTRY.`,
	Version:       version,
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
		if err := checkNoEmptyFlags(cmd); err != nil {
			return err
		}
		// What the commands print on stdout holds the tenants' names and
		// values: never raw control characters on a terminal.
		if _, ok := cmd.Root().OutOrStdout().(*safeWriter); !ok {
			cmd.Root().SetOut(&safeWriter{w: cmd.Root().OutOrStdout()})
		}
		level := slog.LevelInfo
		if g.verbose {
			level = slog.LevelDebug
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		return nil
	},
}

// checkNoEmptyFlags fails when a string flag is given with an empty value
// (--at "", --tenant ""): an empty value is a mistake (an unset shell
// variable, say), never a way to ask for the default.
func checkNoEmptyFlags(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err == nil && f.Changed && f.Value.Type() == "string" && f.Value.String() == "" {
			err = fmt.Errorf("--%s: empty value: give a value or leave the flag out", f.Name)
		}
	})
	return err
}

// checkTenantFlag validates the value of a --tenant flag. Its error names
// the flag, so that a bad value is not blamed on the registry or the lake,
// and wraps tenant.ErrInvalidID.
func checkTenantFlag(id string) error {
	if err := tenant.ValidateID(id); err != nil {
		return fmt.Errorf("--tenant: %w", err)
	}
	return nil
}

func init() {
	pf := root.PersistentFlags()
	pf.StringVar(&g.lake, "lake", envOr("TENANTLAKE_LAKE", "file:///var/lib/tenantlake"), "lake URL: file:///path, gs://bucket/prefix or mem:// (env TENANTLAKE_LAKE)")
	pf.StringVar(&g.registry, "registry", os.Getenv("TENANTLAKE_REGISTRY"), "tenant registry: a YAML file path or a postgres:// URL of a database with a tenant_registry table (env TENANTLAKE_REGISTRY)")
	redactDefault(pf, "lake", "registry")
	pf.BoolVar(&g.json, "json", false, "print results as JSON on stdout, for scripts")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug details to stderr")
}

// redactDefault hides the passwords of the named flags' defaults, which
// come from environment variables, from --help (pflag prints DefValue).
func redactDefault(fs *pflag.FlagSet, names ...string) {
	for _, name := range names {
		if f := fs.Lookup(name); f != nil {
			f.DefValue = tenant.Redact(f.DefValue)
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// openLake opens the lake named by --lake. Only a command that writes
// snapshots (read) passes create: every other one refuses a missing
// file:// lake rather than create an empty one at a mistyped path.
func openLake(ctx context.Context, create bool) (*lake.Lake, error) {
	if create {
		return lake.Open(ctx, g.lake)
	}
	l, err := lake.OpenExisting(ctx, g.lake)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, fmt.Errorf("--lake: %w (only tenantlake read creates a lake)", err)
	}
	return l, err
}

// printJSON writes v as indented JSON to w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile()
	err := root.ExecuteContext(ctx)
	stopProfile()
	if err != nil {
		fmt.Fprintln(&safeWriter{w: os.Stderr}, "tenantlake:", err)
		os.Exit(1)
	}
}

// startCPUProfile writes a Go CPU profile of the whole run to the file
// named by TENANTLAKE_CPUPROFILE, when set (for benchmarks: go tool pprof);
// the returned func stops it.
func startCPUProfile() func() {
	path := os.Getenv("TENANTLAKE_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenantlake: TENANTLAKE_CPUPROFILE:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "tenantlake: TENANTLAKE_CPUPROFILE:", err)
		}
	}
}
