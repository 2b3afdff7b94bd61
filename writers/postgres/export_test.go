package postgres

import "testing"

// SetInPlaceRows sets inPlaceRows for the rest of test t: -1 gives every
// table a pending slice, swapped whole at the promotion.
func SetInPlaceRows(t testing.TB, n int64) {
	was := inPlaceRows
	inPlaceRows = n
	t.Cleanup(func() { inPlaceRows = was })
}
