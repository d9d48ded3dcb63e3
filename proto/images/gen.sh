#!/bin/sh
# Regenerates the Go code of critq's CRIU image schema.
#
# opts.proto declares the (criu) field option. protoc reads it, but it gets no
# Go code: extension 1018 of google.protobuf.FieldOptions must never be
# registered in the global registry (go-criu registers the same number, and two
# registrations panic). The options stay in each field's descriptor as raw
# bytes; options.go reads them from there.
set -eu
command -v protoc >/dev/null || { echo "gen.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
cd ..
rm -f images/*.pb.go views/*.pb.go
protoc --plugin=protoc-gen-go="$bin/protoc-gen-go" -I . \
	--go_out=. --go_opt=module=github.com/critq/critq/proto \
	$(ls critq/images/*.proto | grep -v '/opts\.proto$') critq/views/*.proto
