// Command cmd serves the conformance plugin, for the kernel's tests.
package main

import (
	"github.com/edulure/edulure/kernel/internal/conformance"
	"github.com/edulure/edulure/sdk"
)

func main() { sdk.Serve(conformance.New) }
