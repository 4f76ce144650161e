package identity

import (
	"runtime/debug"
	"sync"
	"time"
)

// Each argon2id hash or check allocates its memory cost (19 MiB) afresh.
// The runtime reuses that memory for later allocations but hands it back to
// the system only slowly, so a handful of logins left an idle kernel
// holding some 60 MB it did not need. Once password work has been quiet for
// a second, the memory goes back at once: one forced collection per burst
// of logins, not one per login.

const releaseQuiet = time.Second

var (
	releaseMu    sync.Mutex
	releaseTimer *time.Timer
)

func releaseMemorySoon() {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if releaseTimer == nil {
		releaseTimer = time.AfterFunc(releaseQuiet, debug.FreeOSMemory)
		return
	}
	releaseTimer.Reset(releaseQuiet)
}
