package magic

// oneEntry are the kinds CRIU reads with pb_read_one: their images hold
// exactly one entry. GHOST_FILE's first entry is its ghost_file_entry, but
// chunks may follow it, so it is not among them.
var oneEntry = map[string]bool{
	"APPARMOR": true, "AUTOFS": true, "CGROUP": true, "CORE": true, "CPUINFO": true, "CREDS": true,
	"FS": true, "IDS": true, "INVENTORY": true, "IPC_VAR": true, "ITIMERS": true,
	"MM": true, "NETNS": true, "PIDNS": true, "SECCOMP": true, "STATS": true, "TCP_STREAM": true,
	"TIMENS": true, "USERNS": true, "UTSNS": true,
}

// OneEntry reports whether an image of the kind holds one entry (CRIU
// reads it with pb_read_one and ignores anything after it).
func (k *Kind) OneEntry() bool { return oneEntry[k.Name] }
