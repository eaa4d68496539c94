package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// cniError turns an error of ovs/attach (with the ovn/port, ovs/port and
// network sentinels it passes on) into a *types.Error: the one place where
// the verbs' failures get their CNI codes, chosen by errors.Is/As on kinds,
// never by text. The message is the error's text, preceded by the config
// key or variable at fault where there is one. nil stays nil; a
// *types.Error (config parsing) is kept.
func cniError(err error) error {
	if err == nil {
		return nil
	}
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	var ge *attach.GCError
	if errors.As(err, &ge) {
		return cniErr(CodeInternal, fmt.Sprintf("GC of network %s: %d error(s)", ge.Network, len(ge.Errs)), ge.Details()...)
	}
	var ne *attach.NetNSError
	if errors.As(err, &ne) {
		return cniErr(types.ErrInvalidEnvironmentVariables, ne.Describe("CNI_NETNS"))
	}
	code, prefix, hint := cniCode(err)
	return cniErr(code, prefix+err.Error()+hint)
}

// cniCode is the mapping table: the CNI code for err, the prefix naming
// the config key or variable at fault and a hint of what fixes it. A failed
// Attach whose undo left the NB port gets the code of why it failed.
func cniCode(err error) (code uint, prefix, hint string) {
	var lo *attach.LeftoverError
	if errors.As(err, &lo) {
		err = lo.Err
	}
	var nr *ovsport.NotReadyError
	switch {
	// The kinds of ovs/attach first: each wraps the error it describes.
	case errors.Is(err, attach.ErrCheckFailed):
		return CodeInternal, "", ""
	case errors.Is(err, attach.ErrUnavailable):
		return types.ErrTryAgainLater, "", ""
	case errors.Is(err, attach.ErrBadNetNS):
		return types.ErrInvalidEnvironmentVariables, "", ""
	case errors.Is(err, attach.ErrNodeNotJoined):
		return CodeNodeNotJoined, "", " (run ovlmgr node join)"
	case errors.Is(err, attach.ErrNoNB):
		return types.ErrInvalidNetworkConfig, `config key "nb": `, " (run ovlmgr node join --nb ...)"
	case errors.Is(err, attach.ErrExists), errors.Is(err, ovsport.ErrLinkExists):
		return CodeExists, "", ""
	case errors.Is(err, attach.ErrAddressRefused):
		return CodeAddressRefused, "", ""
	case errors.Is(err, network.ErrNotFound), errors.Is(err, ovnport.ErrNetworkNotFound):
		return types.ErrInvalidNetworkConfig, `config key "network": `, ""
	case errors.Is(err, ovnport.ErrNoAddress):
		return CodeNoAddress, "", ""
	case errors.Is(err, ovnport.ErrAddressInUse), errors.Is(err, ovnport.ErrMACRefused), errors.Is(err, ovnport.ErrIPRefused):
		return CodeAddressRefused, "", ""
	case errors.Is(err, ovnport.ErrExists):
		return CodeExists, "", ""
	case errors.Is(err, publish.ErrConflict):
		return CodePortConflict, "", ""
	case errors.Is(err, publish.ErrRefused):
		return types.ErrInvalidNetworkConfig, `runtimeConfig key "portMappings": `, ""
	case errors.Is(err, ovnport.ErrNoIPAM), errors.As(err, &nr), errors.Is(err, context.DeadlineExceeded):
		return types.ErrTryAgainLater, "", ""
	}
	return CodeInternal, "", ""
}
