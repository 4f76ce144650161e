// Command telemetry is an Edulure plugin. The kernel starts it; see README.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

func main() { sdk.Serve(telemetry.New) }
