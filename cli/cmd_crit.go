package cli

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/magic"
)

// The crit-compatible commands: decode, encode, info and show behave as
// crit 4.2's commands of the same names, with crit's JSON (package
// critjson).

func init() {
	register(&command{name: "decode", summary: "convert an image to crit's JSON", run: runDecode})
	register(&command{name: "encode", summary: "convert crit's JSON back to an image", run: runEncode})
	register(&command{name: "info", summary: "print the kind and the number of entries of an image", run: runInfo})
	register(&command{name: "show", summary: "print an image as crit's pretty JSON", run: runShow})
}

const decodeUsage = `
usage: critq decode [-i IN] [-o OUT] [--pretty]

Convert a CRIU image to the JSON of crit decode: on one line, or indented
with crit's humanised values (hex, flag names, addresses) with --pretty.
IN defaults to stdin, OUT to stdout. OUT is replaced only once the whole
document is written.
`

const encodeUsage = `
usage: critq encode [-i IN] [-o OUT] [--big-endian] [--no-head]

Convert crit's JSON (plain or pretty, as written by crit or critq) back to
a CRIU image. IN defaults to stdin, OUT to stdout.

crit's JSON does not record the framing of the image it came from: encode
writes what CRIU writes on x86_64 today (little-endian, with head magics).
Images of big-endian hosts (s390x) need --big-endian, images of dumps with
img_version 1 --no-head; decode says so when it reads such an image.
`

const infoUsage = `
usage: critq info IN

Print the kind of an image and its number of entries (PAGEMAP: without the
head), as crit info does.
`

const showUsage = `
usage: critq show IN [--nopl]

Print an image as crit's pretty JSON. With --nopl the data that follows
entries (pipe and socket queues, ghost file contents, ...) is replaced by
its size.
`

func runDecode(c *cli, args []string) error {
	fs := c.newFlags("decode", decodeUsage)
	in := fs.String("i", "", "input image `file` (default stdin)")
	out := fs.String("o", "", "output `file` (default stdout)")
	pretty := fs.Bool("pretty", false, "crit's pretty form: indented, humanised values")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("decode: unexpected argument %q (use -i)", pos[0])
	}
	return c.decode(*in, *out, critjson.Options{Pretty: *pretty})
}

func runShow(c *cli, args []string) error {
	fs := c.newFlags("show", showUsage)
	nopl := fs.Bool("nopl", false, "leave out the data after entries, print its size")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("show: expected one image, got %d arguments", len(pos))
	}
	return c.decode(pos[0], "", critjson.Options{Pretty: true, NoPayload: *nopl})
}

// decode writes the JSON of image in to out ("" for stdout).
func (c *cli) decode(in, out string, o critjson.Options) error {
	r, done, err := c.openImage(in)
	if err != nil {
		return err
	}
	defer done()
	dst, err := c.createOutput(out)
	if err != nil {
		return err
	}
	var unknown bool
	o.Unknown = &unknown
	err = critjson.Encode(dst, r, o)
	c.framingNotes(r, unknown)
	if err == nil && dst.stdout {
		_, err = dst.Write([]byte("\n")) // crit adds it on stdout only
	}
	return dst.finish(err)
}

func runEncode(c *cli, args []string) error {
	fs := c.newFlags("encode", encodeUsage)
	in := fs.String("i", "", "input JSON `file` (default stdin)")
	out := fs.String("o", "", "output image `file` (default stdout)")
	bigEndian := fs.Bool("big-endian", false, "write the framing big-endian, as s390x hosts do")
	noHead := fs.Bool("no-head", false, "write no head magic, as in images of img_version 1")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("encode: unexpected argument %q (use -i)", pos[0])
	}
	name, doc, err := c.readInput(*in)
	if err != nil {
		return err
	}
	img, err := critjson.Decode(doc, critjson.Options{})
	if err != nil {
		if looksBinary(doc) {
			err = errors.New("not JSON (an image? encode reads the JSON of decode)")
		}
		return withCode(exitBadImage, fmt.Errorf("%s: %w", name, err))
	}
	dst, err := c.createOutput(*out)
	if err != nil {
		return err
	}
	hdr := codec.HeaderFor(img.Kind)
	if *bigEndian {
		hdr.Order = binary.BigEndian
	}
	if *noHead {
		hdr.Head = 0
	}
	err = img.Write(dst, hdr)
	var cerr *codec.Error
	if errors.As(err, &cerr) {
		// The entry is refused by the writer: say where it is in the JSON.
		err = withCode(exitBadImage, fmt.Errorf("%s: entries[%d]: %w", name, cerr.Entry, cerr.Err))
	}
	return dst.finish(err)
}

// looksBinary reports whether data does not start like a JSON document.
func looksBinary(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] != '{' && data[0] != '['
}

func runInfo(c *cli, args []string) error {
	fs := c.newFlags("info", infoUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("info: expected one image, got %d arguments", len(pos))
	}
	r, done, err := c.openImage(pos[0])
	if err != nil {
		return err
	}
	defer done()
	n, err := countEntries(r)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	var b []byte
	b = append(b, "{\n    \"magic\": \""...)
	b = append(b, r.Kind().Name...)
	b = fmt.Appendf(b, "\",\n    \"count\": %d\n}\n", n)
	if _, err := c.stdout.Write(b); err != nil {
		return withCode(exitError, err)
	}
	return nil
}

