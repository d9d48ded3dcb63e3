// Package export writes the views of CRIU dumps as columnar tables, so that
// engines made for many files (DuckDB, Spark, Trino, BigQuery) query fleets
// of checkpoints with SQL.
//
// Export reads one dump (a folder or a checkpoint archive) through package
// query's views, the same values a CEL expression sees, turns each view into
// rows of a fixed, typed schema (schema.go; SchemaVersion) and writes one
// file per view in Hive partitioning:
//
//	DIR/view=vmas/dump=ID/part-0.parquet
//
// ID names the checkpoint: the container's id and checkpoint time where the
// archive has a config.dump, else a hash of the dump's content (IDContent),
// or of its path (IDPath). Every row also carries the dump's path,
// container, pod, namespace and node.
//
// Export is incremental: DIR/_critq/ keeps a manifest per dump (the files'
// names, sizes and times, and the content hash), and a dump exported before
// with the same content, schema and options is skipped. Every file is
// written to a temporary name, synced and renamed; the manifest is written
// last, so a failure leaves no partial file that a later run would trust.
package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/query"
)

// Views are the views Export writes by default, in order. "pagehashes" is
// written only when asked for (Options.PageHashes).
var Views = []string{"tasks", "threads", "vmas", "fds", "files", "sockets", "mounts", "pagemaps", "images"}

// Formats are the file formats Export writes.
var Formats = []string{"parquet", "ndjson"}

// How a dump's id is chosen (Options.ID).
const (
	IDContent = "content" // container id and checkpoint time, else a hash of the content
	IDPath    = "path"    // a hash of the dump's absolute path
)

// Options configure Export.
type Options struct {
	// Format is "parquet" (the default) or "ndjson".
	Format string
	// Views to write; nil means Views.
	Views []string
	// PageHashes adds the pagehashes view: the sha256 of every page the
	// dump holds, by pid and address.
	PageHashes bool
	// ID is IDContent (the default) or IDPath.
	ID string
	// Force writes a dump even when its manifest says it is unchanged.
	Force bool
	// Partial exports a dump whose views miss images (nulls where the
	// values would be; Result.Warnings says which); without it such a dump
	// is a *PartialError and nothing of it is written.
	Partial bool
}

// PartialError is a dump whose views need images it does not have, or
// has damaged.
type PartialError struct {
	Dump     string
	Warnings []string // one line an image, as query.Dump.Warnings
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%s: %s (--partial exports it anyway)", e.Dump, strings.Join(e.Warnings, "; "))
}

// Validate checks the options and fills in their defaults.
func (o *Options) Validate() error {
	if o.Format == "" {
		o.Format = "parquet"
	}
	if !slices.Contains(Formats, o.Format) {
		return fmt.Errorf("unknown format %q (parquet, ndjson)", o.Format)
	}
	if o.ID == "" {
		o.ID = IDContent
	}
	if o.ID != IDContent && o.ID != IDPath {
		return fmt.Errorf("unknown id %q (content, path)", o.ID)
	}
	if o.Views == nil {
		o.Views = slices.Clone(Views)
	}
	for _, v := range o.Views {
		if !slices.Contains(Views, v) && v != "pagehashes" {
			return fmt.Errorf("unknown view %q (%s)", v, strings.Join(Views, ", "))
		}
	}
	if o.PageHashes && !slices.Contains(o.Views, "pagehashes") {
		o.Views = append(o.Views, "pagehashes")
	}
	return nil
}

// Result says what Export did with one dump.
type Result struct {
	Path     string
	ID       string
	Skipped  bool           // unchanged since the last export
	Rows     map[string]int // rows written per view
	Warnings []string       // images missing or damaged, with Options.Partial
}

// manifest is what DIR/_critq/dumps/KEY.json records of an exported dump.
type manifest struct {
	Path          string   `json:"path"`
	ID            string   `json:"id"`
	Signature     string   `json:"signature"` // names, sizes and times of the dump's files
	ContentHash   string   `json:"content_hash"`
	SchemaVersion int      `json:"schema_version"`
	Format        string   `json:"format"`
	Views         []string `json:"views"`
	Exported      string   `json:"exported"`
}

