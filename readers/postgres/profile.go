package postgres

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tenantlake/tenantlake/lake"
)

// profile accumulates one column's profile figures over the rows of one
// range; profiles of a table's ranges are merged. Which fields are used
// depends on the column's kind (docs/types.md, "Profiles").
type profile struct {
	nulls int64
	seen  bool // a non-NULL value was added

	// integers, dates, timestamps, times; decimals that fit an int64
	imin, imax int64
	isum       int64
	bsum       *big.Int // overflow of isum, or big decimals
	// decimals that do not fit an int64
	bmin, bmax *big.Int
	iseen      bool // imin/imax hold a value
	// floats
	fmin, fmax float64
	fsum       float64
	fseen      bool // fmin/fmax hold a non-NaN value
	// strings
	smin, smax []byte
	// booleans
	sawFalse, sawTrue bool
}

func (p *profile) addInt(v int64) {
	p.addSum(v)
	if !p.iseen {
		p.imin, p.imax, p.iseen = v, v, true
	} else if v < p.imin {
		p.imin = v
	} else if v > p.imax {
		p.imax = v
	}
	p.seen = true
}

// addSum adds v to the exact sum, spilling into bsum on overflow.
func (p *profile) addSum(v int64) {
	s := p.isum + v
	if (v > 0 && s < p.isum) || (v < 0 && s > p.isum) {
		if p.bsum == nil {
			p.bsum = new(big.Int)
		}
		p.bsum.Add(p.bsum, big.NewInt(p.isum))
		s = v
	}
	p.isum = s
}

func (p *profile) addDecimal(small int64, bigv *big.Int) {
	if bigv == nil {
		p.addInt(small)
		return
	}
	if p.bsum == nil {
		p.bsum = new(big.Int)
	}
	p.bsum.Add(p.bsum, bigv)
	if p.bmin == nil || bigv.Cmp(p.bmin) < 0 {
		p.bmin = new(big.Int).Set(bigv)
	}
	if p.bmax == nil || bigv.Cmp(p.bmax) > 0 {
		p.bmax = new(big.Int).Set(bigv)
	}
	p.seen = true
}

func (p *profile) addFloat(v float64) {
	p.fsum += v
	p.seen = true
	if v != v {
		return
	}
	if !p.fseen {
		p.fmin, p.fmax, p.fseen = v, v, true
	} else if v < p.fmin {
		p.fmin = v
	} else if v > p.fmax {
		p.fmax = v
	}
}

func (p *profile) addString(v []byte) {
	if !p.seen {
		p.smin = append([]byte(nil), v...)
		p.smax = append([]byte(nil), v...)
		p.seen = true
		return
	}
	if bytes.Compare(v, p.smin) < 0 {
		p.smin = append(p.smin[:0], v...)
	} else if bytes.Compare(v, p.smax) > 0 {
		p.smax = append(p.smax[:0], v...)
	}
}

func (p *profile) addBool(v bool) {
	if v {
		p.sawTrue = true
	} else {
		p.sawFalse = true
	}
	p.seen = true
}

// merge adds the figures of q (another range of the same column) to p.
func (p *profile) merge(q *profile) {
	p.nulls += q.nulls
	if !q.seen {
		return
	}
	if q.iseen {
		if !p.iseen {
			p.imin, p.imax, p.iseen = q.imin, q.imax, true
		} else {
			p.imin, p.imax = min(p.imin, q.imin), max(p.imax, q.imax)
		}
	}
	p.addSum(q.isum)
	if q.bsum != nil {
		if p.bsum == nil {
			p.bsum = new(big.Int)
		}
		p.bsum.Add(p.bsum, q.bsum)
	}
	if q.bmin != nil && (p.bmin == nil || q.bmin.Cmp(p.bmin) < 0) {
		p.bmin = q.bmin
	}
	if q.bmax != nil && (p.bmax == nil || q.bmax.Cmp(p.bmax) > 0) {
		p.bmax = q.bmax
	}
	p.fsum += q.fsum
	if q.fseen {
		if !p.fseen {
			p.fmin, p.fmax, p.fseen = q.fmin, q.fmax, true
		} else {
			p.fmin, p.fmax = math.Min(p.fmin, q.fmin), math.Max(p.fmax, q.fmax)
		}
	}
	if q.smin != nil && (!p.seen || bytes.Compare(q.smin, p.smin) < 0) {
		p.smin = q.smin
	}
	if q.smax != nil && (!p.seen || bytes.Compare(q.smax, p.smax) > 0) {
		p.smax = q.smax
	}
	p.sawFalse = p.sawFalse || q.sawFalse
	p.sawTrue = p.sawTrue || q.sawTrue
	p.seen = true
}

