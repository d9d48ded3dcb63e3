// Package images is CRIU 4.2's image schema as Go protobuf types: one
// message per kind of entry (pstree_entry, core_entry, mm_entry, file_entry,
// ...), generated from the .proto files in ../critq/images by gen.sh
// (go generate).
//
// The schema is CRIU's, restated with a package of its own, critq.images,
// and file paths of its own, critq/images/*.proto, so that a program can
// link critq beside go-criu, whose types register the same messages under
// CRIU's bare names. For the same reason the (criu) field option of
// opts.proto, which tells crit how to print a field (hex, flags, dev,
// ipadd, dict, conv), is never registered as an extension: [FieldOptions]
// reads it from the raw descriptor.
//
// Package magic maps each image kind to its message types; package codec
// frames the serialized messages in image files.
package images
