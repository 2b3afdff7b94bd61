// Package tenant holds what tenantlake knows about tenants: the one rule for a
// valid tenant id, and the registry that says which tenants exist, where their
// databases are and which of their tables to copy.
//
// Every tenant id is checked by ValidateID before it reaches a lake path, a
// dataset or schema name, a Pub/Sub attribute or SQL.
//
// No error or output may hold a password or a secret's content. This
// package is the one place that decides how: Redact hides the password of
// any connection string or URL, parsed or not; ParseConfig and ParseURL
// parse one with errors that hold no part of it; Tenant.ConnConfig names
// an env: or file: reference, never what it holds.
package tenant

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDLength is the longest tenant id accepted. It keeps derived names (a
// BigQuery dataset "tenant_<id>", a PostgreSQL schema) inside their limits.
const MaxIDLength = 63

// ErrInvalidID is matched with errors.Is by callers that must tell a bad
// tenant id from other failures.
var ErrInvalidID = errors.New("invalid tenant id")

// ValidateID reports whether id is a valid tenant id: a lower-case ASCII letter
// first, then lower-case ASCII letters, digits or '_', at most MaxIDLength
// characters. The error wraps ErrInvalidID, quotes the id with %+q (ASCII
// only, so control characters and look-alike Unicode show as escapes such
// as \u0430) and gives the first reason it fails, naming an offending
// character by its code point and its position in characters, counted from
// 1:
//
//	invalid tenant id "acme\u200b": character U+200B at position 5 is not one of a-z, 0-9 or _
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	pos := 0
	for i, r := range id {
		pos++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(id[i:], string(utf8.RuneError)):
			return fmt.Errorf("%w %+.80q: byte 0x%02X at position %d is not UTF-8", ErrInvalidID, id, id[i], pos)
		case pos == 1 && (r < 'a' || r > 'z'):
			return fmt.Errorf("%w %+.80q: must start with a lower-case letter a-z, not %s", ErrInvalidID, id, describeRune(r))
		case !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_'):
			return fmt.Errorf("%w %+.80q: character %s at position %d is not one of a-z, 0-9 or _", ErrInvalidID, id, describeRune(r), pos)
		}
	}
	// Every character is ASCII now: bytes are characters.
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w %+.80q: %d characters, longer than %d", ErrInvalidID, id, len(id), MaxIDLength)
	}
	return nil
}

// describeRune names r by its code point, with the character itself when it
// is printable ASCII: "U+200B", "'-' (U+002D)".
func describeRune(r rune) string {
	if r > ' ' && r < utf8.RuneSelf && r != 0x7f {
		return fmt.Sprintf("%q (U+%04X)", r, r)
	}
	return fmt.Sprintf("U+%04X", r)
}

// ErrNotFound: no tenant with that id in the registry.
var ErrNotFound = errors.New("tenant not found")
