package writers

import (
	"fmt"
	"strings"

	"github.com/tenantlake/tenantlake/tenant"
)

// TenantPlaceholder is replaced by the tenant id in the name templates of
// write strategies (schema and dataset templates).
const TenantPlaceholder = "{tenant}"

// Pattern is a set of names a write strategy may use: a fixed name, a
// template with exactly one TenantPlaceholder (every valid tenant id put in
// its place), or, with a trailing "*", every name with that prefix.
type Pattern string

// CheckTemplate returns an error unless tpl holds TenantPlaceholder exactly
// once.
func CheckTemplate(tpl string) error {
	switch n := strings.Count(tpl, TenantPlaceholder); n {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("template %q lacks %s", tpl, TenantPlaceholder)
	default:
		return fmt.Errorf("template %q holds %s %d times, want once", tpl, TenantPlaceholder, n)
	}
}

// Overlap reports whether some name belongs to both patterns a and b, for
// instance a schema template that gives tenant "s_acme" the name another
// template gives tenant "acme". It is exact: it explores the product of
// the two patterns' automata, so it never guesses.
func Overlap(a, b Pattern) bool {
	na, nb := newNFA(a), newNFA(b)
	type pair struct{ a, b int }
	var queue []pair
	seen := map[pair]bool{}
	push := func(sa, sb []int) {
		for _, x := range sa {
			for _, y := range sb {
				p := pair{x, y}
				if !seen[p] {
					seen[p] = true
					queue = append(queue, p)
				}
			}
		}
	}
	push(na.closure(0), nb.closure(0))
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if na.accepts(p.a) && nb.accepts(p.b) {
			return true
		}
		for c := 0; c < 256; c++ {
			sa := na.step(p.a, byte(c))
			if len(sa) == 0 {
				continue
			}
			if sb := nb.step(p.b, byte(c)); len(sb) > 0 {
				push(sa, sb)
			}
		}
	}
	return false
}

// Pattern middles.
const (
	midNone = iota // a fixed name
	midID          // a tenant id
	midAny         // any bytes
)

// nfa recognises one Pattern: states 0..len(pre) walk the prefix; then, for
// midID, states len(pre)+n hold a tenant id of n bytes (n = 1..MaxIDLength),
// for midAny one state loops on any byte; then the suffix.
type nfa struct {
	pre, suf string
	mid      int
	midLen   int // states of the middle
}

func newNFA(p Pattern) nfa {
	s := string(p)
	if pre, ok := strings.CutSuffix(s, "*"); ok {
		return nfa{pre: pre, mid: midAny, midLen: 1}
	}
	if pre, suf, ok := strings.Cut(s, TenantPlaceholder); ok {
		return nfa{pre: pre, suf: suf, mid: midID, midLen: tenant.MaxIDLength}
	}
	return nfa{pre: s}
}

func (n nfa) sufStart() int { return len(n.pre) + 1 + n.midLen }

// closure adds to s the states reached without reading a byte: the end of
// a middle that may stop here.
func (n nfa) closure(s int) []int {
	out := []int{s}
	inMid := s > len(n.pre) && s < n.sufStart()
	if inMid || n.mid == midAny && s == len(n.pre) {
		out = append(out, n.sufStart())
	}
	return out
}

func (n nfa) accepts(s int) bool {
	if n.mid == midNone {
		return s == len(n.pre)
	}
	return s == n.sufStart()+len(n.suf)
}

func (n nfa) step(s int, c byte) []int {
	var next int
	switch {
	case s < len(n.pre):
		if c != n.pre[s] {
			return nil
		}
		next = s + 1
	case s == len(n.pre):
		switch {
		case n.mid == midID && c >= 'a' && c <= 'z':
			next = s + 1
		case n.mid == midAny:
			next = s + 1
		default:
			return nil
		}
	case s < n.sufStart(): // inside the middle
		if n.mid == midAny {
			next = s
		} else if k := s - len(n.pre); k < n.midLen && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			next = s + 1
		} else {
			return nil
		}
	default: // inside the suffix
		j := s - n.sufStart()
		if j >= len(n.suf) || c != n.suf[j] {
			return nil
		}
		next = s + 1
	}
	return n.closure(next)
}
