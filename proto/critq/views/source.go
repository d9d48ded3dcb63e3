// Package viewsproto holds the source of critq's views schema, views.proto,
// whose comments document each field: critq help TYPE prints them. The
// generated Go types are in package github.com/critq/critq/proto/views.
package viewsproto

import _ "embed"

// Source is views.proto as written.
//
//go:embed views.proto
var Source string
