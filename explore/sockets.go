package explore

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// Sockets is the view of ss -anp: every socket of the dump.
type Sockets struct {
	Sockets []Socket `json:"sockets"`
}

// Socket is one socket. Queues come from tcp-stream images (TCP) and
// sk-queues.img (queued packets of unix sockets); a listener's Send-Q is
// its backlog, as ss shows it.
type Socket struct {
	Netid  string  `json:"netid"`
	State  string  `json:"state"`
	RecvQ  uint64  `json:"recv_q"`
	SendQ  uint64  `json:"send_q"`
	Local  string  `json:"local"`
	Peer   string  `json:"peer"`
	Ino    uint32  `json:"ino"`
	FileID uint32  `json:"file_id"`
	Users  []Owner `json:"users"`
}

// Owner is a task that holds a socket open.
type Owner struct {
	Comm string `json:"comm"`
	PID  uint32 `json:"pid"`
	FD   uint32 `json:"fd"`
}

// ssStates are ss's names of TCP states.
var ssStates = map[uint32]string{1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
	6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING"}

// Sockets returns every socket of files.img with its owners.
func (e *Explorer) Sockets() (*Sockets, error) {
	tasks, err := e.Tasks()
	if err != nil {
		return nil, err
	}
	owners := map[uint32][]Owner{}
	for _, t := range tasks {
		if !t.HasMemory() {
			continue
		}
		fds, err := e.fdinfo(t)
		if err != nil {
			return nil, err
		}
		for _, fd := range fds {
			owners[fd.GetId()] = append(owners[fd.GetId()], Owner{Comm: t.Comm(), PID: t.PID, FD: fd.GetFd()})
		}
	}
	queued := map[uint32]uint64{}
	if err := model.Each(e.d, "SK_QUEUES", func(p *images.SkPacketEntry) { queued[p.GetIdFor()] += uint64(p.GetLength()) }); err != nil {
		return nil, err
	}
	idx, err := e.md.Files()
	if err != nil {
		return nil, err
	}
	order, files := idx.Order, idx.List
	v := &Sockets{Sockets: []Socket{}}
	for _, fe := range files {
		var s Socket
		switch {
		case fe.GetIsk() != nil:
			var err error
			if s, err = e.inetSocket(fe.GetIsk(), order); err != nil {
				return nil, err
			}
		case fe.GetUsk() != nil:
			u := fe.GetUsk()
			s = Socket{Netid: "u_" + sockType(u.GetType()), State: ssStates[u.GetState()], Ino: u.GetIno(), RecvQ: queued[u.GetId()],
				Local: unixName(u.GetName()) + " " + strconv.FormatUint(uint64(u.GetIno()), 10),
				Peer:  "* " + strconv.FormatUint(uint64(u.GetPeer()), 10)}
			if u.GetState() == 10 {
				s.SendQ = uint64(u.GetBacklog())
			}
		case fe.GetNlsk() != nil:
			n := fe.GetNlsk()
			s = Socket{Netid: "nl", State: "UNCONN", Ino: n.GetIno(), Local: nlProto(n.GetProtocol()) + ":" + e.nlPortid(n.GetPortid()), Peer: "*"}
			if n.GetState() == nlConnected {
				s.Peer = fmt.Sprintf("%d:%d", n.GetDstGroup(), int32(n.GetDstPortid()))
			}
		case fe.GetPsk() != nil:
			p := fe.GetPsk()
			s = Socket{Netid: "p_" + sockType(p.GetType()), State: "UNCONN", Local: fmt.Sprintf("%d:%d", p.GetProtocol(), p.GetIfindex()), Peer: "*"}
		default:
			continue
		}
		s.FileID = fe.GetId()
		s.Users = owners[fe.GetId()]
		if s.Users == nil {
			s.Users = []Owner{}
		}
		v.Sockets = append(v.Sockets, s)
	}
	return v, nil
}

func sockType(t uint32) string {
	switch t {
	case 1:
		return "str"
	case 2:
		return "dgr"
	case 3:
		return "raw"
	case 5:
		return "seq"
	}
	return strconv.Itoa(int(t))
}

// unixName is a unix socket's name as ss prints it: [model.UnixName], "*"
// for an unnamed socket.
func unixName(b []byte) string {
	if s := model.UnixName(b); s != "" {
		return s
	}
	return "*"
}

func (e *Explorer) inetSocket(sk *images.InetSkEntry, order codec.ByteOrder) (Socket, error) {
	proto, _ := flagnames.Name(flagnames.Dict("sk", "proto"), uint64(sk.GetProto()))
	s := Socket{Netid: strings.ToLower(proto), State: ssStates[sk.GetState()], Ino: sk.GetIno(),
		Local: hostPort(sk.GetSrcAddr(), sk.GetSrcPort(), order), Peer: hostPort(sk.GetDstAddr(), sk.GetDstPort(), order)}
	if s.Netid == "ip" || s.Netid == "" {
		s.Netid = "raw"
	}
	if s.State == "" || (sk.GetType() == 2 && sk.GetState() == 7) {
		s.State = "UNCONN"
	}
	if sk.GetState() == 10 {
		s.SendQ = uint64(sk.GetBacklog())
	}
	if f := e.d.File(fmt.Sprintf("tcp-stream-%x.img", sk.GetIno())); f != nil {
		ts, err := model.First[*images.TcpStreamEntry](f)
		if err != nil {
			return s, err
		}
		if ts != nil {
			s.RecvQ, s.SendQ = uint64(ts.GetInqLen()), uint64(ts.GetOutqLen())
		}
	}
	return s, nil
}

// hostPort renders an address of inet_sk_entry: its u32 words hold
// network-order bytes in the dumping host's order.
func hostPort(words []uint32, port uint32, order codec.ByteOrder) string {
	host := "*"
	if a, ok := annot.IPAddr(words, order); ok {
		host = a.String()
		if a.Is6() {
			host = "[" + host + "]"
		}
	}
	p := "*"
	if port != 0 {
		p = strconv.FormatUint(uint64(port), 10)
	}
	return host + ":" + p
}

// Text prints the sockets as ss -anp does.
func (v *Sockets) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %-10s %6s %6s %-40s %-40s %s\n", "Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Process")
	for _, s := range v.Sockets {
		var users []string
		for _, u := range s.Users {
			users = append(users, fmt.Sprintf("(%q,pid=%d,fd=%d)", u.Comm, u.PID, u.FD))
		}
		proc := ""
		if len(users) > 0 {
			proc = "users:(" + strings.Join(users, ",") + ")"
		}
		fmt.Fprintf(&b, "%-6s %-10s %6d %6d %-40s %-40s %s\n", s.Netid, s.State, s.RecvQ, s.SendQ, s.Local, s.Peer, proc)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nlConnected is a connected netlink socket's state (NETLINK_CONNECTED).
const nlConnected = 1

// nlProtos are ss's names of the netlink protocols (iproute2's
// nl_proto_n2a).
var nlProtos = map[uint32]string{0: "rtnl", 1: "unused", 2: "usersock", 3: "fw", 4: "tcpdiag", 5: "nflog", 6: "xfrm",
	7: "selinux", 8: "iscsi", 9: "audit", 10: "fiblookup", 11: "connector", 12: "nft", 13: "ip6fw", 14: "dec-rt",
	15: "uevent", 16: "genl", 18: "scsi-trans", 19: "ecryptfs", 20: "rdma", 21: "crypto", 22: "smc"}

// nlProto names a netlink protocol as ss does: its name, else its number.
func nlProto(p uint32) string {
	if s, ok := nlProtos[p]; ok {
		return s
	}
	return strconv.FormatUint(uint64(p), 10)
}

// nlPortid names a netlink port as ss does: "kernel" for 0, COMM/PID for
// the pid of a task (of the dump), else the port id as the signed number
// ss prints (an autobound port is negative).
func (e *Explorer) nlPortid(id uint32) string {
	if id == 0 {
		return "kernel"
	}
	if t := e.byPID[id]; t != nil && int32(id) > 0 && t.Core != nil {
		return t.Comm() + "/" + strconv.FormatUint(uint64(id), 10)
	}
	return strconv.FormatInt(int64(int32(id)), 10)
}
