package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// TestStderrLog feeds plugin stderr lines the way go-plugin writes them
// (each line, then its newline) and checks what the kernel's log gets. The
// lines go-plugin v1.8.0's own parser panics on are among them.
func TestStderrLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]any // fields of the kernel's log line; nil: no line
	}{
		{
			name: "hclog JSON",
			in:   `{"@level":"warn","@message":"slow query","@timestamp":"2026-01-02T03:04:05.123456Z","ms":250,"request_id":"r1"}`,
			want: map[string]any{"@level": "warn", "@message": "slow query", "ms": float64(250), "request_id": "r1", "timestamp": "2026-01-02T03:04:05.123Z"},
		},
		{
			name: "own module name",
			in:   `{"@level":"info","@message":"hi","@module":"mine","@caller":"x.js:3"}`,
			want: map[string]any{"@level": "info", "@message": "hi", "@caller": "x.js:3"},
		},
		{
			name: "millisecond timestamp",
			in:   `{"@level":"info","@message":"hi","@timestamp":"2026-01-02T03:04:05.123Z"}`,
			want: map[string]any{"@level": "info", "@message": "hi", "timestamp": "2026-01-02T03:04:05.123Z"},
		},
		{
			name: "non-string message",
			in:   `{"@level":"info","@message":42}`,
			want: map[string]any{"@level": "info", "@message": "42"},
		},
		{
			name: "non-string level",
			in:   `{"@level":3,"@message":"x"}`,
			want: map[string]any{"@level": "debug", "@message": `{"@level":3,"@message":"x"}`},
		},
		{
			name: "non-string timestamp",
			in:   `{"@level":"error","@message":"x","@timestamp":17}`,
			want: map[string]any{"@level": "error", "@message": "x"},
		},
		{
			name: "JSON that is not an object",
			in:   `[1,2]`,
			want: map[string]any{"@level": "debug", "@message": "[1,2]"},
		},
		{
			name: "tagged text",
			in:   `[WARN] disk nearly full`,
			want: map[string]any{"@level": "warn", "@message": "[WARN] disk nearly full"},
		},
		{
			name: "plain text",
			in:   `listening`,
			want: map[string]any{"@level": "debug", "@message": "listening"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			w := newStderrLog(hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &out, JSONFormat: true}))
			_, err := w.Write([]byte(tt.in))
			require.NoError(t, err)
			require.Empty(t, out.String(), "nothing is logged before the newline")
			_, err = w.Write([]byte("\n"))
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
			delete(got, "@timestamp") // the kernel's own time of logging
			require.Equal(t, tt.want, got)
		})
	}
}

// TestStderrLogPanicAndLongLines: a Go plugin's panic makes its untagged
// stack lines errors; a line too long to parse is logged in pieces.
func TestStderrLogPanicAndLongLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := newStderrLog(hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &out, JSONFormat: true}))
	long := strings.Repeat("x", maxLogLine+10)
	for _, s := range []string{"before", "panic: boom", "goroutine 1 [running]:", long} {
		_, _ = w.Write([]byte(s + "\n"))
	}
	var levels []string
	var logged strings.Builder
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 4*maxLogLine)
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		levels = append(levels, line["@level"].(string))
		if strings.HasPrefix(line["@message"].(string), "x") {
			logged.WriteString(line["@message"].(string))
		}
	}
	require.Equal(t, []string{"debug", "error", "error", "debug", "debug"}, levels)
	require.Equal(t, long, logged.String(), "the long line is all there, in two pieces")
}
