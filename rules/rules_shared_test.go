package rules

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/critq/critq/codec"
)

// TestRuleSharedAcrossGoroutines evaluates one compiled rule from many
// goroutines at once, on images of both byte orders: each evaluation keeps
// its own extra data and byte order (run it with -race).
func TestRuleSharedAcrossGoroutines(t *testing.T) {
	d := mustOpenRuleDump(t, "../testdata/dumps/tcp")
	f := d.Kind("TCP_STREAM")[0]
	msgs, err := f.Messages()
	if err != nil {
		t.Fatal(err)
	}
	queue := mustRules(t, RuleOptions{}, `tcp-stream: e.with({"inq": bytes(string(e.inq_len))})`)[0]
	addr := mustRules(t, RuleOptions{}, `files: e.type == INETSK ? e.with({"isk.src_addr[0]": "10.0.0.1"}) : e`)[0]
	files, err := d.File("files.img").Messages()
	if err != nil {
		t.Fatal(err)
	}
	isk := -1
	for i, m := range files {
		if inetSocket(m) != nil {
			isk = i
			break
		}
	}
	if isk < 0 {
		t.Fatal("no inet socket in the tcp dump")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				want := fmt.Sprint(msgs[0].(interface{ GetInqLen() uint32 }).GetInqLen())
				o, err := queue.Eval(context.Background(), msgs[0], codec.ExtraParts{InQ: []byte("old")}, nil)
				if err != nil || string(o.Extra.InQ) != want {
					errs <- fmt.Errorf("goroutine %d, run %d: inq %q (%v), want %q", g, i, o.Extra.InQ, err, want)
					return
				}
				order := codec.ByteOrder(nil)
				if (g+i)%2 == 1 {
					order = binary.BigEndian
				}
				o, err = addr.Eval(context.Background(), files[isk], codec.ExtraParts{}, order)
				if err != nil {
					errs <- err
					return
				}
				w := inetSocket(o.Msg).GetSrcAddr()[0]
				got := []byte{byte(w), byte(w >> 8), byte(w >> 16), byte(w >> 24)}
				if order == binary.BigEndian {
					got = []byte{byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w)}
				}
				if !bytes.Equal(got, []byte{10, 0, 0, 1}) {
					errs <- fmt.Errorf("goroutine %d, run %d: src_addr[0] %#x in order %v", g, i, w, order)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
