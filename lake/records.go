package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gocloud.dev/blob"
)

// Records are small write-once JSON objects beside a tenant's snapshots that
// let the event handlers be idempotent under redelivery: which requests were
// published, and which delivery holds a request's work (a claim). They live
// under tenant=<t>/_<kind>/<name>.json, outside every snapshot, so the
// catalog and retention of snapshots never see them.
//
// kind and name are names ([A-Za-z_][A-Za-z0-9_]*, name may also hold '.'
// and '-' between such characters, as request and snapshot ids do).

// PutRecord stores v as the record kind/name of tenant, write-once: a
// record already stored under that name fails with ErrExists.
func (l *Lake) PutRecord(ctx context.Context, tenant, kind, name string, v any) error {
	key, err := recordKey(tenant, kind, name)
	if err != nil {
		return fmt.Errorf("lake: put record: %w", err)
	}
	data, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("lake: put record %q: %w", key, err)
	}
	return l.writeOnce(ctx, key, "application/json", data)
}

// GetRecord decodes the record kind/name of tenant into v; ErrNotFound if
// there is none.
func (l *Lake) GetRecord(ctx context.Context, tenant, kind, name string, v any) error {
	key, err := recordKey(tenant, kind, name)
	if err != nil {
		return fmt.Errorf("lake: get record: %w", err)
	}
	data, err := l.readAll(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("lake: record %q: %w: %v", key, ErrCorrupt, err)
	}
	return nil
}

// RecordNames lists the names of tenant's records of kind that start with
// prefix, sorted.
func (l *Lake) RecordNames(ctx context.Context, tenant, kind, prefix string) ([]string, error) {
	base, err := recordKey(tenant, kind, "x")
	if err != nil {
		return nil, fmt.Errorf("lake: list records: %w", err)
	}
	return l.recordNames(ctx, strings.TrimSuffix(base, "x"+recordExt), prefix)
}

// recordNames lists, sorted, the names of the records directly under the
// key prefix base whose names start with prefix.
func (l *Lake) recordNames(ctx context.Context, base, prefix string) ([]string, error) {
	var out []string
	err := l.list(ctx, &blob.ListOptions{Prefix: base + prefix}, func(obj *blob.ListObject) {
		name := strings.TrimPrefix(obj.Key, base)
		if strings.HasSuffix(name, recordExt) && !strings.Contains(name, "/") {
			out = append(out, strings.TrimSuffix(name, recordExt))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lake: list records %s%s: %w", base, prefix, err)
	}
	sort.Strings(out)
	return out, nil
}

const recordExt = ".json"

func recordKey(tenant, kind, name string) (string, error) {
	if err := validTenant(tenant); err != nil {
		return "", err
	}
	if err := validName("record kind", kind); err != nil {
		return "", err
	}
	if err := validRecordName(name); err != nil {
		return "", err
	}
	return tenantPrefix(tenant) + "_" + kind + "/" + name + recordExt, nil
}

// validRecordName: names joined by '.' or '-' (request ids, snapshot ids,
// target names), never empty parts, so nothing can escape its folder.
func validRecordName(name string) error {
	if name == "" || len(name) > maxNameLength {
		return fmt.Errorf("%w: record name %.80q: want 1 to %d characters", ErrInvalid, name, maxNameLength)
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '.' || r == '-' }) {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return fmt.Errorf("%w: record name %q: only letters, digits, _, . and - are allowed", ErrInvalid, name)
			}
		}
	}
	if strings.Contains(name, "..") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("%w: record name %q: empty part", ErrInvalid, name)
	}
	return nil
}

// LedgerOf returns the raw load records of tenant and target for one
// snapshot, ordered by load id: what a redelivered load event checks before
// loading again.
func (l *Lake) LedgerOf(ctx context.Context, tenant, target, snapshotID string) ([]json.RawMessage, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: read ledger: %w", err)
	}
	if err := validName("target", target); err != nil {
		return nil, fmt.Errorf("lake: read ledger of %s: %w", tenant, err)
	}
	if err := validSnapshotID(snapshotID); err != nil {
		return nil, fmt.Errorf("lake: read ledger of %s: %w", tenant, err)
	}
	return l.ledger(ctx, ledgerPrefix(tenant, target)+snapshotID+".")
}
