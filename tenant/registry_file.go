package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"gopkg.in/yaml.v3"
)

// fileRegistry is a registry read once from a YAML file.
type fileRegistry struct {
	path    string
	tenants []Tenant // sorted by id
}

// yamlTenant is Tenant as written in the file: is_active may be left out and
// then means true.
type yamlTenant struct {
	ID         string   `yaml:"tenant_id"`
	Connection string   `yaml:"connection"`
	Active     *bool    `yaml:"is_active"`
	Include    []string `yaml:"include"`
	Exclude    []string `yaml:"exclude"`
}

func openFileRegistry(path string) (*fileRegistry, error) {
	// A connection string given as a registry by mistake (a misspelled
	// postgres:// scheme) is a file name here: never show its password.
	name := Redact(path)
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
		}
		return nil, fmt.Errorf("tenant registry: %w", err)
	}
	var doc struct {
		Tenants *[]yamlTenant `yaml:"tenants"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// yaml.v3 quotes at most 7 characters of a value in its errors, so a
	// password cannot leak through them.
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tenant registry %s: %w", name, err)
	}
	// An empty (or truncated, or wrong) file is a mistake, not a registry
	// without tenants: every scheduled read would silently read nothing.
	if doc.Tenants == nil {
		return nil, fmt.Errorf("tenant registry %s: no tenants list (write \"tenants: []\" for a registry without tenants)", name)
	}
	// Only the first YAML document would be read: the tenants of a second
	// one would be left out without a word.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tenant registry %s: holds more than one YAML document (a line \"---\"): put every tenant in one tenants list", name)
	}
	ts := make([]Tenant, len(*doc.Tenants))
	for i, y := range *doc.Tenants {
		ts[i] = Tenant{ID: y.ID, Connection: y.Connection, Active: y.Active == nil || *y.Active, Include: y.Include, Exclude: y.Exclude}
	}
	if err := checkTenants(name, ts); err != nil {
		return nil, err
	}
	return &fileRegistry{path: name, tenants: ts}, nil
}

func (r *fileRegistry) List(ctx context.Context) ([]Tenant, error) {
	return slices.Clone(r.tenants), nil
}

func (r *fileRegistry) Get(ctx context.Context, id string) (Tenant, error) {
	if err := ValidateID(id); err != nil {
		return Tenant{}, err
	}
	return get(r.path, r.tenants, id)
}
