package query

import (
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/proto/views"
)

// threads builds the threads view from the model: every thread of every
// task in pstree order. A missing core-TID.img leaves the thread's fields
// from it null (the model records the image).
func (d *Dump) threads() ([]*views.Thread, error) {
	return onceAs(d, "threads", func() ([]*views.Thread, error) {
		md := d.model()
		tree, err := md.Tree()
		if err != nil {
			return nil, err
		}
		var out []*views.Thread
		for _, t := range tree.Tasks {
			ths, err := md.Threads(t)
			if err != nil {
				return nil, err
			}
			main, err := md.Core(t)
			if goOn(err) != nil {
				return nil, err
			}
			for _, th := range ths {
				v := &views.Thread{Pid: proto.Uint32(t.PID), Tid: proto.Uint32(th.TID)}
				if main.GetTc() != nil {
					v.State = main.GetTc().TaskState
				}
				if c := th.Core; c != nil {
					v.Core, v.Comm, v.Sigmask, v.Pending = c, proto.String(th.Comm), proto.Uint64(th.Sigmask), th.Pending
					if tc := c.GetThreadCore(); tc != nil {
						v.SchedPolicy, v.SchedPrio, v.SchedNice = tc.SchedPolicy, tc.SchedPrio, tc.SchedNice
					}
				}
				out = append(out, v)
			}
		}
		return out, nil
	})
}
