package lake

import (
	"context"
	"encoding/json"
	"fmt"
)

// A read may be shared by several processes (the tasks of a distributed
// read, readers/postgres): one claims the snapshot with NewSnapshot, the
// others join it with JoinSnapshot and write their parts into it, and they
// coordinate through the snapshot's records, small write-once JSON objects
// under tenant=<t>/snapshot=<id>/_read/<name>.json. The records are part of
// the snapshot's folder: the catalog never shows them, and retention deletes
// or sweeps them with the snapshot.

const sharedDir = "_read/"

// JoinSnapshot returns the Snapshot of id, which another process of the same
// read claimed with NewSnapshot and has not committed, so that this process
// can write parts and records into it. It fails with ErrNotFound if id was
// never claimed, with ErrExists if the snapshot is committed or sealed by
// GC, and with ErrExpired once the id is MaxReadDuration old.
func (l *Lake) JoinSnapshot(ctx context.Context, tenant, id string) (*Snapshot, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: join snapshot: %w", err)
	}
	start, err := ParseSnapshotID(id)
	if err != nil {
		return nil, fmt.Errorf("lake: join snapshot of %s: %w", tenant, err)
	}
	s := &Snapshot{lake: l, tenant: tenant, id: id, start: start}
	if err := s.checkAge("join snapshot"); err != nil {
		return nil, err
	}
	key := ManifestKey(tenant, id)
	ok, err := l.bucket.Exists(ctx, key)
	if err != nil {
		return nil, wrap("check", key, err)
	}
	if ok {
		return nil, fmt.Errorf("lake: join snapshot %s/%s: %w: it is committed (or sealed by GC)", tenant, id, ErrExists)
	}
	key = ClaimKey(tenant, id)
	ok, err = l.bucket.Exists(ctx, key)
	if err != nil {
		return nil, wrap("check", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("lake: join snapshot %s/%s: %w: no read claimed it", tenant, id, ErrNotFound)
	}
	return s, nil
}

// Committed reports whether the snapshot has been committed (a manifest
// that is not GC's empty seal).
func (s *Snapshot) Committed(ctx context.Context) (bool, error) {
	return s.lake.isCommitted(ctx, s.tenant, s.id)
}

func (s *Snapshot) recordKey(name string) (string, error) {
	if err := validRecordName(name); err != nil {
		return "", fmt.Errorf("lake: snapshot record of %s/%s: %w", s.tenant, s.id, err)
	}
	return SnapshotPrefix(s.tenant, s.id) + sharedDir + name + recordExt, nil
}

// PutRecord stores v as the snapshot's record name, write-once: a record
// already stored under that name fails with ErrExists and is kept. Names
// follow the rule of Lake.PutRecord. Once the snapshot id is
// MaxReadDuration old it fails with ErrExpired.
func (s *Snapshot) PutRecord(ctx context.Context, name string, v any) error {
	key, err := s.recordKey(name)
	if err != nil {
		return err
	}
	if err := s.checkAge("put record"); err != nil {
		return err
	}
	data, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("lake: put record %q: %w", key, err)
	}
	return s.lake.writeOnce(ctx, key, "application/json", data)
}

// GetRecord decodes the snapshot's record name into v; ErrNotFound if there
// is none.
func (s *Snapshot) GetRecord(ctx context.Context, name string, v any) error {
	key, err := s.recordKey(name)
	if err != nil {
		return err
	}
	data, err := s.lake.readAll(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("lake: record %q: %w: %v", key, ErrCorrupt, err)
	}
	return nil
}

// RecordNames lists the names of the snapshot's records that start with
// prefix, sorted.
func (s *Snapshot) RecordNames(ctx context.Context, prefix string) ([]string, error) {
	return s.lake.recordNames(ctx, SnapshotPrefix(s.tenant, s.id)+sharedDir, prefix)
}
