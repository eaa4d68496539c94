// Command ovlmgr-cni is the CNI plugin that puts containers on ovlmgr
// overlay networks.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ovlmgr-cni: not implemented yet")
	os.Exit(1)
}
