package dump

import "io"

// CleanMemberName checks the name of a tar member of a checkpoint archive
// and returns it relative to the archive root, without "./" or a trailing
// slash ("." for the root). An absolute name or one with ".." is an error
// that says it escapes the archive.
func CleanMemberName(name string) (string, error) { return cleanName(name) }

// Decompress returns a reader of the tar inside a gzip or zstd compressed
// archive, and a function that releases the decoder.
func Decompress(r io.Reader) (io.Reader, func(), error) { return decompress(r) }

// IsCompressed reports whether the first bytes of an archive are a gzip
// or zstd magic.
func IsCompressed(head []byte) bool { return isGzip(head) || isZstd(head) }

// Path is the name the archive was opened with.
func (a *Archive) Path() string { return a.path }

// Size is the size of the archive file, in bytes.
func (a *Archive) Size() int64 { return a.size }
