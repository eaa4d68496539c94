package plugin

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/ovlmgr/ovlmgr/ovs/attach"
)

// envRefill carries a refill job to the detached child ADD starts (JSON
// of refillJob); the child refills and exits without speaking CNI.
const envRefill = "OVLMGR_CNI_REFILL"

// refillTimeout bounds a background refill.
const refillTimeout = 20 * time.Second

type refillJob struct {
	Network  string `json:"network"`
	NB       string `json:"nb,omitempty"`
	OVS      string `json:"ovs,omitempty"`
	LogFile  string `json:"logFile,omitempty"`
	LogLevel string `json:"logLevel,omitempty"`
}

// spawnRefill starts this binary again, detached (own session, stdio on
// /dev/null so the runtime never waits for it), to bring this node's pool
// of the network back to size after ADD: the refill waits for ovn-northd,
// ADD does not. The child inherits linger (files whose last close is slow,
// see attach.Attachment.Linger) and closes them when it exits, off ADD's
// path. A failure to start is logged only.
func spawnRefill(c *Config, log *logger, linger []*os.File) {
	job, err := json.Marshal(refillJob{Network: c.Network, NB: c.NB, OVS: c.OVS, LogFile: c.LogFile, LogLevel: c.LogLevel})
	if err != nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		log.Errorf("pool refill: %v", err)
		return
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envRefill+"="+string(job))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = linger
	if err := cmd.Start(); err != nil {
		log.Errorf("pool refill: %v", err)
		return
	}
	_ = cmd.Process.Release()
}

// closeAll closes fs (after spawnRefill handed them on, a close that
// returns at once).
func closeAll(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// RefillMain runs a refill job when this process is a child of
// spawnRefill and reports true; otherwise it returns false at once.
func RefillMain() bool {
	v, ok := os.LookupEnv(envRefill)
	if !ok {
		return false
	}
	var job refillJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		return true
	}
	c := &Config{Network: job.Network, NB: job.NB, OVS: job.OVS, LogFile: job.LogFile, LogLevel: job.LogLevel}
	log := newLogger(c, "REFILL", "", "")
	defer log.close()
	start := time.Now()
	res, err := attach.Refill(context.Background(), attach.RefillRequest{Network: job.Network, NB: job.NB, OVS: job.OVS, Timeout: refillTimeout})
	if err != nil {
		log.Errorf("pool refill of network %s: %v", job.Network, err)
		return true
	}
	log.Debugf("pool of network %s: %d ready, %d made, %d removed in %s", job.Network, res.Ready, res.Made, res.Removed,
		time.Since(start).Round(time.Millisecond))
	return true
}
