package images

// The schema lives in ../critq/images/*.proto; gen.sh compiles it with protoc
// and the protoc-gen-go pinned by go.mod's tool directive.
//go:generate sh gen.sh
