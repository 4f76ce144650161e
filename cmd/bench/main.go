// Command bench is `make bench`: it measures the kernel against its own
// baselines in one run and writes bench/results.json (see kernel/bench).
package main

import (
	"os"

	"github.com/edulure/edulure/kernel/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:])) }
