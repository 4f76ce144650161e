//go:build !linux

package commerce_test

import "os/exec"

func setPdeathsig(*exec.Cmd) {}