// manifest renders the figures in the canonical forms of lake.Profile.
func (p *profile) manifest(c *column) lake.Profile {
	out := lake.Profile{Nulls: p.nulls}
	if !p.seen {
		switch c.kind {
		case kInt16, kInt32, kInt64, kDecimal, kMoney:
			out.Sum = ptr("0")
		case kFloat32, kFloat64:
			out.Sum = ptr("0")
		}
		return out
	}
	switch c.kind {
	case kInt16, kInt32, kInt64:
		out.Min, out.Max, out.Sum = ptr(strconv.FormatInt(p.imin, 10)), ptr(strconv.FormatInt(p.imax, 10)), ptr(p.sum().String())
	case kDecimal, kMoney:
		lo, hi := p.bmin, p.bmax
		if p.iseen {
			if lo == nil || big.NewInt(p.imin).Cmp(lo) < 0 {
				lo = big.NewInt(p.imin)
			}
			if hi == nil || big.NewInt(p.imax).Cmp(hi) > 0 {
				hi = big.NewInt(p.imax)
			}
		}
		out.Min, out.Max, out.Sum = ptr(formatDecimal(lo, c.scale)), ptr(formatDecimal(hi, c.scale)), ptr(formatDecimal(p.sum(), c.scale))
	case kFloat32, kFloat64:
		if p.fseen {
			out.Min, out.Max = ptr(formatFloat(p.fmin)), ptr(formatFloat(p.fmax))
		}
		out.Sum = ptr(formatFloat(p.fsum))
	case kString, kUUID:
		out.Min, out.Max = ptr(string(p.smin)), ptr(string(p.smax))
	case kBool:
		out.Min, out.Max = ptr(strconv.FormatBool(!p.sawFalse)), ptr(strconv.FormatBool(p.sawTrue))
	case kDate:
		out.Min, out.Max = ptr(formatPGDate(p.imin)), ptr(formatPGDate(p.imax))
	case kTimestamp:
		out.Min, out.Max = ptr(formatMicros(p.imin, "")), ptr(formatMicros(p.imax, ""))
	case kTimestamptz:
		out.Min, out.Max = ptr(formatMicros(p.imin, "Z")), ptr(formatMicros(p.imax, "Z"))
	case kTime:
		out.Min, out.Max = ptr(formatTime(p.imin)), ptr(formatTime(p.imax))
	}
	return out
}

func (p *profile) sum() *big.Int {
	s := big.NewInt(p.isum)
	if p.bsum != nil {
		s.Add(s, p.bsum)
	}
	return s
}

func ptr(s string) *string { return &s }

// formatFloat is Go's shortest 'g' form: "NaN", "+Inf" and "-Inf" included.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// formatDecimal renders unscaled v at scale in plain decimal notation with
// exactly scale fraction digits, e.g. "-0.50".
func formatDecimal(v *big.Int, scale int) string {
	s := new(big.Int).Abs(v).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale+1-len(s)) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if v.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func formatMicros(us int64, zone string) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000") + zone
}

func formatTime(us int64) string {
	return time.UnixMicro(us).UTC().Format("15:04:05.000000")
}
