package main

import (
	"fmt"
	"io"
)

// safeWriter passes text through to w with its C0 control characters and
// DEL written as escapes (ESC as \x1b), except tab and newline. The
// human-readable tables print names and values that come from the tenants'
// databases (a table named "\x1b]0;…\a" is a valid PostgreSQL name, and
// show --columns prints text values): raw, they would be terminal escape
// sequences sent to the operator's terminal. JSON output never holds raw
// control characters, so it passes unchanged.
type safeWriter struct {
	w   io.Writer
	buf []byte
}

func (s *safeWriter) Write(p []byte) (int, error) {
	b := s.buf[:0]
	for _, c := range p {
		if (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
			b = fmt.Appendf(b, `\x%02x`, c)
			continue
		}
		b = append(b, c)
	}
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
