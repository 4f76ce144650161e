package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profile starts CPU profiles of the kernel and of the probe plugin for
// about dur and returns a function that waits for them to be written to
// Options.Profile as <what>.kernel.pprof and <what>.plugin.pprof
// (go tool pprof -top bin/edulure <file>).
func (e *env) profile(what string, dur time.Duration) (wait func()) {
	secs := max(1, int(dur/time.Second))
	var wg sync.WaitGroup
	for who, addr := range map[string]string{"kernel": e.pprof, "plugin": e.pprofP} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(e.opts.Profile, fmt.Sprintf("%s.%s.pprof", what, who))
			if err := download(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), path); err != nil {
				e.printf("profiling the %s: %v", who, err)
				return
			}
			e.printf("  wrote %s", path)
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the profilers start before the load
	return wg.Wait
}

func download(url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s: %d %s", url, res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}
