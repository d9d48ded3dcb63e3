// Package container reads what a container checkpoint holds beside CRIU's
// images: the engine's container config (config.dump), the OCI runtime spec
// (spec.dump), network.status (Podman), deleted.files, pod.options, the
// containerd status file, and rootfs-diff.tar, the files the container
// changed in its root file system.
//
// A checkpoint is an archive as Podman, CRI-O and containerd write it (a tar,
// plain, gzip or zstd, whose checkpoint/ folder is the CRIU dump) or such an
// archive unpacked in a folder. A plain dump folder (the images at its root)
// has no container part; Open still counts its processes and sizes.
//
// Archives are read in one pass over the outer tar. A plain tar is read in
// place: members that are not read are skipped with seeks, so the pages
// images are never read. rootfs-diff.tar is read in place too, inside the
// outer tar, and never unpacked to disk. Member names that escape the
// archive (absolute, "..") are refused, in the outer tar and in
// rootfs-diff.tar.
//
// The engine is detected from the files: the spec's io.container.manager
// annotation (libpod is Podman, cri-o is CRI-O), containerd's
// io.kubernetes.cri.* annotations or its status file, and CRIU's
// org.criu.checkpoint.engine.name annotation.
package container

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Engines as Checkpoint.Engine names them.
const (
	Podman     = "Podman"
	CRIO       = "CRI-O"
	Containerd = "containerd"
)

// Kinds of checkpoint, as Checkpoint.Kind names them.
const (
	KindArchive = "archive" // a container checkpoint archive
	KindFolder  = "folder"  // a container checkpoint archive unpacked
	KindDump    = "dump"    // a plain CRIU dump folder: no container part
)

// Checkpoint is what a checkpoint holds beside CRIU's images. The JSON field
// names are stable.
type Checkpoint struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Engine is Podman, CRI-O, containerd, or "" when the files do not tell.
	Engine        string `json:"engine,omitempty"`
	EngineVersion string `json:"engine_version,omitempty"`

	Name     string `json:"container_name,omitempty"`
	ID       string `json:"container_id,omitempty"`
	Image    string `json:"image,omitempty"`     // the image's name (rootfsImageName)
	ImageID  string `json:"image_id,omitempty"`  // the image's id (rootfsImageRef)
	ImageRef string `json:"image_ref,omitempty"` // the image as the engine resolved it (rootfsImage)
	Runtime  string `json:"runtime,omitempty"`

	Created      *time.Time `json:"created,omitempty"`
	Checkpointed *time.Time `json:"checkpointed,omitempty"`
	Restored     *time.Time `json:"restored,omitempty"`

	Pod       string `json:"pod_name,omitempty"`
	PodID     string `json:"pod_id,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`

	Annotations map[string]string `json:"annotations,omitempty"`
	Mounts      []Mount           `json:"mounts,omitempty"`
	Networks    []Network         `json:"networks,omitempty"`
	// IPs are the container's addresses: those of network.status, and the
	// io.kubernetes.cri-o.IP.N annotations of CRI-O.
	IPs []string `json:"ips,omitempty"`

	Sizes Sizes `json:"sizes"`
	// Processes is the number of processes of the dump's pstree.img; -1
	// when it could not be read.
	Processes int `json:"processes"`

	DeletedFiles []string `json:"deleted_files,omitempty"`
	// Rootfs lists rootfs-diff.tar, when Options.Rootfs asked for it.
	Rootfs []Member `json:"rootfs,omitempty"`
	// RootfsFiles is the number of members of rootfs-diff.tar (-1 when not
	// counted: Options.Rootfs unset).
	RootfsFiles int `json:"rootfs_files"`

	// PodOptions is pod.options as it is, and Status containerd's status
	// file; both are JSON.
	PodOptions json.RawMessage `json:"pod_options,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
	// Members are the archive's other members at its root (bind-mount data
	// such as volumes/ and devshm-checkpoint.tar, logs), with their sizes.
	Members []RootMember `json:"other_members,omitempty"`

	// Warnings are the facts that could not be read (a time that does not
	// parse, ...); the rest of the checkpoint is still shown.
	Warnings []string `json:"warnings,omitempty"`

	read int64 // bytes read from the archive file (instrumentation)
}

// Mount is one mount of the OCI spec.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Network is one network of network.status.
type Network struct {
	Name       string      `json:"name"`
	Interfaces []Interface `json:"interfaces"`
}

// Interface is one interface of a network.
type Interface struct {
	Name    string   `json:"name"`
	MAC     string   `json:"mac,omitempty"`
	Subnets []Subnet `json:"subnets,omitempty"`
}

// Subnet is an address of an interface (CIDR) and its gateway.
type Subnet struct {
	IPNet   string `json:"ipnet"`
	Gateway string `json:"gateway,omitempty"`
}

// Sizes are byte counts of the checkpoint's parts.
type Sizes struct {
	// Total is the size of the archive file, or of the folder's files.
	Total int64 `json:"total"`
	// Checkpoint is the size of the CRIU images (checkpoint/).
	Checkpoint int64 `json:"checkpoint"`
	// Pages is the size of the pages-*.img images.
	Pages int64 `json:"memory_pages"`
	// AMDGPUPages is the size of amdgpu-pages-*.img images.
	AMDGPUPages int64 `json:"amdgpu_pages,omitempty"`
	// RootfsDiff is the size of rootfs-diff.tar.
	RootfsDiff int64 `json:"rootfs_diff"`
}

// RootMember is a member of the archive root that is not read.
type RootMember struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir,omitempty"`
}

