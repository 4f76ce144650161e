package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// cpuTimes is CPU seconds used so far by each kind of process on the
// machine that the run started or talks to: "postgres", "kernel", each
// plugin binary by name, and this program. A diff of two tells where a
// measurement's CPU went.
func (e *env) cpuTimes() map[string]float64 {
	out := map[string]float64{}
	self := os.Getpid()
	kernel := 0
	if e.kernel != nil {
		kernel = e.kernel.pid()
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		raw, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(raw)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		comm := s[i+1 : j]
		f := strings.Fields(s[j+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		secs := (ut + st) / 100 // clock ticks
		var kind string
		switch {
		case pid == self:
			kind = "bench"
		case pid == kernel:
			kind = "kernel"
		case e.named[pid] != "":
			kind = e.named[pid]
		case comm == "postgres":
			kind = "postgres"
		default:
			exe, err := os.Readlink(d + "/exe")
			if err != nil || !strings.HasPrefix(exe, filepath.Join(e.dir, "plugins")) {
				continue
			}
			kind = "plugin " + filepath.Base(exe)
			if cmd, err := os.ReadFile(d + "/environ"); err == nil {
				for _, kv := range strings.Split(string(cmd), "\x00") {
					if n, ok := strings.CutPrefix(kv, "EDULURE_PLUGIN_NAME="); ok {
						kind = "plugin " + n
					}
				}
			}
		}
		out[kind] += secs
	}
	return out
}

// cpuSince formats the CPU used since before, largest first.
func (e *env) cpuSince(before map[string]float64) string {
	after := e.cpuTimes()
	type kv struct {
		k string
		v float64
	}
	var xs []kv
	for k, v := range after {
		if d := v - before[k]; d >= 0.05 {
			xs = append(xs, kv{k, d})
		}
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v })
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%s %.1fs", x.k, x.v))
	}
	return "CPU: " + strings.Join(parts, ", ")
}
