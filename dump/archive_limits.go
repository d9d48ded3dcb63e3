package dump

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Limits are the bounds of reading a checkpoint archive that
// ArchiveOptions leave at zero. A zip bomb (an 896 MiB image compressed
// to 1 MB, gigabytes of zero pages, a million tiny members) fails at the
// tar header that passes a bound, before its data is read.
type Limits struct {
	MaxBytes   int64 // decompressed bytes of a compressed archive
	MaxMeta    int64 // bytes of images besides pages kept in memory
	MaxSpool   int64 // bytes of pages images copied to the temporary folder
	MaxMembers int   // members of the tar
}

// DefaultLimits are the bounds of OpenArchive: 4 GiB decompressed, 256
// MiB of images besides pages, 2 GiB of spooled pages, 100,000 members.
// Real dumps hold a few MiB of images besides pages and a few hundred
// members; the pages of a large container may need more (critq's
// --max-archive-bytes and --max-spool).
var DefaultLimits = Limits{MaxBytes: 4 << 30, MaxMeta: 256 << 20, MaxSpool: 2 << 30, MaxMembers: 100_000}

var (
	limitsMu sync.Mutex
	defaults = DefaultLimits
)

// SetDefaultLimits sets the bounds that archives opened without their own
// (a zero field of ArchiveOptions, Open, OpenAny) use from now on, and
// returns a function that restores the previous ones. A zero field of l
// keeps DefaultLimits' bound.
func SetDefaultLimits(l Limits) (restore func()) {
	limitsMu.Lock()
	defer limitsMu.Unlock()
	old := defaults
	defaults = l.or(DefaultLimits)
	return func() {
		limitsMu.Lock()
		defaults = old
		limitsMu.Unlock()
	}
}

func (l Limits) or(d Limits) Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxMeta <= 0 {
		l.MaxMeta = d.MaxMeta
	}
	if l.MaxSpool <= 0 {
		l.MaxSpool = d.MaxSpool
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	return l
}

func (o *ArchiveOptions) setDefaults() {
	limitsMu.Lock()
	d := defaults
	limitsMu.Unlock()
	l := Limits{o.MaxBytes, o.MaxMeta, o.MaxSpool, o.MaxMembers}.or(d)
	o.MaxBytes, o.MaxMeta, o.MaxSpool, o.MaxMembers = l.MaxBytes, l.MaxMeta, l.MaxSpool, l.MaxMembers
}

// maxZstdWindow and maxZstdMemory bound what a zstd frame may ask the
// decoder to allocate (zstd -19 uses 8 MiB windows, --long=27 128 MiB).
const (
	maxZstdWindow = 128 << 20
	maxZstdMemory = 256 << 20
)

// LimitError is the error of an archive that passes one of the bounds.
// Flag names critq's flag that raises it.
type LimitError struct {
	Archive, Member string
	What            string // what passed the bound
	Need, Limit     int64
	Flag            string
}

func (e *LimitError) Error() string {
	at := e.Archive
	if e.Member != "" {
		at += ": " + e.Member
	}
	need := ""
	if e.Need > 0 {
		need = ": " + size(e.Need)
	}
	return fmt.Sprintf("%s: more than %s of %s%s (a bound against archive bombs; raise it with --%s)",
		at, size(e.Limit), e.What, need, e.Flag)
}

// size formats n bytes (or a count, for members) for messages.
func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

func (a *Archive) limitError(member, what string, need, limit int64, flag string) error {
	return &LimitError{Archive: a.path, Member: member, What: what, Need: need, Limit: limit, Flag: flag}
}

// checkMembers checks the count of members, n the number read so far.
func (a *Archive) checkMembers(n int) error {
	if n > a.opts.MaxMembers {
		err := a.limitError("", "", 0, int64(a.opts.MaxMembers), "max-members")
		err.(*LimitError).What = "members"
		return &membersError{err.(*LimitError)}
	}
	return nil
}

// membersError prints a count, not a size.
type membersError struct{ *LimitError }

func (e *membersError) Error() string {
	return fmt.Sprintf("%s: more than %d members (a bound against archive bombs; raise it with --%s)",
		e.Archive, e.Limit, e.Flag)
}

func (e *membersError) Unwrap() error { return e.LimitError }

// checkHeader checks the bounds that member n, whose header h was just
// read, would pass: its data is still to be decompressed.
func (a *Archive) checkHeader(r *guard, n int, h *tar.Header) error {
	if err := a.checkMembers(n); err != nil {
		return err
	}
	if err := a.aborted(); err != nil {
		return err
	}
	return r.expect(h.Name, h.Size)
}

// ErrAborted is the error of a read of an archive stopped by AbortReads or
// by its Context.
var ErrAborted = errors.New("reading the archive was stopped")

