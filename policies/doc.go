// Package policies embeds the Rego policies the kernel evaluates with OPA.
// authz.rego decides every request; *_test.rego files are its tests, run by
// `make test` through policies_test.go.
package policies

import "embed"

// FS holds the policy modules and their tests.
//
//go:embed *.rego
var FS embed.FS
