package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	good := []string{"a", "acme", "acme_2", "t0", strings.Repeat("a", MaxIDLength)}
	for _, id := range good {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	bad := []string{
		"", "../x", "a/b", "..", ".", "Acme", "ACME", "_acme", "1acme", "acme-co", "acme co",
		"acme\x00", "acme\n", "аcme", // Cyrillic а
		"acmе",       // Cyrillic е at the end
		"ａcme",       // full-width a
		"acme\u200b", // zero-width space
		"tenant=acme", "a%2fb", "a\\b",
		strings.Repeat("a", MaxIDLength+1),
	}
	for _, id := range bad {
		err := ValidateID(id)
		if err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", id)
			continue
		}
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, does not wrap ErrInvalidID", id, err)
		}
	}
}
