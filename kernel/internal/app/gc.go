package app

import (
	"os"
	"runtime/debug"
)

// gcPercent is the kernel's default GOGC. Its live heap is small (tens of
// megabytes: policy, caches, connections) and every request allocates a
// few kilobytes, so at Go's default of 100 the collector ran several times
// a second under load and took about a third of the kernel's CPU (make
// bench, profile of http.kernel_route). At 400 the heap may grow to five
// times the live data between collections, a few hundred megabytes at most
// for a kernel this size. GOGC and GOMEMLIMIT, when set, win.
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
