package main

import (
	"os/exec"
	"syscall"
)

// sysProcAttr starts a child in its own process group, so killGroup stops
// it and everything it started (the emulator's Java server).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
