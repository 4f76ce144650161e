// Command withpg runs a command with TEST_DATABASE_URL pointing at a
// throwaway PostgreSQL cluster, which it removes afterwards. When
// TEST_DATABASE_URL is already set it just runs the command. `make test`
// uses it so that all test binaries share one cluster.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/edulure/edulure/kernel/dbtestmain"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg -- command [args...]")
		os.Exit(2)
	}
	stop := func() {}
	if os.Getenv("TEST_DATABASE_URL") == "" {
		var err error
		if stop, err = dbtestmain.StartCluster(); err != nil {
			fmt.Fprintln(os.Stderr, "withpg:", err)
			os.Exit(1)
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		if cmd.Process != nil {
			cmd.Process.Signal(s) //nolint:errcheck
		}
	}()
	err := cmd.Run()
	stop()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "withpg:", err)
		os.Exit(1)
	}
}
