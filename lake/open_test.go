package lake_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/lake/laketest"
)

func TestOpenRejects(t *testing.T) {
	for _, u := range []string{
		"s3://bucket/x",
		"http://example.com/lake",
		"gs://user:secret@bucket/x",
		"file://user:secret@/var/lib/x",
		"file://otherhost/var/lib/x",
		"/var/lib/tenantlake",
		"::",
		"gs://user:secret@bucket:notaport/x", // does not parse
		"gs://user:secret%zz@bucket/x",
		"file://user:secret@[::1/x",
	} {
		lk, err := lake.Open(context.Background(), u)
		if !errors.Is(err, lake.ErrInvalid) {
			t.Errorf("Open(%q) = %v, %v; want ErrInvalid", u, lk, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): the error shows the password: %v", u, err)
		}
	}
}

// TestOpenExisting: OpenExisting refuses a missing file:// folder, naming
// it, and creates nothing; an existing one opens as with Open.
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	missing := filepath.Join(base, "typo", "lake")
	_, err := lake.OpenExisting(ctx, "file://"+filepath.ToSlash(missing))
	if !errors.Is(err, lake.ErrNotFound) || !strings.Contains(err.Error(), "folder "+missing+" does not exist") {
		t.Errorf("OpenExisting of a missing folder = %v, want ErrNotFound naming %s", err, missing)
	}
	if _, err := os.Stat(filepath.Join(base, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenExisting created %s: %v", filepath.Join(base, "typo"), err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := lake.OpenExisting(ctx, "file://"+filepath.ToSlash(file)); !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("OpenExisting of a file = %v, want ErrInvalid", err)
	}
	for _, u := range []string{"file://" + filepath.ToSlash(base), "mem://"} {
		lk, err := lake.OpenExisting(ctx, u)
		if err != nil {
			t.Errorf("OpenExisting(%s): %v", u, err)
			continue
		}
		if _, err := lk.Tenants(ctx); err != nil {
			t.Errorf("OpenExisting(%s): Tenants: %v", u, err)
		}
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestOpenFile: Open creates the folder, and the lake's URL and manifest URLs
// are file URLs without the opener's query.
func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "lake")
	lk, err := lake.Open(ctx, "file://"+filepath.ToSlash(dir)+"?dir_file_mode=0750")
	if err != nil {
		t.Fatal(err)
	}
	laketest.WriteSnapshot(t, lk, "acme", "20261121T020304.123Z", []string{"orders"})
	want := "file://" + filepath.ToSlash(dir) + "/tenant=acme/snapshot=20261121T020304.123Z/_manifest.json"
	if got := lk.ManifestURL("acme", "20261121T020304.123Z"); got != want {
		t.Errorf("ManifestURL = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "tenant=acme", "snapshot=20261121T020304.123Z", "_manifest.json")); err != nil {
		t.Error(err)
	}
	// dir_file_mode applies to the folders the lake makes, as in fileblob.
	for _, d := range []string{dir, filepath.Join(dir, "tenant=acme", "snapshot=20261121T020304.123Z", "table=orders")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&^0o750 != 0 {
			t.Errorf("folder %s has mode %v, want no permissions beyond 0750", d, st.Mode())
		}
	}
	if _, ok := lk.GCSURI("x"); ok {
		t.Error("GCSURI of a file lake is ok")
	}
	if err := lk.Close(); err != nil {
		t.Error(err)
	}
}

// TestOpenGCS opens gs://bucket/prefix with lake.Open, as production does,
// against an in-process fake-gcs-server named by STORAGE_EMULATOR_HOST: the
// keys land under the prefix, and GCSURI/ManifestURL name them.
func TestOpenGCS(t *testing.T) {
	ctx := context.Background()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1",
		PublicHost: "127.0.0.1", // serve the XML API reads the storage client sends to an emulator
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "prod-lake"})
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	lk, err := lake.Open(ctx, "gs://prod-lake/tenantlake/v1/")
	if err != nil {
		t.Fatal(err)
	}
	m := laketest.WriteSnapshot(t, lk, "acme", "20261121T020304.123Z", []string{"orders"})
	snaps, err := lk.Snapshots(ctx, "acme")
	if err != nil || len(snaps) != 1 {
		t.Fatalf("Snapshots = %v, %v", snaps, err)
	}
	part := m.Tables[0].Files[0]
	if err := lk.Verify(ctx, part); err != nil {
		t.Error(err)
	}
	res, err := srv.ListObjectsWithOptionsPaginated("prod-lake", fakestorage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range res.Objects {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	wantNames := []string{"tenantlake/v1/" + lake.ClaimKey("acme", m.SnapshotID), "tenantlake/v1/" + lake.ManifestKey("acme", m.SnapshotID), "tenantlake/v1/" + part.Path}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("objects in the bucket: %v, want %v", names, wantNames)
	}
	if uri, ok := lk.GCSURI(part.Path); !ok || uri != "gs://prod-lake/tenantlake/v1/"+part.Path {
		t.Errorf("GCSURI = %q, %v", uri, ok)
	}
	if u := lk.ManifestURL("acme", m.SnapshotID); u != "gs://prod-lake/tenantlake/v1/"+lake.ManifestKey("acme", m.SnapshotID) {
		t.Errorf("ManifestURL = %q", u)
	}
	if err := lk.Close(); err != nil {
		t.Error(err)
	}
}
