package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogAdapter routes hashicorp/raft's hclog output into slog, so every line
// of the process shares one handler, format and set of keys.
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []interface{}
}

// HCLogger routes hashicorp/raft's hclog output into l, with the routine
// messages of a normal shutdown or join demoted to debug. The offline tools
// hand it to the Raft code they run.
func HCLogger(l *slog.Logger) hclog.Logger { return newHCLog(l) }

func newHCLog(l *slog.Logger) hclog.Logger {
	return &hclogAdapter{l: l.With(LogKeyComponent, "raft")}
}

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// routine lists hashicorp/raft messages that are expected and need no
// action, with the error that makes them so: logged at debug, not as the
// library's ERROR or WARN.
//   - a node that shuts down closes its transport under a connection that
//     is reading the next command;
//   - a node that joins (or lags) receives entries after a log it does not
//     have yet, answers so, and the leader sends it earlier entries or a
//     snapshot.
var routine = map[string]error{
	"failed to decode incoming command": raft.ErrTransportShutdown,
	"failed to get previous log":        raft.ErrLogNotFound,
}

// leadershipMoved lists messages a leader logs at ERROR when another node
// takes over (a hand-off before shutdown, a transfer, an election it
// lost): information, not a fault, so they are logged at info.
var leadershipMoved = map[string]bool{
	"peer has newer term, stopping replication": true,
}

func routineLevel(lv slog.Level, msg string, args []interface{}) slog.Level {
	if leadershipMoved[msg] {
		return min(lv, slog.LevelInfo)
	}
	want, ok := routine[msg]
	if !ok {
		return lv
	}
	for i := 0; i+1 < len(args); i += 2 {
		if err, isErr := args[i+1].(error); isErr && args[i] == "error" && errors.Is(err, want) {
			return min(lv, slog.LevelDebug)
		}
	}
	return lv
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	lv := routineLevel(toSlogLevel(level), msg, args)
	ctx := context.Background()
	if !a.l.Enabled(ctx, lv) {
		return
	}
	for i, v := range args {
		// hclog.Fmt("%+v", x) values are printf calls hclog would expand.
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	a.l.Log(ctx, lv, msg, args...)
}

func (a *hclogAdapter) Trace(msg string, args ...interface{}) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...interface{}) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...interface{})  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...interface{})  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...interface{}) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	return a.l.Enabled(context.Background(), toSlogLevel(l))
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []interface{} { return a.args }

func (a *hclogAdapter) With(args ...interface{}) hclog.Logger {
	return &hclogAdapter{l: a.l.With(args...), name: a.name, args: append(append([]interface{}{}, a.args...), args...)}
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: a.l.With(LogKeySubsystem, name), name: name, args: a.args}
}

// SetLevel is a no-op: the slog handler owns the level.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Error
}

func (a *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(nil).Writer()
}
