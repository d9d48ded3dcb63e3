package dump

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processStart returns the start time of process pid (field 22 of
// /proc/PID/stat, in clock ticks since boot), "-" when it cannot be read.
// With the pid it names a process: a pid is reused, the pair is not.
func processStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "-"
	}
	s := string(b)
	// The command name, field 2, is in parentheses and may hold anything.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "-"
	}
	f := strings.Fields(s[i+1:]) // from field 3 on
	if len(f) < 20 {
		return "-"
	}
	return f[19]
}

// processGone reports whether process pid that started at start ("" when
// unknown) has exited: no process has the pid, or another one has it now.
func processGone(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	if start == "" || start == "-" {
		return false
	}
	now := processStart(pid)
	return now != "-" && now != start
}
