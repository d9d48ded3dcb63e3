package transform

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// An in-place transform holds an exclusive lock on the dump folder for
// its whole transaction, from reading the dump to removing the journal,
// so that two writers never interleave: the second waits, or fails.
// The lock is flock(2) on the folder itself (no lock file is left in the
// dump), or on the archive file (see ApplyArchiveInPlace); the kernel
// drops it when its holder dies. Where flock is missing
// (Windows) LockDump does not lock.

// ErrLocked is the error of LockDump when another writer holds the lock.
var ErrLocked = errors.New("another critq transform is writing this dump")

// DefaultLockWait is how long ApplyInPlace and Recover wait for the lock
// when the caller holds none.
const DefaultLockWait = 30 * time.Second

// Lock is an exclusive lock on a dump folder.
type Lock struct {
	f   *os.File
	old *os.File // see moveTo
	dir string
}

// LockDump takes the lock of the dump in dir, waiting up to wait for
// another holder to release it (0: not at all; a negative wait: for as
// long as it takes). waiting, when set, is called once if the lock is
// held by another.
func LockDump(dir string, wait time.Duration, waiting func()) (*Lock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	pause := 10 * time.Millisecond
	for first := true; ; first = false {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: lock: %w", dir, err)
		}
		if ok && !replaced(f, dir) {
			return &Lock{f: f, dir: dir}, nil
		}
		if ok {
			// An in-place run renamed a new archive over the one
			// locked: lock that one.
			f.Close()
			if f, err = os.Open(dir); err != nil {
				return nil, err
			}
			continue
		}
		if wait == 0 || wait > 0 && time.Now().After(deadline) {
			f.Close()
			if wait == 0 {
				return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
			}
			return nil, fmt.Errorf("%s: %w: gave up after %v", dir, ErrLocked, wait)
		}
		if first && waiting != nil {
			waiting()
		}
		time.Sleep(pause)
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// replaced reports whether the path no longer names the file f.
func replaced(f *os.File, p string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(p)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.dropOld()
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// lockFor returns o.Lock, or a lock of dir taken now (with release to
// call at the end).
func (o *InPlaceOptions) lockFor(dir string) (l *Lock, release func(), err error) {
	if o.Lock != nil {
		return o.Lock, func() {}, nil
	}
	l, err = LockDump(dir, DefaultLockWait, nil)
	if err != nil {
		return nil, nil, err
	}
	return l, func() { l.Unlock() }, nil
}

// moveTo locks the file at p, which is about to be renamed over the
// locked archive: the lock follows the archive. The old file stays locked
// until dropOld (after the rename) or Unlock, so that a writer waiting on
// it finds the new file in place when it gets it.
func (l *Lock) moveTo(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	ok, err := tryLock(f)
	if err == nil && !ok {
		err = ErrLocked
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: lock: %w", p, err)
	}
	l.old, l.f = l.f, f
	return nil
}

// dropOld releases the lock of the file moveTo moved away from.
func (l *Lock) dropOld() {
	if l.old != nil {
		l.old.Close()
		l.old = nil
	}
}