// Options configure Open.
type Options struct {
	// Rootfs lists the members of rootfs-diff.tar into Checkpoint.Rootfs.
	Rootfs bool
}

// IsContainer reports whether c has a container part.
func (c *Checkpoint) IsContainer() bool { return c.Kind != KindDump }

// engineConfig is the part of config.dump that critq reads. The field names
// are those of Podman's ContainerConfig, which CRI-O and containerd write
// too.
type engineConfig struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	RootfsImage     string `json:"rootfsImage"`
	RootfsImageRef  string `json:"rootfsImageRef"`
	RootfsImageName string `json:"rootfsImageName"`
	Runtime         string `json:"runtime"`
	CreatedTime     string `json:"createdTime"`
	CheckpointedAt  string `json:"checkpointedTime"`
	RestoredAt      string `json:"restoredTime"`
	Pod             string `json:"pod"`
	Namespace       string `json:"namespace"`
}

// ociSpec is the part of spec.dump that critq reads.
type ociSpec struct {
	Annotations map[string]string `json:"annotations"`
	Mounts      []Mount           `json:"mounts"`
}

// networkStatus is Podman's network.status: interfaces by network name.
type networkStatus map[string]struct {
	Interfaces map[string]struct {
		Subnets    []Subnet `json:"subnets"`
		MacAddress string   `json:"mac_address"`
	} `json:"interfaces"`
}

// containerdStatus is the part of containerd's status file that critq
// reads: times in nanoseconds since the epoch.
type containerdStatus struct {
	CreatedAt int64
}

// Annotations that name what a checkpoint holds.
const (
	annManager = "io.container.manager"

	annCriuEngine        = "org.criu.checkpoint.engine.name"
	annCriuEngineVersion = "org.criu.checkpoint.engine.version"
	annCriuName          = "org.criu.checkpoint.container.name"
	annCriuPod           = "org.criu.checkpoint.pod.name"
	annCriuPodID         = "org.criu.checkpoint.pod.id"
	annCriuNamespace     = "org.criu.checkpoint.pod.namespace"
	annCriuPodUID        = "org.criu.checkpoint.pod.uid"
	annCriuImageName     = "org.criu.checkpoint.rootfsImageName"
	annCriuImageID       = "org.criu.checkpoint.rootfsImageID"
	annCriuRuntime       = "org.criu.checkpoint.runtime.name"

	annCrioMetadata  = "io.kubernetes.cri-o.Metadata"
	annCrioCreated   = "io.kubernetes.cri-o.Created"
	annCrioName      = "io.kubernetes.cri-o.ContainerName"
	annCrioID        = "io.kubernetes.cri-o.ContainerID"
	annCrioImageName = "io.kubernetes.cri-o.ImageName"
	annCrioImageRef  = "io.kubernetes.cri-o.ImageRef"
	annCrioSandboxID = "io.kubernetes.cri-o.SandboxID"
	annCrioIP        = "io.kubernetes.cri-o.IP."
	annPodName       = "io.kubernetes.pod.name"
	annPodNamespace  = "io.kubernetes.pod.namespace"
	annPodUID        = "io.kubernetes.pod.uid"

	annCriPrefix     = "io.kubernetes.cri."
	annCriName       = "io.kubernetes.cri.container-name"
	annCriImage      = "io.kubernetes.cri.image-name"
	annCriSandbox    = "io.kubernetes.cri.sandbox-name"
	annCriNamespace  = "io.kubernetes.cri.sandbox-namespace"
	annCriSandboxUID = "io.kubernetes.cri.sandbox-uid"
	annCriSandboxID  = "io.kubernetes.cri.sandbox-id"
)

