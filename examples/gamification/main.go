// Command gamification is an example Edulure plugin: points and a
// leaderboard per institution. The kernel starts it; see README.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

func main() { sdk.Serve(gamification.New) }
