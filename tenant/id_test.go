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

// TestValidateIDReasons: the error gives the true reason, names an
// offending character by its code point and its position in characters,
// and shows the id in ASCII.
func TestValidateIDReasons(t *testing.T) {
	for id, want := range map[string]string{
		"acme\u200b": `invalid tenant id "acme\u200b": character U+200B at position 5 is not one of a-z, 0-9 or _`,
		strings.Repeat("a", MaxIDLength-1) + "é": `invalid tenant id "` + strings.Repeat("a", MaxIDLength-1) + `\u00e9": character U+00E9 at position 63 is not one of a-z, 0-9 or _`,
		strings.Repeat("a", MaxIDLength+1):       `invalid tenant id "` + strings.Repeat("a", MaxIDLength+1) + `": 64 characters, longer than 63`,
		"ACME":                                   `invalid tenant id "ACME": must start with a lower-case letter a-z, not 'A' (U+0041)`,
		"аcme":                                   `invalid tenant id "\u0430cme": must start with a lower-case letter a-z, not U+0430`,
		"acme-co":                                `invalid tenant id "acme-co": character '-' (U+002D) at position 5 is not one of a-z, 0-9 or _`,
		"ac\x00me":                               `invalid tenant id "ac\x00me": character U+0000 at position 3 is not one of a-z, 0-9 or _`,
		"ac\xe2me":                               `invalid tenant id "ac\xe2me": byte 0xE2 at position 3 is not UTF-8`,
		"a\ufffd":                                `invalid tenant id "a\ufffd": character U+FFFD at position 2 is not one of a-z, 0-9 or _`,
		"":                                       `invalid tenant id: empty`,
	} {
		err := ValidateID(id)
		if err == nil || err.Error() != want {
			t.Errorf("ValidateID(%q) = %v\nwant %s", id, err, want)
		}
	}
}
