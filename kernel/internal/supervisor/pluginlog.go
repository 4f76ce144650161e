package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The kernel re-logs each line a plugin writes to stderr. go-plugin
// (v1.8.0) would do it itself, but its parser panics, in a kernel
// goroutine and so ending the kernel, on a JSON line whose @message,
// @level or @timestamp is not a string: one bad log line of one plugin
// would take every plugin and the API down. So the kernel gives go-plugin a
// silenced logger for the plugin's stderr (go-plugin skips parsing when
// that logger is Off) and reads the raw lines from ClientConfig.Stderr
// instead, with the same rules, told in docs/protocol.md:
//
//   - a JSON object with a string @level (trace, debug, info, warn, error)
//     is logged at that level, @message as the message, every other key as
//     a field (sorted by name) except @module (the kernel names the
//     plugin's logger), and @timestamp, when it is an RFC 3339 time, as the
//     field "timestamp";
//   - any other JSON line is logged verbatim at debug level;
//   - a line that is not JSON is logged verbatim at the level of a leading
//     [TRACE], [DEBUG], [INFO], [WARN] or [ERROR] tag, else at debug; from a
//     line starting "panic: " or "fatal error: " on, untagged lines are
//     errors (a crashing Go plugin's stack trace).
//
// A line longer than maxLogLine is logged in pieces at debug level.

// maxLogLine is the longest line parsed as a whole (go-plugin's default
// PluginLogBufferSize).
const maxLogLine = 64 * 1024

// silencedStderr is the logger handed to go-plugin: itself, except that
// the child named after the plugin binary (the one go-plugin re-logs stderr
// with) is Off.
type silencedStderr struct {
	hclog.Logger
	binary string
}

func (l silencedStderr) Named(name string) hclog.Logger {
	if name == l.binary {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	}
	return l.Logger.Named(name)
}

// stderrLog is an io.Writer that re-logs the lines written to it.
type stderrLog struct {
	logger  hclog.Logger
	buf     []byte
	long    bool // buf continues a line already logged in part
	inPanic bool
}

func newStderrLog(logger hclog.Logger) *stderrLog { return &stderrLog{logger: logger} }

// Write takes any piece of the output; go-plugin writes each line, then its
// newline.
func (w *stderrLog) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			w.pieces(false)
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		if w.long || len(w.buf) > maxLogLine {
			w.pieces(true)
		} else {
			w.line(w.buf)
		}
		w.buf, w.long = w.buf[:0], false
	}
	return n, nil
}

// pieces logs a line too long to parse at debug level, maxLogLine bytes at
// a time, and the rest too when the line is complete.
func (w *stderrLog) pieces(complete bool) {
	for len(w.buf) > maxLogLine {
		w.logger.Debug(string(w.buf[:maxLogLine]))
		w.buf, w.long = append(w.buf[:0], w.buf[maxLogLine:]...), true
	}
	if complete && len(w.buf) > 0 {
		w.logger.Debug(string(w.buf))
	}
}

func (w *stderrLog) line(line []byte) {
	var fields map[string]any
	if json.Unmarshal(line, &fields) != nil || fields == nil {
		w.text(string(line))
		return
	}
	levelName, _ := fields["@level"].(string)
	level := hclog.LevelFromString(levelName)
	if level == hclog.NoLevel || level == hclog.Off {
		w.logger.Debug(string(line))
		return
	}
	msg, ok := fields["@message"].(string)
	if !ok && fields["@message"] != nil {
		msg = fmt.Sprint(fields["@message"])
	}
	var args []any
	if ts, ok := fields["@timestamp"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			args = append(args, "timestamp", t.Format(hclog.TimeFormat))
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != "@level" && k != "@message" && k != "@timestamp" && k != "@module" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	w.logger.Log(level, msg, args...)
}

func (w *stderrLog) text(line string) {
	switch {
	case strings.HasPrefix(line, "[TRACE]"):
		w.logger.Trace(line)
	case strings.HasPrefix(line, "[DEBUG]"):
		w.logger.Debug(line)
	case strings.HasPrefix(line, "[INFO]"):
		w.logger.Info(line)
	case strings.HasPrefix(line, "[WARN]"):
		w.logger.Warn(line)
	case strings.HasPrefix(line, "[ERROR]"):
		w.logger.Error(line)
	case strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: "):
		w.inPanic = true
		w.logger.Error(line)
	case w.inPanic:
		w.logger.Error(line)
	default:
		w.logger.Debug(line)
	}
}
