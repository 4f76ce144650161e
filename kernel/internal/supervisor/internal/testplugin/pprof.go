package main

import (
	"net/http"
	"net/http/pprof"
)

// servePprof serves Go's profiles of this process on addr.
func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	_ = http.ListenAndServe(addr, mux) //nolint:gosec // loopback, test plugin only
}
