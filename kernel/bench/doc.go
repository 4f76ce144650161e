// Package bench is `make bench`: it builds the kernel and the plugins it
// needs, starts its own Postgres (or uses DATABASE_URL), a kernel process
// and its plugins, measures each figure of the benchmark issue against a
// baseline taken in the same run, stops everything, prints a table and
// writes bench/results.json.
//
// HTTP load comes from vegeta (as a library) on loopback, in a closed
// model: N connections, each sending its next request as soon as the last
// one is answered, so throughput is the server's capacity at that
// concurrency. The Go micro-benchmarks (OPA decision, token verification)
// are the packages' own Benchmark functions, run with go test -bench.
//
// It lives outside kernel/internal so that cmd/bench can call it, and
// inside kernel/ so that it can use the kernel's packages directly.
package bench
