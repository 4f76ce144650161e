// Command edulure runs and administers the Edulure platform kernel.
package main

import (
	"os"

	"github.com/edulure/edulure/kernel/command"
)

func main() { os.Exit(command.Run(os.Args[1:], os.Stdout, os.Stderr)) }
