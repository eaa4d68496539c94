package main

import "github.com/urfave/cli/v2"

// commands lists the top-level commands; each lives in its own file.
func commands() []*cli.Command {
	var cmds []*cli.Command
	for _, c := range []func() *cli.Command{
		netCommand,
		portCommand,
		cniCommand,
		nodeCommand,
		labCommand,
		serviceCommand,
		dnsCommand,
		diagnoseCommand,
		traceCommand,
		routerCommand,
		fipCommand,
		siteCommand,
		encryptCommand,
		underlayCommand,
		policyCommand,
		eventsCommand,
		exporterCommand,
		topologyCommand,
		pkiCommand,
		controlCommand,
		completionCommand,
		completeCommand,
	} {
		cmds = append(cmds, c())
	}
	markUsageErrors(cmds)
	return cmds
}

// markUsageErrors makes flag errors of every (sub)command exit with code 2.
func markUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
		}
		markUsageErrors(c.Subcommands)
	}
}
