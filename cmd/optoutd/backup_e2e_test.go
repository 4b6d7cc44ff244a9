package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/optoutd/optoutd"
	"github.com/optoutd/optoutd/api"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/cluster/clustertest"
	"github.com/optoutd/optoutd/fsm"
	"github.com/optoutd/optoutd/store"
	"google.golang.org/protobuf/proto"
)

// These tests run the backup, restore and recover commands of
// docs/operations.md ("Backup and restore", "Disaster recovery (lost
// quorum)") as real processes: optoutd and optoutctl binaries on loopback.

var (
	ctlOnce sync.Once
	ctlPath string
	ctlErr  error
)

// ctlBinary builds optoutctl next to the optoutd test binary.
func ctlBinary(t *testing.T) string {
	t.Helper()
	bin := binary(t)
	ctlOnce.Do(func() {
		ctlPath = filepath.Join(filepath.Dir(bin), "optoutctl")
		out, err := exec.Command("go", "build", "-o", ctlPath, "../optoutctl").CombinedOutput()
		if err != nil {
			ctlErr = fmt.Errorf("go build optoutctl: %w\n%s", err, out)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	return ctlPath
}

// run runs a binary to completion and returns its stdout and stderr.
func run(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// mustFail runs a command that must exit 1 and say want on stderr.
func mustFail(t *testing.T, want string, bin string, args ...string) {
	t.Helper()
	out, errOut, err := run(t, bin, args...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("%s %s: want exit 1, got %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out, errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Fatalf("%s %s: stderr lacks %q:\n%s", filepath.Base(bin), strings.Join(args, " "), want, errOut)
	}
}

type backupHeader struct {
	File         string `json:"file"`
	SizeBytes    int64  `json:"sizeBytes"`
	AppliedIndex uint64 `json:"appliedIndex"`
	AppliedTerm  uint64 `json:"appliedTerm"`
	Records      uint64 `json:"records"`
	StateBytes   uint64 `json:"stateBytes"`
	CreatedAt    string `json:"createdAt"`
	Checksum     string `json:"checksum"`
}

func parseHeader(t *testing.T, out string) backupHeader {
	t.Helper()
	var h backupHeader
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("optoutctl printed %q: %v", out, err)
	}
	return h
}

// loadProcCluster writes n subjects through the API: every one opts out,
// every fifth re-consents (compare-and-set opt-in), every seventh is
// erased. It returns the subjects.
func loadProcCluster(t *testing.T, ctx context.Context, c *client.Client, n, workers int) []string {
	t.Helper()
	subjects := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s := fmt.Sprintf("subject-%07d", i)
				subjects[i] = s
				if err := loadOne(ctx, c, s, i); err != nil {
					errs <- fmt.Errorf("%s: %w", s, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return subjects
}

func loadOne(ctx context.Context, c *client.Client, s string, i int) error {
	r, err := setRetry(ctx, c, &optoutv1.SetRequest{SubjectId: s, Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT, Source: "backup-test", IdempotencyKey: s + "-out"})
	if err != nil {
		return err
	}
	if i%5 == 0 {
		v := r.Version
		if _, err := setRetry(ctx, c, &optoutv1.SetRequest{SubjectId: s, Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_IN, Source: "backup-test", Reason: "re-consent", ExpectedVersion: &v, IdempotencyKey: s + "-in"}); err != nil {
			return err
		}
	}
	if i%7 == 0 {
		return eraseRetry(ctx, c, s)
	}
	return nil
}

// eraseRetry erases s, retrying through leader changes. EraseSubject takes
// no idempotency key, so a retry after an unknown outcome may find the
// first attempt applied: "already erased" then means done. Only after an
// unknown outcome: otherwise it would hide a double erasure.
func eraseRetry(ctx context.Context, c *client.Client, s string) error {
	unknown := false
	for try := 0; ; try++ {
		_, err := c.EraseSubject(ctx, &optoutv1.EraseSubjectRequest{SubjectId: s, Reason: "art. 17"})
		if unknown && connect.CodeOf(err) == connect.CodeFailedPrecondition && strings.Contains(err.Error(), "already erased") {
			return nil
		}
		if err == nil || try == 20 || !retriable(err) {
			return err
		}
		if connect.CodeOf(err) != connect.CodeUnavailable {
			unknown = true // unavailable promises "not applied"; the rest do not
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setRetry retries a write with an idempotency key through leader changes
// (a loaded machine has them): the key makes it apply once.
func setRetry(ctx context.Context, c *client.Client, req *optoutv1.SetRequest) (*optoutv1.SetResponse, error) {
	for try := 0; ; try++ {
		r, err := c.Set(ctx, req)
		if err == nil || try == 20 || !retriable(err) {
			return r, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func retriable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

// subjectView is what the API shows of one subject: its record (or the
// error code) and its whole history.
type subjectView struct {
	record  *optoutv1.Record
	code    connect.Code
	history []*optoutv1.AuditEntry
}

func viewSubject(t *testing.T, ctx context.Context, c *client.Client, s string) subjectView {
	t.Helper()
	var v subjectView
	g, err := c.Get(ctx, &optoutv1.GetRequest{SubjectId: s, Purpose: "email_marketing"})
	if err != nil {
		v.code = connect.CodeOf(err)
	} else {
		v.record = g.Record
	}
	token := ""
	for {
		h, err := c.History(ctx, &optoutv1.HistoryRequest{SubjectId: s, PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("history of %s: %v", s, err)
		}
		v.history = append(v.history, h.Entries...)
		if token = h.NextPageToken; token == "" {
			return v
		}
	}
}

func sameView(a, b subjectView) bool {
	if a.code != b.code || !proto.Equal(a.record, b.record) || len(a.history) != len(b.history) {
		return false
	}
	for i := range a.history {
		if !proto.Equal(a.history[i], b.history[i]) {
			return false
		}
	}
	return true
}

// settledDigest polls until every live node reports the same applied
// index, at least min, and the same digest, and returns it.
func (pc *procCluster) settledDigest(ctx context.Context, min uint64) *optoutv1.StateDigestResponse {
	pc.t.Helper()
	for {
		var first *optoutv1.StateDigestResponse
		same := true
		for _, p := range pc.procs {
			if p.cmd == nil {
				continue
			}
			d, err := pc.clientOf(p).StateDigestOf(ctx, 0)
			if err != nil {
				same = false
				break
			}
			if first == nil {
				first = d
			}
			if d.AppliedIndex < min || d.AppliedIndex != first.AppliedIndex || d.Sha256 != first.Sha256 {
				same = false
			}
		}
		if same && first != nil {
			return first
		}
		if ctx.Err() != nil {
			pc.t.Fatal("nodes never agreed on one state digest")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restoreProcCluster runs 'optoutd restore FILE' for three new nodes on new
// ports, under root, and starts them.
// check, if set, runs after each restore; starting, if set, just before
// the first node starts.
func restoreProcCluster(t *testing.T, file, root string, check func(dataDir string), starting ...func()) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, bin: binary(t)}
	addrs := freePorts(t, 6)
	var initial []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=%s", i+1, addrs[3+i]))
	}
	ic := strings.Join(initial, ",")
	for i := 0; i < 3; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), api: addrs[i], raft: addrs[3+i]}
		dir := filepath.Join(root, p.id)
		out := mustRun(t, pc.bin, "restore", file, "--data-dir", dir, "--id", p.id, "--raft-addr", p.raft, "--initial-cluster", ic)
		if !strings.Contains(out, "restored "+file+" into "+dir+" for node "+p.id) {
			t.Fatalf("restore printed %q", out)
		}
		if check != nil {
			check(dir)
		}
		p.args = []string{"server", "--id", p.id, "--data-dir", dir, "--api-addr", p.api, "--raft-addr", p.raft, "--initial-cluster", ic}
		pc.procs = append(pc.procs, p)
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.kill(p)
		}
		if t.Failed() {
			for _, p := range pc.procs {
				if p.log != nil {
					t.Logf("--- restored %s log (tail) ---\n%s", p.id, tail(p.log.String(), 3000))
				}
			}
		}
	})
	for _, f := range starting {
		f()
	}
	for _, p := range pc.procs {
		pc.start(p)
	}
	pc.waitReady(5 * time.Minute)
	return pc
}

func fileDigest(t *testing.T, path string) (string, uint64) {
	t.Helper()
	f, err := fsm.Open(fsm.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum [32]byte
	var idx uint64
	if err := f.View(func(r *fsm.Reader) (err error) {
		idx = r.AppliedIndex()
		sum, _, err = r.Digest()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sum), idx
}

// TestBackupRestoreIntoFreshProcessCluster: a backup saved from a loaded
// three-process cluster, restored into three new processes on new ports,
// is the source's state: the restored fsm.db files hash (full-state
// digest, erasure key included) to the source's digest at the backup's
// index before the nodes start, and once they run, every subject's record
// and history and the audit chain read the same through the API.
func TestBackupRestoreIntoFreshProcessCluster(t *testing.T) {
	ctl := ctlBinary(t)
	src := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	subjects := loadProcCluster(t, ctx, src.all(), 3000, 16)
	want := src.settledDigest(ctx, 0)

	leader := src.leader(ctx)
	follower := src.followers(leader)[0]
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	saved := parseHeader(t, mustRun(t, ctl, "--endpoints", follower.api, "snapshot", "save", file))
	if saved.AppliedIndex != want.AppliedIndex || saved.Records != want.Records || saved.Checksum != "ok" || saved.CreatedAt == "" {
		t.Fatalf("saved %+v; source digest at %d with %d records", saved, want.AppliedIndex, want.Records)
	}
	if _, err := os.Stat(file + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FILE.tmp left behind: %v", err)
	}
	inspected := parseHeader(t, mustRun(t, ctl, "snapshot", "inspect", file))
	if inspected != saved {
		t.Fatalf("inspect %+v, save %+v", inspected, saved)
	}

	srcClient := src.clientOf(follower)
	before := make([]subjectView, len(subjects))
	for i, s := range subjects {
		before[i] = viewSubject(t, ctx, srcClient, s)
	}
	srcAudit, err := srcClient.VerifyAudit(ctx)
	if err != nil || !srcAudit.Ok {
		t.Fatalf("source audit: %v %v", srcAudit, err)
	}
	for _, p := range src.procs {
		src.kill(p)
	}

	dst := restoreProcCluster(t, file, filepath.Join(dir, "restored"), func(dataDir string) {
		if out := mustRun(t, binary(t), "audit-verify", "--data-dir", dataDir); !strings.Contains(out, "audit chain OK") {
			t.Fatalf("audit-verify printed %q", out)
		}
		if sum, idx := fileDigest(t, filepath.Join(dataDir, "fsm.db")); sum != want.Sha256 || idx != want.AppliedIndex {
			t.Fatalf("restored %s: digest %s at %d; source %s at %d", dataDir, sum, idx, want.Sha256, want.AppliedIndex)
		}
	})
	// The new cluster takes writes, at versions above the backup's, and
	// its three nodes converge on one state.
	r, err := dst.all().Set(ctx, &optoutv1.SetRequest{SubjectId: "after-restore", Purpose: "email_marketing", State: optoutv1.State_STATE_OPTED_OUT})
	if err != nil || r.Version <= want.AppliedIndex {
		t.Fatalf("write after restore: %v %v (its version must exceed the backup's %d)", r, err, want.AppliedIndex)
	}
	dst.settledDigest(ctx, r.Version)
	for _, p := range dst.procs {
		c := dst.clientOf(p)
		for i, s := range subjects {
			if p != dst.procs[0] && i%10 != 0 {
				continue // every subject on n1, a tenth on the others
			}
			if v := viewSubject(t, ctx, c, s); !sameView(v, before[i]) {
				t.Fatalf("%s: subject %s differs after restore:\nbefore %+v\nafter  %+v", p.id, s, before[i], v)
			}
		}
		a, err := c.VerifyAudit(ctx)
		// The source's chain plus the one write made after the restore.
		if err != nil || !a.Ok || a.Entries != srcAudit.Entries+1 || a.FirstVersion != srcAudit.FirstVersion || a.LastVersion != r.Version {
			t.Fatalf("%s: audit %v (%v); source %v, then one write at %d", p.id, a, err, srcAudit, r.Version)
		}
	}
}

// validBackupFile writes a small valid backup from an in-process node.
func validBackupFile(t *testing.T, path string) []byte {
	t.Helper()
	c := clustertest.New(t, 1)
	n := c.WaitLeader(10 * time.Second)
	ctx := clustertest.Ctx(t, 30*time.Second)
	for i := 0; i < 50; i++ {
		if _, err := store.New(n).Set(ctx, optoutd.SetRequest{Key: optoutd.Key{SubjectID: fmt.Sprintf("u%d", i), Purpose: "email_marketing"}, State: optoutd.StateOptedOut}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := store.New(n).Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	c.StopAll()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// backuperFunc serves AdminService.Snapshot from a function.
type backuperFunc func(ctx context.Context, w io.Writer) (uint64, error)

func (f backuperFunc) Backup(ctx context.Context, w io.Writer) (uint64, error) { return f(ctx, w) }

// serveAPI serves the real API handler (HTTP/1.1 and h2c, as optoutd
// does) over noStore and returns its address.
func serveAPI(t *testing.T, opts api.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(ln.Addr().String(), api.NewHandler(noStore{}, opts))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// noStore is an api.Store no test call reaches.
type noStore struct{ api.Store }

func (noStore) Ready() error { return nil }

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestBadBackupsAreRefused: a corrupt and a truncated file are refused by
// 'optoutctl snapshot inspect' and 'optoutd restore' (exit 1, a clear
// message, no data directory created), a corrupt or truncated download by
// 'optoutctl snapshot save' (exit 1, neither FILE nor FILE.tmp left), and
// restore refuses a non-empty data directory without touching it.
func TestBadBackupsAreRefused(t *testing.T) {
	ctl, bin := ctlBinary(t), binary(t)
	dir := t.TempDir()
	good := validBackupFile(t, filepath.Join(dir, "good.snap"))
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0x01
	bad := map[string][]byte{"corrupt": corrupt, "truncated": good[:len(good)-100]}
	ic := "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103"

	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name+".snap")
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"corrupt": "SHA-256 mismatch", "truncated": "truncated"}[name]
			mustFail(t, want, ctl, "snapshot", "inspect", file)
			mustFail(t, "do not restore from it", ctl, "snapshot", "inspect", file)

			root := filepath.Join(dir, name+"-restore")
			if err := os.Mkdir(root, 0o700); err != nil {
				t.Fatal(err)
			}
			mustFail(t, want, bin, "restore", file, "--data-dir", filepath.Join(root, "data", "n1"), "--id", "n1", "--raft-addr", "127.0.0.1:7101", "--initial-cluster", ic)
			if left := listDir(t, root); len(left) != 0 {
				t.Fatalf("restore of a %s file left %v", name, left)
			}

			// The same bytes as a download: save verifies before it renames.
			ep := serveAPI(t, api.Options{Backups: backuperFunc(func(_ context.Context, w io.Writer) (uint64, error) {
				_, err := w.Write(b)
				return 1, err
			})})
			out := filepath.Join(root, "download.snap")
			mustFail(t, "does not verify", ctl, "--endpoints", ep, "snapshot", "save", out)
			if left := listDir(t, root); len(left) != 0 {
				t.Fatalf("save of a %s download left %v", name, left)
			}
		})
	}

	t.Run("non-empty data dir", func(t *testing.T) {
		data := filepath.Join(dir, "busy")
		if err := os.MkdirAll(filepath.Join(data, "snapshots"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "fsm.db"), []byte("live"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustFail(t, "is not empty", bin, "restore", filepath.Join(dir, "good.snap"), "--data-dir", data, "--id", "n1", "--raft-addr", "127.0.0.1:7101", "--initial-cluster", ic)
		if got := strings.Join(listDir(t, data), ","); got != "fsm.db,snapshots" {
			t.Fatalf("data dir now holds %s", got)
		}
		if b, _ := os.ReadFile(filepath.Join(data, "fsm.db")); string(b) != "live" {
			t.Fatalf("fsm.db changed to %q", b)
		}
	})
}

// TestBackupCommandsBadFlags: restore and recover name the bad flag and
// touch nothing.
func TestBackupCommandsBadFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "n1")
	ic := "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103"
	restore := func(args ...string) []string {
		return append([]string{"restore", file, "--data-dir", data, "--id", "n1", "--raft-addr", "127.0.0.1:7101", "--initial-cluster", ic}, args...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"restore no file", []string{"restore", "--data-dir", data, "--id", "n1", "--initial-cluster", ic}, "usage: optoutd restore FILE"},
		{"restore two files", restore(file), "usage: optoutd restore FILE"},
		{"restore no data dir", restore("--data-dir", ""), "--data-dir"},
		{"restore no id", restore("--id", ""), "--id"},
		{"restore no initial cluster", restore("--initial-cluster", ""), "--initial-cluster"},
		{"restore initial cluster syntax", restore("--initial-cluster", "n1"), "--initial-cluster"},
		{"restore initial cluster misses self", restore("--initial-cluster", "n2=127.0.0.1:7102"), "--initial-cluster"},
		{"restore wrong raft addr", restore("--raft-addr", "127.0.0.1:9999"), "--initial-cluster"},
		{"restore raft addr garbage", restore("--raft-addr", "nope"), "--raft-addr"},
		{"restore log level", restore("--log-level", "loud"), "--log-level"},
		{"restore missing file", []string{"restore", filepath.Join(dir, "nope.snap"), "--data-dir", data, "--id", "n1", "--initial-cluster", ic}, "backup file"},
		{"recover no data dir", []string{"recover", "--peers", "n1=127.0.0.1:7101"}, "--data-dir"},
		{"recover no peers", []string{"recover", "--data-dir", data}, "--peers"},
		{"recover peers syntax", []string{"recover", "--data-dir", data, "--peers", "n1"}, "--peers"},
		{"recover peers port", []string{"recover", "--data-dir", data, "--peers", "n1=127.0.0.1"}, "--peers"},
		{"recover self not a peer", []string{"recover", "--data-dir", data, "--id", "n3", "--peers", "n1=127.0.0.1:7101"}, "--peers"},
		{"recover not a data dir", []string{"recover", "--data-dir", dir, "--peers", "n1=127.0.0.1:7101"}, "--data-dir"},
		{"recover stray argument", []string{"recover", "--data-dir", data, "--peers", "n1=127.0.0.1:7101", "extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			m := NewMain(&out, &errb)
			err := m.ParseFlags(tc.args)
			if err == nil {
				err = m.Run(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: error %v does not name %q", tc.args, err, tc.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s was created", data)
			}
		})
	}
}
