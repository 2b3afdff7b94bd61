package strictjson

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		in     string
		noNull bool
		bad    bool
	}{
		{`{"tenant":"acme","dry_run":true}`, true, false},
		{`{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":1}]}`, true, false}, // the same key in different objects
		{`{"dry_run":true,"dry_run":false}`, false, true},
		{`{"dry_run":true,"DRY_RUN":false}`, false, true},
		{`{"tenant":"acme","Tenant":"globex"}`, false, true},
		{"{\"ask\":1,\"a\u017fk\":2}", false, true},   // U+017F folds to s, as encoding/json matches it
		{"{\"kind\":1,\"\u212aind\":2}", false, true}, // U+212A (Kelvin) folds to k
		{`{"a":{"x":1,"x":2}}`, false, true},
		{`[{"x":1,"x":2}]`, false, true},
		{`{"dry_run":null}`, true, true},
		{`{"dry_run":null}`, false, false},
		{`{"tables":[null]}`, true, true},
		{`null`, true, true},
		{`{"a":"null"}`, true, false},
		{`{"a":`, true, false}, // malformed: left to the decoder
	} {
		err := Check([]byte(c.in), Options{NoNull: c.noNull})
		if got := err != nil; got != c.bad {
			t.Errorf("Check(%s, NoNull %v) = %v, want refused %v", c.in, c.noNull, err, c.bad)
		}
		if err != nil && !errors.Is(err, ErrAmbiguous) {
			t.Errorf("Check(%s): %v does not wrap ErrAmbiguous", c.in, err)
		}
	}
}

// TestFoldingAgreesWithEncodingJSON: every pair of keys that Check calls the
// same field is one that encoding/json matches to the same struct field.
func TestFoldingAgreesWithEncodingJSON(t *testing.T) {
	for _, key := range []string{"DRY_RUN", "Dry_Run", "a\u017fk", "\u212aind"} {
		var v struct {
			DryRun bool `json:"dry_run"`
			Ask    int  `json:"ask"`
			Kind   int  `json:"kind"`
		}
		val := "1"
		if key[0] == 'D' {
			val = "true"
		}
		if err := json.Unmarshal([]byte(`{"`+key+`":`+val+`}`), &v); err != nil {
			t.Fatal(err)
		}
		if !v.DryRun && v.Ask == 0 && v.Kind == 0 {
			t.Errorf("encoding/json does not match %q to a field: Check's folding is wider than needed", key)
		}
	}
}
