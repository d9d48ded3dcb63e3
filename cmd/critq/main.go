// Command critq reads, queries and rewrites CRIU checkpoint images.
//
// Run "critq help" for the commands.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
