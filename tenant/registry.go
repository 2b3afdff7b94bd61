package tenant

import "context"

// Tenant is one entry of the tenant registry.
type Tenant struct {
	ID string `json:"tenant_id" yaml:"tenant_id"`
	// Connection says how to reach the tenant's database: a PostgreSQL
	// connection string (development), "env:NAME" (the connection string is in
	// environment variable NAME) or "secret:projects/P/secrets/S/versions/V"
	// (Secret Manager). Never log it resolved; see Redact.
	Connection string   `json:"connection" yaml:"connection"`
	Active     bool     `json:"is_active" yaml:"is_active"`
	Include    []string `json:"include,omitempty" yaml:"include,omitempty"` // table patterns (schema.table, path.Match globs); empty means all
	Exclude    []string `json:"exclude,omitempty" yaml:"exclude,omitempty"` // table patterns to leave out, applied after Include
}

// Registry lists tenants. Implementations validate every tenant id with
// ValidateID and fail on a bad one rather than skip it.
type Registry interface {
	// List returns every tenant, active or not, sorted by id.
	List(ctx context.Context) ([]Tenant, error)
	// Get returns one tenant; the error wraps ErrNotFound if there is none.
	Get(ctx context.Context, id string) (Tenant, error)
}