// countEntries counts the entries of an image, extras skipped by their
// rules (crit miscounts kinds with extras, bug B4, and has no count for
// ghost files, bug B3). Like crit it does not count the pagemap_head of a
// PAGEMAP image.
func countEntries(r *codec.Reader) (int, error) {
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		n++
	}
	if r.Kind().First != nil && r.Kind().Extra == magic.ExtraNone && n > 0 {
		n-- // PAGEMAP: entry 0 is the head
	}
	return n, nil
}

// openImage opens an image for reading: a file, or stdin for "" and "-".
// A file named like a raw kind (pages-1.img) is refused before reading, as
// is an image beside the journal of an interrupted in-place transform.
func (c *cli) openImage(path string) (*codec.Reader, func(), error) {
	if dir := filepath.Dir(path); path != "" && path != "-" {
		// An image of a dump that an in-place transform left half done.
		if _, err := os.Stat(filepath.Join(dir, dump.JournalName)); err == nil {
			return nil, nil, withCode(exitBadImage, fmt.Errorf("%s: %w", dir, dump.ErrInterrupted))
		}
	}
	name, src, size, done, err := c.openInput(path)
	if err != nil {
		return nil, nil, err
	}
	if k, _, ok := magic.ForFile(filepath.Base(path)); ok && k.Raw && src != c.stdin {
		done()
		return nil, nil, withCode(exitBadImage, rawError(name, k))
	}
	r, err := codec.NewReader(src, codec.ReadOptions{Name: name, Size: size})
	if err != nil {
		done()
		return nil, nil, withCode(exitBadImage, err)
	}
	return r, done, nil
}

// framingNotes tells on stderr what crit's JSON of r cannot carry: a
// framing other than the one encode writes, and fields unknown to the
// schema.
func (c *cli) framingNotes(r *codec.Reader, unknown bool) {
	h := r.Header()
	var flags []string
	if h.Order == binary.BigEndian {
		flags = append(flags, "--big-endian")
	}
	if h.Head == 0 && h.Kind.HeadMagic() != 0 {
		flags = append(flags, "--no-head")
	}
	if len(flags) > 0 {
		fmt.Fprintf(c.stderr, "critq: %s: note: the JSON does not record the framing of this image: encode it back with %s\n", r.Name(), strings.Join(flags, " "))
	}
	if unknown {
		fmt.Fprintf(c.stderr, "critq: %s: warning: fields unknown to CRIU 4.2's schema are left out of the JSON: an image encoded from it will lack them\n", r.Name())
	}
}

func rawError(name string, k *magic.Kind) error {
	err := fmt.Errorf("%s: %w", name, &codec.MagicError{Raw: k.Name, What: k.What})
	if k.Name == "PAGES" {
		err = fmt.Errorf("%w; it holds memory: see critq mem", err)
	}
	return err
}

// openInput opens a file, or stdin for "" and "-" (named <stdin>, never
// assumed seekable). size is the file's size, 0 when unknown.
func (c *cli) openInput(path string) (name string, r io.Reader, size int64, done func(), err error) {
	if path == "" || path == "-" {
		return "<stdin>", c.stdin, 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err) // "FILE: no such file or directory"
		}
		return "", nil, 0, nil, withCode(exitBadImage, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return "", nil, 0, nil, withCode(exitBadImage, err)
	}
	if st.IsDir() {
		f.Close()
		return "", nil, 0, nil, withCode(exitBadImage, fmt.Errorf("%s: is a directory, not an image", path))
	}
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return path, f, size, func() { f.Close() }, nil
}

// readInput reads a whole input: a file, or stdin for "" and "-".
func (c *cli) readInput(path string) (string, []byte, error) {
	name, r, _, done, err := c.openInput(path)
	if err != nil {
		return "", nil, err
	}
	defer done()
	data, err := io.ReadAll(r)
	if err != nil {
		return "", nil, withCode(exitBadImage, fmt.Errorf("%s: %w", name, err))
	}
	return name, data, nil
}

// output is where a command writes: stdout, or the destination as package
// fileout writes it (a regular file replaced once complete, a device or
// FIFO written in place).
type output struct {
	w      io.Writer
	stdout bool
	f      *fileout.File
	path   string
	err    error // first write error
}

func (c *cli) createOutput(path string) (*output, error) {
	if path == "" || path == "-" {
		return &output{w: c.stdout, stdout: true, path: "<stdout>"}, nil
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := fileout.Create(path, mode)
	if err != nil {
		var perr *os.PathError
		if errors.As(err, &perr) {
			err = perr.Err
		}
		return nil, withCode(exitError, fmt.Errorf("%s: cannot create: %w", path, err))
	}
	return &output{w: f, f: f, path: path}, nil
}

func (o *output) Write(b []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(b)
	if err != nil {
		o.err = fmt.Errorf("%s: %w", o.path, err)
	}
	return n, o.err
}

// finish ends the output after a command's work ended with err: on success
// the file is committed (synced and renamed into place), on failure the
// temporary file is removed. Write failures exit with exitError, anything
// else with exitBadImage unless it carries a code.
func (o *output) finish(err error) error {
	if o.f != nil {
		if err == nil {
			if cerr := o.f.Commit(); cerr != nil {
				err = fmt.Errorf("%s: %w", o.path, cerr)
				o.err = err
			}
		}
		o.f.Abort()
	}
	switch {
	case err == nil:
		return nil
	case o.err != nil:
		return withCode(exitError, o.err)
	}
	return withExitCode(err, exitBadImage)
}
