// Command governance is Edulure's governance plugin: retention policies
// with dry runs and signed executions, legal holds, an evidence archive
// with chain of custody, access reviews and erasure receipts. The kernel
// starts it; see docs/governance.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

func main() { sdk.Serve(governance.New) }