// Export writes the views of the dump at path into dir.
func Export(ctx context.Context, path, dir string, opts Options) (Result, error) {
	res := Result{Path: path}
	if err := opts.Validate(); err != nil {
		return res, err
	}
	sig, err := signature(path)
	if err != nil {
		return res, dumpError(path, err)
	}
	key := hashString(absPath(path))[:16]
	mpath := filepath.Join(dir, "_critq", "dumps", key+".json")
	old, _ := readManifest(mpath)
	same := func(m *manifest) bool {
		return m != nil && !opts.Force && m.SchemaVersion == SchemaVersion && m.Format == opts.Format &&
			slices.Equal(m.Views, opts.Views)
	}
	if same(old) && old.Signature == sig {
		res.ID, res.Skipped = old.ID, true
		return res, nil
	}
	content, err := contentHash(path)
	if err != nil {
		return res, dumpError(path, err)
	}
	if same(old) && old.ContentHash == content {
		// Touched but unchanged: record the new signature, write nothing else.
		res.ID, res.Skipped = old.ID, true
		old.Signature = sig
		return res, writeManifest(mpath, old)
	}

	d, err := dump.OpenAny(path, dump.ArchiveOptions{SpoolPages: true})
	if err != nil {
		return res, dumpError(path, err)
	}
	defer d.Close()
	meta, cp, err := dumpMeta(d, path)
	if err != nil {
		return res, err
	}
	id := "h" + content[:16]
	if opts.ID == IDPath {
		id = "p" + key
	} else if cid := containerDumpID(cp); cid != "" {
		id = cid
	}
	meta.DumpID = id
	res.ID = id

	tables, warnings, err := buildTables(ctx, d, meta, opts)
	if err != nil {
		return res, err
	}
	res.Warnings = warnings
	if len(warnings) > 0 && !opts.Partial {
		return res, &PartialError{Dump: path, Warnings: warnings}
	}
	res.Rows = map[string]int{}
	// Every view is written to a temporary file first and all are renamed
	// into place after: a failure leaves none of them.
	var staged []*fileout.File
	defer func() {
		for _, f := range staged {
			f.Abort() // nothing after Commit
		}
	}()
	for _, v := range opts.Views {
		t := tables[v]
		dst := filepath.Join(dir, "view="+v, "dump="+id, "part-0."+opts.Format)
		f, err := t.write(dst, opts.Format)
		if err != nil {
			return res, fmt.Errorf("%s: view %s: %w", path, v, err)
		}
		staged = append(staged, f)
		res.Rows[v] = t.rows
	}
	for _, f := range staged {
		if err := f.Commit(); err != nil {
			return res, err
		}
	}
	m := &manifest{Path: path, ID: id, Signature: sig, ContentHash: content, SchemaVersion: SchemaVersion,
		Format: opts.Format, Views: opts.Views, Exported: time.Now().UTC().Format(time.RFC3339)}
	return res, writeManifest(mpath, m)
}

// dumpError is an error reading the dump at path, as a *query.DumpError
// (a bad or unreadable dump, not a failure of the export), named once.
func dumpError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	var de *query.DumpError
	if errors.As(err, &de) {
		return err
	}
	return &query.DumpError{Dump: path, Err: err}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// dumpFiles lists the regular files that make up a dump folder, or the
// archive itself, sorted by name.
func dumpFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// signature names the files of the dump with their sizes and modification
// times: equal signatures mean the dump was not touched.
func signature(path string) (string, error) {
	files, err := dumpFiles(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s %d %d\n", filepath.Base(f), st.Size(), st.ModTime().UnixNano())
	}
	return hashString(b.String()), nil
}

// contentHash is the sha256 of the names and bytes of the dump's files.
func contentHash(path string) (string, error) {
	files, err := dumpFiles(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", filepath.Base(f))
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readManifest(p string) (*manifest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func writeManifest(p string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return fileout.WriteFile(p, 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
