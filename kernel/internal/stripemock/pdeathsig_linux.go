package stripemock

import (
	"os/exec"
	"syscall"
)

// setPdeathsig kills stripe-mock when the process that started it dies.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
