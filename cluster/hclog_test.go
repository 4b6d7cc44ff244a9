package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestRoutineRaftMessagesAreDebug: the messages hashicorp/raft logs at
// ERROR or WARN during a normal shutdown or join are debug lines; the same
// messages with another error keep their level.
func TestRoutineRaftMessagesAreDebug(t *testing.T) {
	for _, tc := range []struct {
		name  string
		log   func(l hclog.Logger)
		level string // "" when nothing may be printed at info
	}{
		{"shutdown closes the transport", func(l hclog.Logger) {
			l.Error("failed to decode incoming command", "error", raft.ErrTransportShutdown)
		}, ""},
		{"a broken connection is still an error", func(l hclog.Logger) {
			l.Error("failed to decode incoming command", "error", io.ErrUnexpectedEOF)
		}, "level=ERROR"},
		{"a joining node lacks the previous log", func(l hclog.Logger) {
			l.Warn("failed to get previous log", "previous-index", uint64(12), "last-index", uint64(0), "error", raft.ErrLogNotFound)
		}, ""},
		{"a deposed leader stops replicating", func(l hclog.Logger) {
			l.Error("peer has newer term, stopping replication", "peer", "n1")
		}, "level=INFO"},
		{"a failing log store is still a warning", func(l hclog.Logger) {
			l.Warn("failed to get previous log", "previous-index", uint64(12), "last-index", uint64(20), "error", io.ErrUnexpectedEOF)
		}, "level=WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lv := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
				var b bytes.Buffer
				a := newHCLog(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: lv})))
				tc.log(a)
				out := b.String()
				switch {
				case tc.level != "" && !strings.Contains(out, tc.level):
					t.Errorf("at %v: %q, want %s", lv, out, tc.level)
				case tc.level == "" && lv == slog.LevelInfo && out != "":
					t.Errorf("at info: %q, want nothing", out)
				case tc.level == "" && lv == slog.LevelDebug && !strings.Contains(out, "level=DEBUG"):
					t.Errorf("at debug: %q, want a debug line", out)
				}
			}
		})
	}
}
