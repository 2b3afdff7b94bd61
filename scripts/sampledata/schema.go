package main

// schemaSQL creates the sample schema: twelve tables of the shapes tenant
// databases have (serial keys, a composite key, no key at all, numerics,
// timestamps with and without zone, dates, times, json and jsonb, arrays, uuid,
// bytea, text with quotes, newlines and non-ASCII, a second schema, foreign
// keys) and one table that is always empty.
const schemaSQL = `
CREATE SCHEMA billing;

CREATE TABLE customers (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	email         text NOT NULL UNIQUE,
	country       char(2) NOT NULL,
	created_at    timestamptz NOT NULL,
	is_vip        boolean NOT NULL DEFAULT false,
	credit_limit  numeric(12,2),
	contact_time  time,
	notes         text
);

CREATE TABLE products (
	id         integer PRIMARY KEY,
	sku        varchar(32) NOT NULL UNIQUE,
	name       text NOT NULL,
	price      numeric(10,2) NOT NULL,
	weight_kg  double precision,
	tags       text[] NOT NULL DEFAULT '{}',
	active     boolean NOT NULL
);

CREATE TABLE orders (
	id                bigint PRIMARY KEY,
	customer_id       bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	ordered_at        timestamptz NOT NULL,
	status            text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled', 'refunded')),
	shipping_country  char(2) NOT NULL,
	delivery_date     date
);

CREATE TABLE order_items (
	order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	line_no     smallint NOT NULL,
	product_id  integer NOT NULL REFERENCES products (id),
	quantity    integer NOT NULL,
	unit_price  numeric(10,2) NOT NULL,
	discount    real NOT NULL DEFAULT 0,
	PRIMARY KEY (order_id, line_no)
);

CREATE TABLE invoices (
	id         bigint PRIMARY KEY,
	order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	number     text NOT NULL UNIQUE,
	issued_on  date NOT NULL,
	due_on     date NOT NULL,
	amount     numeric(12,2) NOT NULL,
	tax        numeric(12,2) NOT NULL,
	currency   char(3) NOT NULL,
	paid_at    timestamptz
);

CREATE TABLE payments (
	id           uuid PRIMARY KEY,
	invoice_id   bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
	amount       numeric(12,2) NOT NULL,
	method       text NOT NULL,
	received_at  timestamptz NOT NULL,
	reference    varchar(64)
);

CREATE TABLE events (
	id           bigint PRIMARY KEY,
	occurred_at  timestamptz NOT NULL,
	customer_id  bigint REFERENCES customers (id) ON DELETE SET NULL,
	kind         text NOT NULL,
	payload      jsonb NOT NULL,
	session_id   uuid
);

CREATE TABLE attachments (
	id           uuid PRIMARY KEY,
	customer_id  bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	file_name    text NOT NULL,
	labels       text[],
	page_sizes   integer[],
	content      bytea NOT NULL,
	sha256       bytea NOT NULL,
	uploaded_at  timestamp NOT NULL
);

-- An append-only log with no primary key.
CREATE TABLE audit_log (
	at         timestamptz NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	detail     json,
	client_ip  text
);

CREATE TABLE support_tickets (
	id           integer PRIMARY KEY,
	customer_id  bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	subject      varchar(200) NOT NULL,
	body         text NOT NULL,
	priority     smallint NOT NULL,
	opened_at    timestamptz NOT NULL,
	closed_at    timestamptz
);

-- Always empty.
CREATE TABLE coupons (
	code         text PRIMARY KEY,
	percent_off  smallint NOT NULL,
	valid_until  date NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.tax_rates (
	country     char(2) NOT NULL,
	valid_from  date NOT NULL,
	rate        numeric(5,4) NOT NULL,
	note        text,
	PRIMARY KEY (country, valid_from)
);
`

// tableNames lists the sample tables as schema.table, in creation order.
var tableNames = []string{
	"public.customers", "public.products", "public.orders", "public.order_items",
	"public.invoices", "public.payments", "public.events", "public.attachments",
	"public.audit_log", "public.support_tickets", "public.coupons", "billing.tax_rates",
}
