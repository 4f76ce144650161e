package commerce_test

import (
	"os/exec"
	"syscall"
)

// setPdeathsig has the kernel kill stripe-mock if the test binary dies
// without stopping it.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