// guard is the reader of a decompressed archive: it counts the bytes
// against MaxBytes and stops when the read is aborted.
type guard struct {
	a   *Archive
	r   io.Reader
	n   int64
	err error
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if err := g.a.aborted(); err != nil {
		g.err = err
		return 0, err
	}
	if rest := g.a.opts.MaxBytes - g.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if g.n > g.a.opts.MaxBytes {
		g.err = g.a.limitError("", "decompressed data", 0, g.a.opts.MaxBytes, "max-archive-bytes")
		return n, g.err
	}
	return n, err
}

// expect fails at once when size more bytes would pass MaxBytes.
func (g *guard) expect(member string, size int64) error {
	if size > g.a.opts.MaxBytes-g.n {
		return g.a.limitError(member, "decompressed data", g.n+size, g.a.opts.MaxBytes, "max-archive-bytes")
	}
	return nil
}

// drain reads the compressed stream past the end of the tar to its end,
// so that gzip checks its CRC and length and zstd its checksums: a
// damaged archive is an error even when the tar ended before the damage.
// Writers pad a tar to a record (10 KiB by default); more than maxTrailing
// bytes after its end are refused rather than decompressed.
func (g *guard) drain() error {
	n, err := io.CopyN(io.Discard, g, maxTrailing+1)
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return g.a.readError(g, "", err)
	}
	return fmt.Errorf("%s: damaged archive: more than %d bytes after the end of the tar", g.a.path, n-1)
}

const maxTrailing = 1 << 20

// readError is the error of a failed read of the decompressed stream:
// a bound or an abort as it is, damage named with the archive.
func (a *Archive) readError(g *guard, member string, err error) error {
	if g.err != nil {
		err = g.err
	}
	var le *LimitError
	if errors.As(err, &le) || errors.Is(err, ErrAborted) {
		return err
	}
	if member != "" {
		return fmt.Errorf("%s: %s: damaged archive: %w", a.path, member, err)
	}
	return fmt.Errorf("%s: damaged archive: %w", a.path, err)
}

// decompress opens the decompressed stream of a compressed archive.
func (a *Archive) decompress() (*guard, func(), error) {
	r, done, err := decompress(io.NewSectionReader(a.ra, 0, a.size))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.path, err)
	}
	a.abort.Store(nil) // an abort stops the reads under way, not the next
	return &guard{a: a, r: r}, done, nil
}

func (a *Archive) aborted() error {
	if err := a.abort.Load(); err != nil {
		return *err
	}
	if ctx := a.opts.Context; ctx != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %w", a.path, ErrAborted, context.Cause(ctx))
	}
	return nil
}

// The archives open in the process, for AbortReads and CloseArchives.
var live = struct {
	sync.Mutex
	m map[*Archive]bool
}{m: map[*Archive]bool{}}

func track(a *Archive) {
	live.Lock()
	live.m[a] = true
	live.Unlock()
}

func untrack(a *Archive) {
	live.Lock()
	delete(live.m, a)
	live.Unlock()
}

func liveArchives() []*Archive {
	live.Lock()
	defer live.Unlock()
	out := make([]*Archive, 0, len(live.m))
	for a := range live.m {
		out = append(out, a)
	}
	return out
}

// AbortReads stops every read of an archive under way in the process
// (the one pass of OpenArchive, a later copy of pages images): it fails
// with ErrAborted. Archives stay open; a later read starts again. A
// program calls it on SIGINT.
func AbortReads() {
	for _, a := range liveArchives() {
		err := fmt.Errorf("%s: %w (interrupted)", a.path, ErrAborted)
		a.abort.Store(&err)
	}
}

// CloseArchives stops every read of an archive under way and closes every
// open archive, removing its temporary folder. A program calls it before
// it dies of a signal (SIGTERM, SIGHUP), so that no spooled pages are
// left behind.
func CloseArchives() {
	for _, a := range liveArchives() {
		err := fmt.Errorf("%s: %w (closed)", a.path, ErrAborted)
		a.abort.Store(&err)
		a.Close()
	}
}

// Temporary folders are named critq-archive-PID-RANDOM, with a file
// "owner" that records the pid and the start time of the process that
// made it. The first archive a process spools removes the folders of
// processes that are gone (killed before they could clean up).
const tempPrefix = "critq-archive-"

var sweepOnce sync.Map // temp dir -> *sync.Once

func makeTemp(parent string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	once, _ := sweepOnce.LoadOrStore(parent, new(sync.Once))
	once.(*sync.Once).Do(func() { RemoveStaleTemp(parent) })
	dir, err := os.MkdirTemp(parent, tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	owner := strconv.Itoa(os.Getpid()) + " " + processStart(os.Getpid()) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// RemoveStaleTemp removes the temporary folders in parent of critq
// processes that are gone, and returns their paths. A folder whose owner
// is alive (or cannot be told) is kept.
func RemoveStaleTemp(parent string) []string {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue // an older critq's folder or ours: the owner is unknown
		}
		dir := filepath.Join(parent, e.Name())
		start := ""
		if b, err := os.ReadFile(filepath.Join(dir, "owner")); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 && f[0] == pidText {
				start = f[1]
			}
		}
		if processGone(pid, start) && os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}
