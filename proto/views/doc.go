// Package views holds the generated Go types of critq's joined views of a
// dump (../critq/views/views.proto, package critq.views): task, vma, fd, file,
// socket, mount, pagemap and thread. Package query builds them from a dump's
// images and gives them to CEL as the elements of its view variables;
// problem is built by package check (the problems view). proto/images
// gen.sh regenerates this package with the image schema.
package views
