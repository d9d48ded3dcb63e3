// Package views holds the generated Go types of critq's joined views of a
// dump (../critq/views/views.proto, package critq.views): task, vma, fd, file,
// socket, mount and pagemap. Package query builds them from a dump's images
// and gives them to CEL as the elements of its view variables. proto/images
// gen.sh regenerates this package with the image schema.
package views
