package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/topology"
)

// completeTimeout bounds the NB read behind name completions: a shell waits
// for it on every TAB.
const completeTimeout = time.Second

// completionCommand is `ovlmgr completion bash|zsh|fish`.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Completes commands, flags and object names (networks, routers, containers,
read from the NB with a 1 s timeout: OVLMGR_NB, or --nb/--lab on the line).

   source <(ovlmgr completion bash)                 # bash, now; or into ~/.bashrc
   ovlmgr completion zsh > "${fpath[1]}/_ovlmgr"    # zsh
   ovlmgr completion fish > ~/.config/fish/completions/ovlmgr.fish`,
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "bash|zsh|fish"); err != nil {
				return err
			}
			script, ok := completionScripts[c.Args().First()]
			if !ok {
				return usagef("completion %q: allowed are bash, zsh, fish", c.Args().First())
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

var completionScripts = map[string]string{
	"bash": `# bash completion for ovlmgr (ovlmgr completion bash)
_ovlmgr() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($(ovlmgr __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
}
complete -o default -F _ovlmgr ovlmgr
`,
	"zsh": `#compdef ovlmgr
# zsh completion for ovlmgr (ovlmgr completion zsh)
_ovlmgr() {
    local -a cands
    cands=("${(@f)$(ovlmgr __complete -- "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    compadd -- "${(@)cands:#}"
}
if [[ "$funcstack[1]" = "_ovlmgr" ]]; then _ovlmgr "$@"; else compdef _ovlmgr ovlmgr; fi
`,
	"fish": `# fish completion for ovlmgr (ovlmgr completion fish)
function __ovlmgr_complete
    set -l toks (commandline -opc)
    set -e toks[1]
    ovlmgr __complete -- $toks (commandline -ct) 2>/dev/null
end
complete -c ovlmgr -f -a '(__ovlmgr_complete)'
`,
}

// completeCommand is the hidden `ovlmgr __complete -- WORDS... CURRENT`
// the scripts call: it prints one candidate per line for CURRENT.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			cur := ""
			if len(args) > 0 {
				cur, args = args[len(args)-1], args[:len(args)-1]
			}
			for _, s := range complete(c, args, cur) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// objKind is what a position on the command line names.
type objKind int

const (
	objNone objKind = iota
	objNetwork
	objRouter
	objContainer
)

// complete returns the candidates for cur after words (the words after
// the program name).
func complete(c *cli.Context, words []string, cur string) []string {
	app := c.App
	flags, cmds := app.Flags, app.Commands
	var path []string
	var pos []string
	nbFlag, labName := "", ""
	prevFlag := ""
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") && w != "-" && w != "--" {
			name := strings.TrimLeft(w, "-")
			if k, v, ok := strings.Cut(name, "="); ok {
				nbFlag, labName = setConn(k, v, nbFlag, labName)
				continue
			}
			if takesValue(flags, w) || takesValue(app.Flags, w) {
				if i+1 < len(words) {
					nbFlag, labName = setConn(name, words[i+1], nbFlag, labName)
					i++
				} else {
					prevFlag = name
				}
			}
			continue
		}
		if len(pos) == 0 {
			if sub := findCommand(cmds, w); sub != nil {
				path = append(path, sub.Name)
				flags, cmds = append(append([]cli.Flag{}, app.Flags...), sub.Flags...), sub.Subcommands
				continue
			}
		}
		pos = append(pos, w)
	}
	var kind objKind
	switch {
	case prevFlag != "":
		kind = flagKind(prevFlag)
		if kind == objNone {
			return nil // a value we cannot guess
		}
	case strings.HasPrefix(cur, "-"):
		var out []string
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) > 1 {
					out = append(out, "--"+n)
				}
			}
		}
		return filterPrefix(out, cur)
	case len(cmds) > 0 && len(pos) == 0:
		var out []string
		for _, sc := range cmds {
			if !sc.Hidden {
				out = append(out, sc.Name)
			}
		}
		return filterPrefix(out, cur)
	default:
		kind = argKind(path, len(pos))
	}
	if kind == objNone {
		return nil
	}
	return filterPrefix(objectNames(c.Context, kind, nbFlag, labName), cur)
}

func setConn(flag, val, nb, labName string) (string, string) {
	switch flag {
	case "nb":
		return val, labName
	case "lab":
		return nb, val
	}
	return nb, labName
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func flagKind(flag string) objKind {
	switch flag {
	case "net", "network":
		return objNetwork
	case "router":
		return objRouter
	}
	return objNone
}

// argKind tells what the n-th positional argument of the command path names.
func argKind(path []string, n int) objKind {
	p := strings.Join(path, " ")
	switch {
	case p == "trace" || p == "diagnose mtu":
		return objContainer
	case p == "router attach" || p == "router detach":
		if n == 0 {
			return objRouter
		}
		return objNetwork
	case p == "router delete" || p == "router show":
		return objRouter
	case p == "port attach" && n == 0:
		return objNetwork
	case strings.HasPrefix(p, "net ") && p != "net create" && p != "net list" && n == 0:
		return objNetwork
	}
	return objNone
}

// objectNames reads the names of kind from the NB within completeTimeout;
// nothing when the NB cannot answer in time.
func objectNames(parent context.Context, kind objKind, nbFlag, labName string) []string {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, completeTimeout)
	defer cancel()
	ep := dbconn.ResolveNB(nbFlag)
	if labName != "" {
		l, err := lab.Load(labName)
		if err != nil {
			return nil
		}
		ep = l.NB
	}
	nb, err := dbconn.ConnectNB(ctx, ep)
	if err != nil {
		return nil
	}
	defer nb.Close()
	var out []string
	switch kind {
	case objNetwork:
		ns, err := network.List(ctx, nb)
		if err != nil {
			return nil
		}
		for _, n := range ns {
			out = append(out, n.Name)
		}
	case objRouter:
		rs, err := router.List(ctx, nb)
		if err != nil {
			return nil
		}
		for _, r := range rs {
			out = append(out, r.Name)
		}
	case objContainer:
		g, err := topology.Read(ctx, nb, nil)
		if err != nil {
			return nil
		}
		seen := map[string]bool{}
		for _, c := range g.Containers {
			if !seen[c.Name] {
				seen[c.Name] = true
				out = append(out, c.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func filterPrefix(l []string, prefix string) []string {
	var out []string
	for _, s := range l {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
