package control

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter sends hashicorp/raft's hclog output to the daemon's slog
// logger. Only warnings and errors pass: raft's info lines (every election
// step, every snapshot) are noise for a lab teacher.
type hclogAdapter struct {
	log  *slog.Logger
	name string
	args []any
}

func newHclog(l *slog.Logger) hclog.Logger {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &hclogAdapter{log: l, name: "raft"}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var sl slog.Level
	switch {
	case level >= hclog.Error:
		sl = slog.LevelError
	case level == hclog.Warn && startingUp(msg, args):
		sl = slog.LevelInfo // every start of a control node times out once
	case level == hclog.Warn:
		sl = slog.LevelWarn
	default:
		return
	}
	all := append(append([]any{"component", a.name}, a.args...), args...)
	a.log.Log(context.Background(), sl, msg, all...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *hclogAdapter) IsTrace() bool                 { return false }
func (a *hclogAdapter) IsDebug() bool                 { return false }
func (a *hclogAdapter) IsInfo() bool                  { return false }
func (a *hclogAdapter) IsWarn() bool                  { return true }
func (a *hclogAdapter) IsError() bool                 { return true }
func (a *hclogAdapter) ImpliedArgs() []any            { return a.args }
func (a *hclogAdapter) Name() string                  { return a.name }
func (a *hclogAdapter) SetLevel(hclog.Level)          {}
func (a *hclogAdapter) GetLevel() hclog.Level         { return hclog.Warn }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{log: a.log, name: a.name, args: append(append([]any(nil), a.args...), args...)}
}

func (a *hclogAdapter) Named(name string) hclog.Logger {
	return &hclogAdapter{log: a.log, name: a.name + "." + name, args: a.args}
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{log: a.log, name: name, args: a.args}
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{a}
}

// stdWriter turns lines of the standard logger into warnings: raft only
// hands it to code that logs problems.
type stdWriter struct{ a *hclogAdapter }

func (w stdWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.a.Log(hclog.Warn, msg)
	return len(p), nil
}

// startingUp tells raft's election warning on a node that has never had a
// leader (at start, before the first election) from the one that matters:
// a leader gone silent.
func startingUp(msg string, args []any) bool {
	if msg != "heartbeat timeout reached, starting election" {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "last-leader-id" {
			return fmt.Sprint(args[i+1]) == ""
		}
	}
	return false
}