// metaFiles are the files of the archive root that are read: small JSON
// documents (and stats-dump).
var metaFiles = map[string]bool{
	"config.dump": true, "spec.dump": true, "network.status": true, "deleted.files": true,
	"pod.options": true, "pod.dump": true, "status.dump": true, "status": true, "stats-dump": true,
}

// maxMeta bounds one metadata file.
const maxMeta = 16 << 20

// fill sets the container fields of c from the metadata files, by name.
func (c *Checkpoint) fill(files map[string][]byte) error {
	var cfg engineConfig
	var spec ociSpec
	if b, ok := files["config.dump"]; ok {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s: config.dump: %w", c.Path, err)
		}
	}
	if b, ok := files["spec.dump"]; ok {
		if err := json.Unmarshal(b, &spec); err != nil {
			return fmt.Errorf("%s: spec.dump: %w", c.Path, err)
		}
	}
	ann := spec.Annotations
	c.Annotations = ann
	c.Mounts = spec.Mounts
	_, hasStatus := files["status"]
	c.Engine = detectEngine(ann, hasStatus, files)
	c.EngineVersion = ann[annCriuEngineVersion]

	c.Name, c.ID, c.Runtime = cfg.Name, cfg.ID, cfg.Runtime
	c.Image, c.ImageID, c.ImageRef = cfg.RootfsImageName, cfg.RootfsImageRef, cfg.RootfsImage
	c.PodID, c.Namespace = cfg.Pod, cfg.Namespace
	c.Created = c.parseTime("config.dump createdTime", cfg.CreatedTime)
	c.Checkpointed = c.parseTime("config.dump checkpointedTime", cfg.CheckpointedAt)
	c.Restored = c.parseTime("config.dump restoredTime", cfg.RestoredAt)

	switch c.Engine {
	case CRIO:
		if m := ann[annCrioMetadata]; m != "" {
			var md struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal([]byte(m), &md); err != nil {
				c.Warnings = append(c.Warnings, fmt.Sprintf("spec.dump: annotation %s: %v", annCrioMetadata, err))
			}
			if md.Name != "" {
				c.Name = md.Name // config.dump's name is the long k8s_... one
			}
		}
		if n := ann[annCrioName]; n != "" && ann[annCrioMetadata] == "" {
			c.Name = n
		}
		if n := ann["io.kubernetes.container.name"]; n != "" && ann[annCrioMetadata] == "" && ann[annCrioName] == "" {
			c.Name = n
		}
		setAll(ann, map[*string]string{&c.ID: annCrioID, &c.Image: annCrioImageName, &c.ImageID: annCrioImageRef,
			&c.PodID: annCrioSandboxID, &c.Pod: annPodName, &c.Namespace: annPodNamespace, &c.PodUID: annPodUID})
		// CRI-O's creation time is its annotation, as checkpointctl reads it.
		if t := c.parseTime("annotation "+annCrioCreated, ann[annCrioCreated]); t != nil {
			c.Created = t
		}
		for i := 0; ; i++ {
			ip := ann[fmt.Sprint(annCrioIP, i)]
			if ip == "" {
				break
			}
			c.IPs = append(c.IPs, ip)
		}
	case Containerd:
		// containerd names the container in the annotations; config.dump's
		// name is its own id.
		if n := ann[annCriName]; n != "" {
			c.Name = n
		}
		setAll(ann, map[*string]string{&c.Image: annCriImage, &c.Pod: annCriSandbox, &c.Namespace: annCriNamespace,
			&c.PodUID: annCriSandboxUID, &c.PodID: annCriSandboxID})
		if b, ok := files["status"]; ok && c.Created == nil {
			var st containerdStatus
			if err := json.Unmarshal(b, &st); err != nil {
				c.Warnings = append(c.Warnings, fmt.Sprintf("status: %v", err))
			} else if st.CreatedAt > 0 {
				t := time.Unix(0, st.CreatedAt).UTC()
				c.Created = &t
			}
		}
	}
	// CRIU's own annotations, which engines add beside theirs.
	setAll(ann, map[*string]string{&c.Name: annCriuName, &c.Pod: annCriuPod, &c.PodID: annCriuPodID,
		&c.Namespace: annCriuNamespace, &c.PodUID: annCriuPodUID, &c.Image: annCriuImageName,
		&c.ImageID: annCriuImageID, &c.Runtime: annCriuRuntime})

	if b, ok := files["network.status"]; ok {
		var ns networkStatus
		if err := json.Unmarshal(b, &ns); err != nil {
			return fmt.Errorf("%s: network.status: %w", c.Path, err)
		}
		c.Networks = networks(ns)
		for _, n := range c.Networks {
			for _, i := range n.Interfaces {
				for _, s := range i.Subnets {
					ip, _, _ := strings.Cut(s.IPNet, "/")
					if ip != "" {
						c.IPs = append(c.IPs, ip)
					}
				}
			}
		}
	}
	if b, ok := files["deleted.files"]; ok {
		if err := json.Unmarshal(b, &c.DeletedFiles); err != nil {
			return fmt.Errorf("%s: deleted.files: %w", c.Path, err)
		}
	}
	for name, dst := range map[string]*json.RawMessage{"pod.options": &c.PodOptions, "status": &c.Status} {
		if b, ok := files[name]; ok {
			if !json.Valid(b) {
				return fmt.Errorf("%s: %s: not a JSON document", c.Path, name)
			}
			*dst = json.RawMessage(b)
		}
	}
	return nil
}

