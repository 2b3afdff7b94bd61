package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// epoch is the newest time the generator uses; everything happens in the
// year before it, so the data never depends on the clock.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// gen generates one tenant's rows. Every entity (a customer, an order with its
// lines, ...) draws from its own random stream keyed by seed, tenant, kind and
// id, so any entity can be regenerated alone (an invoice recomputes its
// order's lines) and the data is identical for the same seed.
type gen struct {
	tenant string
	seed   uint64
	sizes  sizes
}

// sizes are a tenant's row counts before mutation.
type sizes struct {
	Customers, Products, Orders, Events, Attachments, Audit, Tickets int
}

func newGen(tenant string, seed uint64, scale float64) *gen {
	g := &gen{tenant: tenant, seed: seed}
	r := g.rng("sizes", 0)
	n := func(base, spread int) int { return max(1, int(math.Round(float64(base+r.IntN(spread+1))*scale))) }
	customers := n(60, 340)
	g.sizes = sizes{
		Customers:   customers,
		Products:    n(20, 60),
		Orders:      customers * (2 + r.IntN(3)),
		Events:      customers * (3 + r.IntN(4)),
		Attachments: customers/5 + r.IntN(40),
		Audit:       n(100, 500),
		Tickets:     customers/3 + r.IntN(30),
	}
	return g
}

func (g *gen) rng(kind string, id int64) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d", g.tenant, kind, id)
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

