// Command critq reads, queries and rewrites CRIU checkpoint images.
//
// Run "critq help" for the commands; package cli holds them.
package main

import (
	"os"

	"github.com/critq/critq/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