// detectEngine names the engine that wrote a checkpoint.
func detectEngine(ann map[string]string, hasStatus bool, files map[string][]byte) string {
	for _, a := range []string{annManager, annCriuEngine} {
		if e := engineNames[strings.ToLower(ann[a])]; e != "" {
			return e
		}
	}
	for k := range ann {
		if strings.HasPrefix(k, annCriPrefix) {
			return Containerd
		}
		if strings.HasPrefix(k, "io.kubernetes.cri-o.") {
			return CRIO
		}
	}
	if hasStatus {
		return Containerd
	}
	if _, ok := files["network.status"]; ok {
		return Podman
	}
	return ""
}

// engineNames are the engines by the names io.container.manager and
// org.criu.checkpoint.engine.name give them.
var engineNames = map[string]string{"libpod": Podman, "podman": Podman, "cri-o": CRIO, "crio": CRIO, "containerd": Containerd}

func networks(ns networkStatus) []Network {
	var out []Network
	for name, n := range ns {
		nw := Network{Name: name, Interfaces: []Interface{}}
		for ifname, i := range n.Interfaces {
			nw.Interfaces = append(nw.Interfaces, Interface{Name: ifname, MAC: i.MacAddress, Subnets: i.Subnets})
		}
		sort.Slice(nw.Interfaces, func(a, b int) bool { return nw.Interfaces[a].Name < nw.Interfaces[b].Name })
		out = append(out, nw)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// setAll sets each field that is empty to the value of its annotation.
func setAll(ann map[string]string, fields map[*string]string) {
	for dst, key := range fields {
		if *dst == "" {
			*dst = ann[key]
		}
	}
}

// parseTime parses an RFC 3339 time; the zero time (Go's, as Podman writes
// restoredTime of a container never restored) is nil.
func (c *Checkpoint) parseTime(what, s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %v", what, err))
		return nil
	}
	if t.IsZero() {
		return nil
	}
	return &t
}

// Time is the time a list sorts by: the checkpoint time, else the creation
// time, else the zero time.
func (c *Checkpoint) Time() time.Time {
	switch {
	case c.Checkpointed != nil:
		return *c.Checkpointed
	case c.Created != nil:
		return *c.Created
	}
	return time.Time{}
}
