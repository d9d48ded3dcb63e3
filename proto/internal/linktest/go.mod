module github.com/critq/critq/proto/internal/linktest

go 1.26.8

replace github.com/critq/critq => ../../..

require (
	github.com/checkpoint-restore/go-criu/v8 v8.3.0
	github.com/critq/critq v0.0.0-00010101000000-000000000000
	google.golang.org/protobuf v1.36.12
)
