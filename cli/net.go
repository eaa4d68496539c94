package main

import "github.com/urfave/cli/v2"

// netCommand is `ovlmgr net`: overlay networks (OVN logical switches).
func netCommand() *cli.Command {
	return &cli.Command{
		Name:  "net",
		Usage: "create, list, show and delete overlay networks",
	}
}
