// Package httpapi is the kernel's REST API on labstack/echo: middleware
// (request IDs, logging, recovery, limits, secure headers, CORS, metrics),
// authentication (JWT or API key → principal), OPA authorization of the
// permission every route declares, the kernel's handlers, and the OpenAPI
// document generated from the same route table that registers the handlers.
package httpapi
