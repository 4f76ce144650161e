// Command messaging is an Edulure plugin. The kernel starts it; see README.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/messaging/internal/messaging"
)

func main() { sdk.Serve(messaging.New) }