var (
	firstNames = []string{"Ada", "Bob", "Chloé", "Dmitri", "Eve", "Fatima", "Günther", "Hiro", "Ingrid", "José", "Kai", "Łukasz", "Maria", "Nnamdi", "Olga", "Priya", "Quinn", "Rosa", "Søren", "Zoë", "王芳", "Seán"}
	lastNames  = []string{"Smith", "O'Brien", "Müller", "García", "Nakamura", "Kowalski", "Dubois", "Okafor", "Rossi", "Johansson", "Patel", "van der Berg", "Nguyễn", "Ivanova", "De'Ath"}
	countries  = []string{"DE", "FR", "GB", "US", "NL", "PL", "JP", "BR", "IN", "CH"}
	currencies = map[string]string{"DE": "EUR", "FR": "EUR", "NL": "EUR", "GB": "GBP", "US": "USD", "PL": "PLN", "JP": "JPY", "BR": "BRL", "IN": "INR", "CH": "CHF"}
	notes      = []string{"prefers email", "call after 5pm, not before", "VAT exempt\nsee contract §4", `asked for "express" shipping`, "🚚 wholesale", "tab\tseparated\tnote", "  leading and trailing spaces  ", ""}
	adjectives = []string{"Blue", "Compact", "Deluxe", "Eco", "Heavy-duty", "Mini", "Pro", "Smart", "Vintage", "Wireless"}
	nouns      = []string{"Kettle", "Lamp", "Backpack", "Chair", "Headphones", "Notebook", "Router", "Sneakers", "Teapot", "Umbrella"}
	tags       = []string{"new", "sale", "eco", "bestseller", "fragile", "bulky", "gift"}
	statuses   = []string{"new", "paid", "paid", "shipped", "shipped", "shipped", "cancelled", "refunded"}
	methods    = []string{"card", "card", "sepa", "paypal", "wire"}
	eventKinds = []string{"page_view", "page_view", "search", "add_to_cart", "checkout", "login", "logout"}
	actors     = []string{"system", "alice@example.com", "bob@example.com", "api:billing", "api:crm"}
	actions    = []string{"login", "update_customer", "export", "refund", "change_price", "delete_ticket"}
	subjects   = []string{"Where is my order?", "Refund request", "Invoice is wrong", "Can't log in", "Produkt beschädigt", "Question about VAT", "商品について"}
	bodies     = []string{"Hello,\nmy order has not arrived yet.\nThanks", "The invoice shows the wrong address; it should say \"Suite 4\".", "Ich habe ein beschädigtes Paket erhalten. 😞", "Password reset link expired.\r\nPlease resend.", "Can you confirm the 19% VAT rate?", "こんにちは、注文について質問があります。"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// ago is a time up to days before epoch, to the microsecond.
func ago(r *rand.Rand, days int) time.Time {
	return epoch.Add(-time.Duration(r.Int64N(int64(days) * int64(24*time.Hour)))).Truncate(time.Microsecond)
}

func day(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }

// money is an exact numeric with two decimals.
func money(cents int64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(cents), Exp: -2, Valid: true}
}

func uuid(r *rand.Rand) [16]byte {
	var u [16]byte
	for i := range u {
		u[i] = byte(r.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return u
}

// slug keeps the ASCII letters of s, lower-cased, for e-mail addresses.
func slug(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var customerCols = []string{"id", "name", "email", "country", "created_at", "is_vip", "credit_limit", "contact_time", "notes"}

func (g *gen) customer(id int64) []any {
	r := g.rng("customer", id)
	first, last := pick(r, firstNames), pick(r, lastNames)
	row := []any{id, first + " " + last, fmt.Sprintf("%s.%s.%d@example.com", slug(first), slug(last), id), pick(r, countries), ago(r, 365), r.IntN(10) == 0, nil, nil, nil}
	if r.IntN(5) > 0 {
		row[6] = money(50_000 + r.Int64N(5_000_000))
	}
	if r.IntN(3) > 0 {
		row[7] = pgtype.Time{Microseconds: int64(8+r.IntN(10))*3600e6 + int64(r.IntN(4))*15*60e6, Valid: true}
	}
	if r.IntN(5) < 2 {
		row[8] = pick(r, notes)
	}
	return row
}

var productCols = []string{"id", "sku", "name", "price", "weight_kg", "tags", "active"}

func (g *gen) productPrice(id int64) int64 { return 199 + g.rng("product", id).Int64N(49_800) }

func (g *gen) product(id int64) []any {
	r := g.rng("product", id)
	price := 199 + r.Int64N(49_800) // the first draw: see productPrice
	var weight any
	if r.IntN(10) > 0 {
		weight = r.Float64() * 20
	}
	var ts []string
	for _, t := range tags {
		if r.IntN(4) == 0 {
			ts = append(ts, t)
		}
	}
	if ts == nil {
		ts = []string{}
	}
	return []any{int32(id), fmt.Sprintf("SKU-%05d", id), pick(r, adjectives) + " " + pick(r, nouns), money(price), weight, ts, r.IntN(10) > 0}
}

type line struct {
	product             int64
	quantity            int32
	unitCents, discount int64 // discount in percent
}

type order struct {
	id, customer int64
	at           time.Time
	status       string
	country      string
	lines        []line
}

// order regenerates order id; customers and products bound the ids it refers to.
func (g *gen) order(id int64, customers, products int) order {
	r := g.rng("order", id)
	o := order{id: id, customer: 1 + r.Int64N(int64(customers)), at: ago(r, 300), status: pick(r, statuses), country: pick(r, countries)}
	for range 1 + r.IntN(5) {
		p := 1 + r.Int64N(int64(products))
		o.lines = append(o.lines, line{product: p, quantity: int32(1 + r.IntN(4)), unitCents: g.productPrice(p), discount: int64(pick(r, []int{0, 0, 0, 5, 10, 15}))})
	}
	return o
}

var orderCols = []string{"id", "customer_id", "ordered_at", "status", "shipping_country", "delivery_date"}

func (o order) row() []any {
	var delivery any
	if o.status == "shipped" || o.status == "refunded" {
		delivery = day(o.at).AddDate(0, 0, 2+int(o.id%9))
	}
	return []any{o.id, o.customer, o.at, o.status, o.country, delivery}
}

var itemCols = []string{"order_id", "line_no", "product_id", "quantity", "unit_price", "discount"}

func (o order) itemRows() [][]any {
	rows := make([][]any, len(o.lines))
	for i, l := range o.lines {
		rows[i] = []any{o.id, int16(i + 1), int32(l.product), l.quantity, money(l.unitCents), float32(l.discount) / 100}
	}
	return rows
}

// invoiced reports whether the order has an invoice (and so a payment when paid).
func (o order) invoiced() bool { return o.status != "new" && o.status != "cancelled" }

func (o order) amountCents() int64 {
	var sum int64
	for _, l := range o.lines {
		c := int64(l.quantity) * l.unitCents
		sum += c - c*l.discount/100
	}
	return sum
}

var invoiceCols = []string{"id", "order_id", "number", "issued_on", "due_on", "amount", "tax", "currency", "paid_at"}

func (g *gen) invoiceRow(o order) []any {
	issued := day(o.at).AddDate(0, 0, 1)
	amount := o.amountCents()
	var paid any
	if o.status != "paid" || o.id%3 != 0 { // a third of the "paid" orders are still unpaid invoices
		paid = issued.Add(time.Duration(8+o.id%72)*time.Hour + time.Duration(o.id%3600)*time.Second)
	}
	return []any{o.id, o.id, fmt.Sprintf("INV-%s-%07d", strings.ToUpper(g.tenant), o.id), issued, issued.AddDate(0, 0, 30),
		money(amount), money(amount * 19 / 100), currencies[o.country], paid}
}

var paymentCols = []string{"id", "invoice_id", "amount", "method", "received_at", "reference"}

// paymentRows: one payment per paid invoice, two when split.
func (g *gen) paymentRows(o order, inv []any) [][]any {
	if inv[8] == nil {
		return nil
	}
	r := g.rng("payment", o.id)
	total := o.amountCents() + o.amountCents()*19/100
	parts := []int64{total}
	if r.IntN(6) == 0 && total > 1 {
		first := total / 3
		parts = []int64{first, total - first}
	}
	var rows [][]any
	for i, c := range parts {
		var ref any
		m := pick(r, methods)
		if m != "card" {
			ref = fmt.Sprintf("%s-%d-%d", strings.ToUpper(m), o.id, i)
		}
		rows = append(rows, []any{uuid(r), o.id, money(c), m, inv[8].(time.Time).Add(time.Duration(i) * 24 * time.Hour), ref})
	}
	return rows
}

var eventCols = []string{"id", "occurred_at", "customer_id", "kind", "payload", "session_id"}

func (g *gen) event(id int64, customers int) []any {
	r := g.rng("event", id)
	kind := pick(r, eventKinds)
	var customer, session any
	if r.IntN(10) > 0 {
		customer = 1 + r.Int64N(int64(customers))
	}
	if r.IntN(5) > 0 {
		session = uuid(r)
	}
	payload := map[string]any{"ms": r.IntN(2000), "ok": r.IntN(20) > 0}
	switch kind {
	case "page_view":
		payload["path"] = fmt.Sprintf("/products/%d", 1+r.IntN(100))
	case "search":
		payload["q"] = pick(r, []string{"kettle", "chaise longue", "usb-c \"fast\"", "雨傘", ""})
		payload["results"] = r.IntN(50)
	case "add_to_cart", "checkout":
		payload["items"] = []map[string]any{{"sku": fmt.Sprintf("SKU-%05d", 1+r.IntN(80)), "qty": 1 + r.IntN(3)}}
		payload["total"] = float64(r.IntN(100_000)) / 100
	default:
		payload["agent"] = map[string]any{"os": pick(r, []string{"linux", "ios", "android", "windows"}), "version": nil}
	}
	return []any{id, ago(r, 200), customer, kind, mustJSON(payload), session}
}

var attachmentCols = []string{"id", "customer_id", "file_name", "labels", "page_sizes", "content", "sha256", "uploaded_at"}

func (g *gen) attachment(k int64, customers int) []any {
	r := g.rng("attachment", k)
	content := make([]byte, 16+r.IntN(2048))
	for i := range content {
		content[i] = byte(r.UintN(256))
	}
	sum := sha256.Sum256(content)
	var labels, pages any
	if r.IntN(3) > 0 {
		labels = []string{pick(r, []string{"invoice", "contract", "photo", "id-card"}), pick(r, []string{"2025", "signed", "scan", "ÄÖÜ"})}
	}
	if r.IntN(2) == 0 {
		p := make([]int32, 1+r.IntN(5))
		for i := range p {
			p[i] = int32(100 + r.IntN(5000))
		}
		pages = p
	}
	name := pick(r, []string{"scan.pdf", "contrat signé.pdf", "photo 1.jpg", "invoice-2025-03.pdf", "data.bin"})
	return []any{uuid(r), 1 + r.Int64N(int64(customers)), name, labels, pages, content, sum[:], ago(r, 365)}
}

var auditCols = []string{"at", "actor", "action", "detail", "client_ip"}

func (g *gen) audit(k int64) []any {
	r := g.rng("audit", k)
	var detail, ip any
	if r.IntN(4) > 0 {
		// json (not jsonb) keeps this text as written, spaces and key order included.
		detail = fmt.Sprintf(`{"target": %d,  "reason": %q, "z": 1, "a": 2}`, r.IntN(1000), pick(r, []string{"", "user asked", "ticket #12", "nightly"}))
	}
	if r.IntN(3) > 0 {
		ip = fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))
	}
	return []any{ago(r, 365), pick(r, actors), pick(r, actions), detail, ip}
}

var ticketCols = []string{"id", "customer_id", "subject", "body", "priority", "opened_at", "closed_at"}

func (g *gen) ticket(id int64, customers int) []any {
	r := g.rng("ticket", id)
	opened := ago(r, 180)
	var closed any
	if r.IntN(5) > 1 {
		closed = opened.Add(time.Duration(1+r.Int64N(500)) * time.Hour)
	}
	return []any{int32(id), 1 + r.Int64N(int64(customers)), pick(r, subjects), pick(r, bodies), int16(1 + r.IntN(4)), opened, closed}
}

var taxCols = []string{"country", "valid_from", "rate", "note"}

// taxRows: three validity periods per country.
func (g *gen) taxRows() [][]any {
	var rows [][]any
	for i, c := range countries {
		r := g.rng("tax", int64(i))
		for y := 2024; y <= 2026; y++ {
			var note any
			if r.IntN(3) == 0 {
				note = "reduced rate for books: see annex"
			}
			rows = append(rows, []any{c, time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), pgtype.Numeric{Int: big.NewInt(int64(500 + r.IntN(2000))), Exp: -4, Valid: true}, note})
		}
	}
	return rows
}
