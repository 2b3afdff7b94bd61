package writers

import (
	"strings"
	"testing"
)

func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b Pattern
		want bool
	}{
		{"tenant_{tenant}", "tenantlake_staging_{tenant}", false},
		{"t_{tenant}", "t_s_{tenant}", true}, // tenant s_acme vs acme
		{"{tenant}_live", "{tenant}_x_live", true},
		{"{tenant}_live", "{tenant}_stage", false},
		{"{tenant}", "tenantlake", true},
		{"{tenant}", "public", true},
		{"{tenant}", "pg_*", true},
		{"p{tenant}", "pg_*", true},
		{"x{tenant}", "pg_*", false},
		{"tenant_{tenant}", "all_tenants", false},
		{"all_{tenant}", "all_tenants", true},
		{"{tenant}s", "all_tenants", true},
		{"T_{tenant}", "t_{tenant}", false},
		{"t{tenant}", "t_{tenant}", false}, // an id never starts with _
		{"t{tenant}", "t1{tenant}", false}, // nor with a digit
		{"tenant_{tenant}", "tenant_{tenant}", true},
		{"public", "public", true},
		{"public", "pg_*", false},
		{"pg_x", "pg_*", true},
		{"pg_", "pg_*", true},
		{"a{tenant}", Pattern("a" + strings.Repeat("b", 63)), true},  // the longest id
		{"a{tenant}", Pattern("a" + strings.Repeat("b", 64)), false}, // longer than any id
	} {
		if got := Overlap(c.a, c.b); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := Overlap(c.b, c.a); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestCheckTemplate(t *testing.T) {
	for tpl, ok := range map[string]bool{"tenant_{tenant}": true, "tenant": false, "{tenant}_{tenant}": false} {
		if err := CheckTemplate(tpl); (err == nil) != ok {
			t.Errorf("CheckTemplate(%q) = %v", tpl, err)
		}
	}
}
