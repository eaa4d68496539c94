package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// diagnose says which step of binding did not happen, asking SB (on the
// failure path only) who claimed the port and whether ovn-controller runs.
func diagnose(nd *node, lsp string) string {
	if _, ok := controllerPID(); !ok {
		return "ovn-controller is not running on this node (no live pid in " + pidfilePath() + ")"
	}
	if nd.sbEP == "" {
		return "not claimed or flows not installed (node has no ovn-remote to ask SB)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sb, err := dbconn.ConnectSBTLS(ctx, nd.sbEP, nd.tls)
	if err != nil {
		return "ovn-controller did not set ovn-installed; SB unreachable to say why: " + err.Error()
	}
	defer sb.Close()
	pb := &sbdb.PortBinding{LogicalPort: lsp}
	var rows []*sbdb.PortBinding
	if err := dbconn.Select(ctx, sb, pb, &rows, model.Condition{Field: &pb.LogicalPort, Function: ovsdb.ConditionEqual, Value: lsp}); err != nil {
		return "ovn-controller did not set ovn-installed; SB query failed: " + err.Error()
	}
	if len(rows) == 0 {
		return "ovn-northd has not created the SB Port_Binding (is ovn-northd running?)"
	}
	if rows[0].Chassis == nil {
		return fmt.Sprintf("port not claimed by any chassis: ovn-controller on this node (system-id %s) has not bound it", nd.systemID)
	}
	ch := &sbdb.Chassis{UUID: *rows[0].Chassis}
	var chs []*sbdb.Chassis
	_ = dbconn.Select(ctx, sb, ch, &chs, model.Condition{Field: &ch.UUID, Function: ovsdb.ConditionEqual, Value: *rows[0].Chassis})
	if len(chs) > 0 && chs[0].Name != nd.systemID {
		return fmt.Sprintf("port claimed by chassis %s, not this node (%s)", chs[0].Name, nd.systemID)
	}
	return "claimed by this node, but ovn-controller has not installed its flows (ovn-installed not set)"
}

func pidfilePath() string {
	dir := os.Getenv("OVN_RUNDIR")
	if dir == "" {
		dir = "/var/run/ovn"
	}
	return filepath.Join(dir, "ovn-controller.pid")
}

// controllerPID reads ovn-controller's pidfile and checks the process lives.
func controllerPID() (int, bool) {
	b, err := os.ReadFile(pidfilePath())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, false
	}
	// A zombie counts as stopped.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			return pid, false
		}
	}
	return pid, true
}
