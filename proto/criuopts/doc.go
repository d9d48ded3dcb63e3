// Package criuopts stands where the Go code of critq/images/opts.proto would
// be. That file declares the (criu) field option as extension 1018 of
// google.protobuf.FieldOptions; critq never generates or registers it, so that
// critq links beside go-criu, which registers the same extension. The
// generated schema imports this package only for its side effects, and it has
// none. Package images reads the options from the raw descriptors.
package criuopts
