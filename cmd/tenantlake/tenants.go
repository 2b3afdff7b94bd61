package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// openRegistry opens the tenant registry named by --registry.
func openRegistry(ctx context.Context) (tenant.Registry, error) {
	if g.registry == "" {
		return nil, errors.New("no tenant registry: give --registry (a YAML file or a postgres:// URL) or set TENANTLAKE_REGISTRY")
	}
	return tenant.OpenRegistry(ctx, g.registry)
}

// tenantLine is one line of `tenantlake tenants`.
type tenantLine struct {
	ID         string   `json:"tenant_id"`
	InRegistry bool     `json:"in_registry"` // false: the lake holds data of a tenant the registry no longer lists
	Active     bool     `json:"is_active"`
	Include    []string `json:"include"`
	Exclude    []string `json:"exclude"`
	Connection string   `json:"connection"` // the reference, with any password redacted
	Snapshots  int      `json:"snapshots"`  // committed snapshots in the lake
	Newest     string   `json:"newest"`     // newest committed snapshot id, "" if none
}

var tenantsCmd = &cobra.Command{
	Use:   "tenants",
	Short: "List the tenants of the registry and their snapshots in the lake",
	Long: `tenants lists every tenant of the registry (--registry), active or not, with its
table include/exclude patterns and its connection reference (passwords redacted;
env: and file: references are shown, never resolved), and how many committed
snapshots the lake (--lake) holds for it and the newest one.

Tenants that have snapshots in the lake but are no longer in the registry are
listed too, marked "not in registry".`,
	Example: `  tenantlake tenants --registry tenants.yaml --lake file:///var/lib/tenantlake
  tenantlake tenants --registry postgres://registry@db/ops --lake gs://my-bucket/lake --json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		reg, err := openRegistry(ctx)
		if err != nil {
			return err
		}
		ts, err := reg.List(ctx)
		if err != nil {
			return err
		}
		var lines []tenantLine
		err = withLake(ctx, func(l *lake.Lake) error {
			lines, err = tenantLines(ctx, l, ts)
			return err
		})
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if g.json {
			return printJSON(w, lines)
		}
		if len(lines) == 0 {
			_, err := fmt.Fprintln(w, "no tenants in the registry or the lake")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tACTIVE\tINCLUDE\tEXCLUDE\tCONNECTION\tSNAPSHOTS\tNEWEST")
		for _, t := range lines {
			active := fmt.Sprint(t.Active)
			if !t.InRegistry {
				active = "not in registry"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, active, patterns(t.Include, "all"), patterns(t.Exclude, "-"),
				orDash(t.Connection), t.Snapshots, orDash(t.Newest))
		}
		return tw.Flush()
	},
}

// tenantLines joins the registry's tenants with the lake's snapshots.
func tenantLines(ctx context.Context, l *lake.Lake, ts []tenant.Tenant) ([]tenantLine, error) {
	lines := []tenantLine{}
	listed := map[string]bool{}
	for _, t := range ts {
		listed[t.ID] = true
		lines = append(lines, tenantLine{ID: t.ID, InRegistry: true, Active: t.Active, Include: orEmpty(t.Include), Exclude: orEmpty(t.Exclude), Connection: tenant.Redact(t.Connection)})
	}
	inLake, err := l.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range inLake {
		if !listed[id] {
			lines = append(lines, tenantLine{ID: id, Include: []string{}, Exclude: []string{}})
		}
	}
	for i := range lines {
		t := &lines[i]
		snaps, err := l.Snapshots(ctx, t.ID)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		t.Snapshots = len(snaps)
		if len(snaps) > 0 {
			t.Newest = snaps[0].SnapshotID
		}
	}
	return lines, nil
}

func orEmpty(p []string) []string {
	if p == nil {
		return []string{}
	}
	return p
}

func patterns(p []string, none string) string {
	if len(p) == 0 {
		return none
	}
	return strings.Join(p, ",")
}

func init() { root.AddCommand(tenantsCmd) }
