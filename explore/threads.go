package explore

import (
	"fmt"
	"io"
	"strings"
)

// Threads is the view of ps -L: one row per thread of every task, tasks in
// pstree order, threads in pstree.img's order (the main thread first).
type Threads struct {
	Threads []ThreadRow `json:"threads"`
}

// ThreadRow is one thread: the state is its task's; Sigmask is the
// blocked signals (bit N-1 for signal N) as /proc/TID/status's SigBlk,
// Pending the signals queued for the thread alone; Sched is the policy
// (SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5), Prio the real-time
// priority, Nice the nice value.
type ThreadRow struct {
	PID     uint32   `json:"pid"`
	TID     uint32   `json:"tid"`
	State   string   `json:"state"`
	Comm    string   `json:"comm"`
	Sigmask uint64   `json:"sigmask"`
	Pending []uint32 `json:"pending"`
	Sched   uint32   `json:"sched_policy"`
	Prio    uint32   `json:"sched_prio"`
	Nice    int32    `json:"sched_nice"`
}

// Threads returns every thread of the dump.
func (e *Explorer) Threads() (*Threads, error) {
	tasks, err := e.Tasks()
	if err != nil {
		return nil, err
	}
	v := &Threads{Threads: []ThreadRow{}}
	for _, t := range tasks {
		ths, err := e.md.Threads(t.mt)
		if err != nil {
			return nil, err
		}
		for _, th := range ths {
			tc := th.Core.GetThreadCore()
			r := ThreadRow{PID: t.PID, TID: th.TID, State: t.StateName(), Comm: th.Comm, Sigmask: th.Sigmask,
				Pending: th.Pending, Sched: tc.GetSchedPolicy(), Prio: tc.GetSchedPrio(), Nice: tc.GetSchedNice()}
			if r.Comm == "" {
				r.Comm = "?"
			}
			v.Threads = append(v.Threads, r)
		}
	}
	return v, nil
}

// schedNames are the names ps -c prints for the scheduling policies.
var schedNames = map[uint32]string{0: "TS", 1: "FF", 2: "RR", 3: "B", 5: "IDL", 6: "DLN"}

// Text prints one line per thread as ps -eL does, with the scheduling
// class (ps -c's CLS), priority, nice value and the blocked and pending
// signal masks in hex as /proc/TID/status shows them.
func (v *Threads) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %7s %-7s %-3s %3s %3s %16s %16s %s\n", "PID", "LWP", "STATE", "CLS", "PRI", "NI", "SIGBLK", "SIGPND", "COMMAND")
	for _, t := range v.Threads {
		cls, ok := schedNames[t.Sched]
		if !ok {
			cls = fmt.Sprint(t.Sched)
		}
		var pnd uint64
		for _, s := range t.Pending {
			if s >= 1 && s <= 64 {
				pnd |= 1 << (s - 1)
			}
		}
		fmt.Fprintf(&b, "%7d %7d %-7s %-3s %3d %3d %016x %016x %s\n", t.PID, t.TID, t.State, cls, t.Prio, t.Nice, t.Sigmask, pnd, t.Comm)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
