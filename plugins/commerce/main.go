// Command commerce is an Edulure plugin. The kernel starts it; see README.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

func main() { sdk.Serve(commerce.New) }
