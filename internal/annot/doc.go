// Package annot formats and parses CRIU's annotated values in both
// directions, in one place: the (criu) field options of the image schema
// (IP address words in the image's byte order, device numbers as
// "major:minor", flag sets and value names as crit prints them, task
// states, hex), human-readable sizes and JSON strings.
//
// Package codec/critjson (crit's pretty JSON), the transform rules' value
// converter, the CEL functions (ip, major, minor, human) and the views call
// it; none of them formats or parses these values on its own.
package annot
