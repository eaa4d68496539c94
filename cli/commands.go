package main

import "github.com/urfave/cli/v2"

// commands lists the top-level commands; each lives in its own file.
func commands() []*cli.Command {
	var cmds []*cli.Command
	for _, c := range []func() *cli.Command{
		netCommand,
	} {
		cmds = append(cmds, c())
	}
	return cmds
}
