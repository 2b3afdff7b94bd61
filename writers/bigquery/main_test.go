package bigquery

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/internal/pgtest"
)

// The test binary runs every test against three real parts started here:
// the BigQuery emulator command (goccy/bigquery-emulator, built by
// scripts/bigquery-emulator.sh into .cache/bin), an in-process
// fake-gcs-server that the emulator reads gs:// lake parts from
// (STORAGE_EMULATOR_HOST, also honoured by the lake's gs:// opener), and a
// throwaway PostgreSQL (internal/pgtest) that the reader snapshots from.

const (
	emuProject = "tenantlake-test"
	lakeBucket = "lake"
)

var (
	emuEndpoint string // http://127.0.0.1:PORT of the emulator
	setCounter  atomic.Int64
)

func TestMain(m *testing.M) {
	if err := startServices(); err != nil {
		fmt.Fprintln(os.Stderr, "writers/bigquery tests:", err)
		os.Exit(1)
	}
	// pgtest.Main runs the tests and exits; the emulator is a child started
	// with a parent-death signal, so it stops with this process.
	pgtest.Main(m)
}

func startServices() error {
	bin := filepath.Join(pgtest.RepoRoot(), ".cache", "bin", "bigquery-emulator")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("the BigQuery emulator command is missing (%v): build it with scripts/bigquery-emulator.sh (make test does)", err)
	}
	gcsPort, err := freePort()
	if err != nil {
		return err
	}
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: uint16(gcsPort), PublicHost: "127.0.0.1:" + strconv.Itoa(gcsPort),
	})
	if err != nil {
		return fmt.Errorf("fake-gcs-server: %w", err)
	}
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: lakeBucket})
	gcsURL := "http://127.0.0.1:" + strconv.Itoa(gcsPort)
	if err := os.Setenv("STORAGE_EMULATOR_HOST", gcsURL); err != nil {
		return err
	}

	httpPort, err := freePort()
	if err != nil {
		return err
	}
	grpcPort, err := freePort()
	if err != nil {
		return err
	}
	// Pdeathsig is delivered when the thread that started the child exits:
	// keep TestMain's goroutine on its thread for the life of the process.
	runtime.LockOSThread()
	cmd := exec.Command(bin, "--project="+emuProject, "--host=127.0.0.1",
		"--port="+strconv.Itoa(httpPort), "--grpc-port="+strconv.Itoa(grpcPort), "--log-level=error")
	cmd.Env = append(os.Environ(), "STORAGE_EMULATOR_HOST="+gcsURL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	emuEndpoint = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(emuEndpoint + "/bigquery/v2/projects/" + emuProject + "/datasets")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited before answering: %v", bin, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within 60s", bin, emuEndpoint)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// emulatorConfig returns a Config for the emulator whose datasets no other
// test uses: the emulator is shared by the whole test binary.
func emulatorConfig(t testing.TB) Config {
	n := setCounter.Add(1)
	p := fmt.Sprintf("s%d_", n)
	return Config{
		Project:           emuProject,
		DatasetTemplate:   p + "tenant_" + TenantPlaceholder,
		StagingDataset:    p + "staging",
		AllTenantsDataset: p + "all_tenants",
		LedgerDataset:     p + "ledger",
		Promotion:         PromoteCTAS, // the emulator has no copy jobs
		Labels:            map[string]string{"env": "test"},
		ClientOptions:     []option.ClientOption{option.WithEndpoint(emuEndpoint), option.WithoutAuthentication()},
	}
}

// newEmulatorWriter returns a Writer on the emulator, closed when t ends.
func newEmulatorWriter(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	return w
}
