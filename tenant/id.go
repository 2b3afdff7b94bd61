// Package tenant holds what tenantlake knows about tenants: the one rule for a
// valid tenant id, and the registry that says which tenants exist, where their
// databases are and which of their tables to copy.
//
// Every tenant id is checked by ValidateID before it reaches a lake path, a
// dataset or schema name, a Pub/Sub attribute or SQL.
package tenant

import (
	"errors"
	"fmt"
)

// MaxIDLength is the longest tenant id accepted. It keeps derived names (a
// BigQuery dataset "tenant_<id>", a PostgreSQL schema) inside their limits.
const MaxIDLength = 63

// ErrInvalidID is matched with errors.Is by callers that must tell a bad
// tenant id from other failures.
var ErrInvalidID = errors.New("invalid tenant id")

// ValidateID reports whether id is a valid tenant id: a lower-case ASCII letter
// first, then lower-case ASCII letters, digits or '_', at most MaxIDLength
// characters. The error wraps ErrInvalidID and quotes the id with %q, so
// control characters and look-alike Unicode are visible in logs.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w %.80q: longer than %d characters", ErrInvalidID, id, MaxIDLength)
	case id[0] < 'a' || id[0] > 'z':
		return fmt.Errorf("%w %q: must start with a lower-case letter a-z", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w %q: character %q at byte %d is not one of a-z, 0-9 or _", ErrInvalidID, id, c, i)
		}
	}
	return nil
}

// ErrNotFound: no tenant with that id in the registry.
var ErrNotFound = errors.New("tenant not found")
