package lake_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/lake/laketest"
)

// TestMain doubles as the committer process of TestFileCommitAcrossProcesses.
func TestMain(m *testing.M) {
	if url := os.Getenv("LAKETEST_COMMITTER_URL"); url != "" {
		if err := committer(url, os.Getenv("LAKETEST_COMMITTER_START"), os.Getenv("LAKETEST_COMMITTER_NAME"), os.Getenv("LAKETEST_COMMITTER_PLANS")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// committer waits for the file start to appear, then tries to claim (with
// NewSnapshot), write and commit each manifest in the folder plans (in name
// order) under its own tool version name, printing "won <snapshot id>" for
// each snapshot it claims and commits.
func committer(url, start, name, plans string) error {
	ctx := context.Background()
	lk, err := lake.Open(ctx, url)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(plans, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("committer: never told to start")
		}
	}
	out := bufio.NewWriter(os.Stdout)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var m lake.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		m.ToolVersion = name
		s, err := lk.NewSnapshot(ctx, m.Tenant, m.SnapshotID)
		if errors.Is(err, lake.ErrExists) {
			continue // another process claimed the id
		}
		if err != nil {
			return err
		}
		for ti := range m.Tables {
			tb := &m.Tables[ti]
			p, err := s.CreatePart(ctx, tb.Name, 0)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(p, "part of %s by %s", m.SnapshotID, name); err != nil {
				return err
			}
			p.SetRows(tb.Rows)
			if err := p.Close(); err != nil {
				return err
			}
			tb.Files = []lake.File{p.File()}
		}
		if err := s.Commit(ctx, &m); err != nil {
			return err // the claim's winner must commit
		}
		fmt.Fprintln(out, "won", m.SnapshotID)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	return lk.Close()
}

// TestFileCommitAcrossProcesses races four processes to claim, write and
// commit the same snapshots of a file:// lake: each snapshot must have
// exactly one winner, whose claim, parts and manifest are what is stored.
// (fileblob's own if-not-exists checks and then renames, so it would let two
// win.)
func TestFileCommitAcrossProcesses(t *testing.T) {
	const processes, snapshots = 4, 40
	f := laketest.File(t)
	plans, start := t.TempDir(), filepath.Join(t.TempDir(), "go")
	// Ids of reads that started a moment ago: the processes use the real clock.
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	for i := range snapshots {
		m := laketest.WriteParts(t, laketest.Mem(t).Lake, "acme", lake.SnapshotID(base.Add(time.Duration(i)*time.Second)), []string{"orders"})
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plans, m.SnapshotID+".json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type proc struct {
		cmd *exec.Cmd
		out strings.Builder
	}
	var procs []*proc
	for i := range processes {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(),
			"LAKETEST_COMMITTER_URL=file://"+filepath.ToSlash(f.Dir),
			"LAKETEST_COMMITTER_START="+start,
			"LAKETEST_COMMITTER_PLANS="+plans,
			fmt.Sprintf("LAKETEST_COMMITTER_NAME=process %d", i))
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	winners := map[string][]string{}
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, p.out.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(p.out.String()), "\n") {
			if id, ok := strings.CutPrefix(line, "won "); ok {
				winners[id] = append(winners[id], fmt.Sprintf("process %d", i))
			}
		}
	}
	ids := 0
	for i := range snapshots {
		id := lake.SnapshotID(base.Add(time.Duration(i) * time.Second))
		won := winners[id]
		if len(won) != 1 {
			t.Errorf("snapshot %s won by %v, want exactly one process", id, won)
			continue
		}
		m, err := f.Lake.Manifest(context.Background(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		if m.ToolVersion != won[0] {
			t.Errorf("snapshot %s: stored manifest is from %q, the winner was %q", id, m.ToolVersion, won[0])
		}
		for _, file := range m.Tables[0].Files {
			if err := f.Lake.Verify(context.Background(), file); err != nil {
				t.Errorf("snapshot %s: %v", id, err)
			}
		}
		ids++
	}
	t.Logf("%d snapshots, one winner each; wins per process: %v", ids, countWins(winners))
	checkNoLitter(t, f.Dir)
}

func countWins(winners map[string][]string) map[string]int {
	n := map[string]int{}
	for _, w := range winners {
		for _, p := range w {
			n[p]++
		}
	}
	return n
}

// checkNoLitter fails if the lake folder holds temporary files, attribute
// sidecars or empty folders.
func checkNoLitter(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".tmp") || strings.HasSuffix(path, ".attrs") {
			t.Errorf("litter in the lake: %s", path)
		}
		if d.IsDir() && path != dir {
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				t.Errorf("empty folder left in the lake: %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFileLeavesNoLitter runs every kind of write, failed write and
// deletion on a file:// lake and checks that no temporary file, sidecar or
// empty folder is left in it.
func TestFileLeavesNoLitter(t *testing.T) {
	ctx := context.Background()
	f := laketest.File(t)
	now := time.Now()
	var ids []string
	for d := 3; d >= 0; d-- {
		id := lake.SnapshotID(now.Add(-time.Duration(d) * 24 * time.Hour))
		ids = append(ids, id)
		laketest.WriteSnapshot(t, f.Lake, "acme", id, []string{"orders", "items"}, 2, 1)
	}
	orphan := lake.SnapshotID(now.Add(-time.Hour))
	s, _ := laketest.StartSnapshot(t, f.Lake, "acme", orphan, []string{"orders"})
	if _, err := f.Lake.WithClock(laketest.ClockAt(t, orphan)).NewSnapshot(ctx, "acme", orphan); !errors.Is(err, lake.ErrExists) {
		t.Errorf("second claim: %v, want ErrExists", err)
	}
	p, err := s.CreatePart(ctx, "orders", 0) // exists: fails at Close
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, lake.ErrExists) {
		t.Errorf("second part: %v, want ErrExists", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	p, err = s.CreatePart(cctx, "orders", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("cancelled")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := p.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled part: %v, want context.Canceled", err)
	}
	m, err := f.Lake.Manifest(ctx, "acme", ids[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Lake.WriteLedger(ctx, "acme", "bigquery", ids[3], "load_1", m); err != nil {
		t.Fatal(err)
	}
	if err := f.Lake.WriteLedger(ctx, "acme", "bigquery", ids[3], "load_1", m); !errors.Is(err, lake.ErrExists) {
		t.Errorf("second ledger record: %v, want ErrExists", err)
	}
	checkNoLitter(t, f.Dir)

	rep, err := f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1, OrphanGrace: lake.MinOrphanGrace}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DeletedSnapshots) != 3 || len(rep.SweptOrphans) != 1 {
		t.Errorf("GC report %+v: want 3 snapshots deleted and 1 orphan swept", rep)
	}
	checkNoLitter(t, f.Dir)
	// The seal of the swept orphan goes SealKeep later.
	rep, err = f.Lake.GC(ctx, "acme", lake.Policy{KeepLast: 1, OrphanGrace: lake.MinOrphanGrace}, now.Add(time.Hour+lake.SealKeep))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.SweptOrphans) != 1 || rep.DeletedObjects != 1 {
		t.Errorf("GC report %+v: want the orphan's seal swept", rep)
	}
	checkNoLitter(t, f.Dir)
	var left []string
	for _, k := range f.Keys(t) {
		left = append(left, strings.TrimPrefix(k, f.Root))
	}
	want := []string{
		"tenant=acme/_loads/target=bigquery/" + ids[3] + ".load_1.json",
		lake.ManifestKey("acme", ids[3]),
		lake.ClaimKey("acme", ids[3]),
		lake.PartKey("acme", ids[3], "items", 0),
		lake.PartKey("acme", ids[3], "orders", 0),
		lake.PartKey("acme", ids[3], "orders", 1),
	}
	sort.Strings(want)
	if strings.Join(left, "\n") != strings.Join(want, "\n") {
		t.Errorf("left in the lake:\n%s\nwant:\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
	}
}

// TestFileCrashedWriterTempFile: a writer killed mid-part leaves its
// temporary file in the snapshot folder. It is invisible to the catalog and
// swept with the orphan snapshot once its id is older than the grace period.
func TestFileCrashedWriterTempFile(t *testing.T) {
	ctx := context.Background()
	f := laketest.File(t)
	good := laketest.WriteSnapshot(t, f.Lake, "acme", "20261121T020304.123Z", []string{"orders"})
	crashed := "20261121T030000.000Z"
	laketest.WriteParts(t, f.Lake, "acme", crashed, []string{"orders"})
	tmp := filepath.Join(f.Dir, filepath.FromSlash(lake.PartKey("acme", crashed, "orders", 1))) + ".k3j2h1.tmp"
	if err := os.WriteFile(tmp, []byte("half a part"), 0o644); err != nil {
		t.Fatal(err)
	}
	snaps, err := f.Lake.Snapshots(ctx, "acme")
	if err != nil || len(snaps) != 1 || snaps[0].SnapshotID != good.SnapshotID {
		t.Fatalf("Snapshots = %v, %v; want only %s", snaps, err, good.SnapshotID)
	}
	at, _ := lake.ParseSnapshotID(crashed)
	if _, err := f.Lake.GC(ctx, "acme", lake.Policy{OrphanGrace: time.Hour}, at.Add(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("temporary file swept within the grace period: %v", err)
	}
	rep, err := f.Lake.GC(ctx, "acme", lake.Policy{OrphanGrace: time.Hour}, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.SweptOrphans) != 1 || rep.DeletedObjects != 3 {
		t.Errorf("GC report %+v: want the crashed snapshot's claim, part and temporary file swept", rep)
	}
	checkNoLitter(t, f.Dir)
	m, err := f.Lake.Manifest(ctx, "acme", good.SnapshotID)
	if err != nil || m.ToolVersion != good.ToolVersion {
		t.Errorf("committed snapshot after GC: %v", err)
	}
}

// TestFileForeignFolders: folders in the lake whose names are not valid
// tenant or snapshot folders are ignored by the catalog and left alone by GC.
func TestFileForeignFolders(t *testing.T) {
	ctx := context.Background()
	f := laketest.File(t)
	good := laketest.WriteSnapshot(t, f.Lake, "acme", "20261121T020304.123Z", []string{"orders"})
	foreign := []string{
		"tenant=ACME/snapshot=20261121T020304.123Z/_manifest.json",
		"tenant=a cme/snapshot=20261121T020304.123Z/_manifest.json",
		"tenant=acme/snapshot=yesterday/_manifest.json",
		"tenant=acme/notes.txt",
		"README",
	}
	for _, k := range foreign {
		path := filepath.Join(f.Dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := f.Lake.TenantFolders(ctx)
	if err != nil || strings.Join(ts, ",") != "acme" {
		t.Errorf("TenantFolders = %v, %v; want [acme]", ts, err)
	}
	snaps, err := f.Lake.Snapshots(ctx, "acme")
	if err != nil || len(snaps) != 1 || snaps[0].SnapshotID != good.SnapshotID {
		t.Errorf("Snapshots = %v, %v; want only %s", snaps, err, good.SnapshotID)
	}
	if _, err := f.Lake.GCAll(ctx, lake.Policy{KeepLast: 1}, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range foreign {
		if _, err := os.Stat(filepath.Join(f.Dir, filepath.FromSlash(k))); err != nil {
			t.Errorf("GC touched %s: %v", k, err)
		}
	}
}
