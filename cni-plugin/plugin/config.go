// Package plugin implements the ovlmgr-cni verbs (ADD, DEL, CHECK, STATUS,
// GC; VERSION is answered by skel): config parsing, one call into
// ovs/attach per verb, CNI error codes (cniError) and result building.
package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	"github.com/ovlmgr/ovlmgr/ovs/cniconf"
)

// VersionInfo is what VERSION answers.
func VersionInfo() version.PluginInfo { return version.PluginSupports(cniconf.SupportedVersions()...) }

// Our error codes (the spec reserves 0-99).
const (
	CodeInternal       = 100 // anything not covered below
	CodeNodeNotJoined  = 101 // the local Open_vSwitch db lacks system-id / ovlmgr.io/nb
	CodeNoAddress      = 102 // the network's subnet is full
	CodeAddressRefused = 103 // a requested IP/MAC is invalid, outside the subnet or in use
	CodeExists         = 104 // this container interface is already attached
	CodePortConflict   = 105 // a portMappings host port is published already (by another container)
)

// STATUS codes of the 1.1 spec.
const (
	CodePluginNotAvailable  = 50 // ADD would not work now
	CodeLimitedConnectivity = 51 // existing containers may be affected too
)

// DefaultReadyTimeout bounds ADD's wait for the address and ovn-installed.
const DefaultReadyTimeout = attach.DefaultReadyTimeout

// Config is one plugin entry of a conflist, plus what the runtime injects.
type Config struct {
	types.PluginConf
	// Network is the ovlmgr network; default: the config name.
	Network string `json:"network,omitempty"`
	// NB are the Northbound endpoints; default: the node's Open_vSwitch
	// external_ids:ovlmgr.io/nb written by `ovlmgr node join`.
	NB string `json:"nb,omitempty"`
	// OVS is the local Open_vSwitch db; default unix:$OVS_RUNDIR/db.sock.
	OVS string `json:"ovs,omitempty"`
	// MTU overrides the network's and the derived MTU.
	MTU int `json:"mtu,omitempty"`
	// ReadyTimeout is a Go duration ("30s") or a number of seconds.
	ReadyTimeout Duration `json:"readyTimeout,omitempty"`
	LogFile      string   `json:"logFile,omitempty"`
	LogLevel     string   `json:"logLevel,omitempty"`

	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
	// Old spelling of the GC list (libcni before #1101).
	Attachments []types.GCAttachment `json:"cni.dev/attachments,omitempty"`
}

// RuntimeConfig holds the capabilities we honour.
type RuntimeConfig struct {
	IPs []string `json:"ips,omitempty"`
	MAC string   `json:"mac,omitempty"`
	// Aliases are the container's DNS names, from the "aliases" capability
	// in either form runtimes send: a list (["web","db"]) or podman's
	// object keyed by network name ({"NET":["web","db"]}); ParseConfig
	// resolves the object to this network's entry.
	Aliases    []string        `json:"-"`
	RawAliases json.RawMessage `json:"aliases,omitempty"`
	// Labels (capability "labels") become the port's labels; services
	// select backends by them.
	Labels map[string]string `json:"labels,omitempty"`
	// PortMappings (capability "portMappings": `podman run -p`, CRI
	// hostPort) are published on the external address of the network's
	// router gateway (ovn/publish).
	PortMappings []publish.Mapping `json:"portMappings,omitempty"`
}

// Duration accepts "30s" or a number of seconds.
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return &DurationError{Got: strconv.Quote(s)}
		}
		d.Duration = v
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || f <= 0 {
		return &DurationError{Got: string(b), Number: true}
	}
	d.Duration = time.Duration(f * float64(time.Second))
	return nil
}

// DurationError is a value Duration refuses; Got is the JSON as given.
type DurationError struct {
	Got string
	// Number: Got is not a string, so a number of seconds was allowed too.
	Number bool
}

func (e *DurationError) Error() string {
	if e.Number {
		return "want a positive duration such as \"30s\" or a number of seconds, got " + e.Got
	}
	return "want a positive duration such as \"30s\", got " + e.Got
}

// cniErr builds a CNI error.
func cniErr(code uint, msg string, details ...string) *types.Error {
	return types.NewError(code, msg, strings.Join(details, "; "))
}

// ParseConfig decodes stdin: bad JSON is code 6, a wrong type or value
// code 7 naming the key. Unknown keys are ignored.
func ParseConfig(stdin []byte) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(stdin, c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key %q: want %s, got %s", te.Field, te.Type, te.Value))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, cniErr(types.ErrDecodingFailure, fmt.Sprintf("decode config: %v", err))
		}
		// Errors from our own UnmarshalJSON: name the key.
		var de *DurationError
		if errors.As(err, &de) {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"readyTimeout\": %v", err))
		}
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config: %v", err))
	}
	if c.Network == "" {
		c.Network = c.Name
	}
	if c.Network == "" {
		return nil, cniErr(types.ErrInvalidNetworkConfig, `config key "network": empty and no "name" to default to`)
	}
	if err := network.ValidateName(`config key "network":`, c.Network); err != nil {
		return nil, cniErr(types.ErrInvalidNetworkConfig, err.Error())
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 9000) {
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"mtu\": %d: want 576 to 9000", c.MTU))
	}
	if c.NB != "" {
		if _, err := dbconn.ParseEndpoints(c.NB); err != nil {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"nb\": %v", err))
		}
	}
	if c.OVS != "" {
		if _, err := dbconn.ParseEndpoints(c.OVS); err != nil {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"ovs\": %v", err))
		}
	}
	switch c.LogLevel {
	case "", "error", "info", "debug":
	default:
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("config key \"logLevel\": %q: want error, info or debug", c.LogLevel))
	}
	for k := range c.RuntimeConfig.Labels {
		if !names.ValidLabelKey(k) {
			return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("runtimeConfig key \"labels\": label %q: want %s, at most %d characters", k, names.LabelKeyRule, names.MaxLen))
		}
	}
	if err := publish.Check(c.RuntimeConfig.PortMappings); err != nil {
		return nil, cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("runtimeConfig key \"portMappings\": %v", err))
	}
	aliases, err := parseAliases(c.RuntimeConfig.RawAliases, c.Network, c.Name)
	if err != nil {
		return nil, err
	}
	c.RuntimeConfig.Aliases = aliases
	if c.ReadyTimeout.Duration == 0 {
		c.ReadyTimeout.Duration = DefaultReadyTimeout
	}
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.PluginConf); err != nil {
			return nil, cniErr(types.ErrDecodingFailure, fmt.Sprintf("decode prevResult: %v", err))
		}
	}
	return c, nil
}

// parseAliases reads runtimeConfig.aliases: a list of names, or an object
// of lists keyed by network name (podman), of which the entry for network
// is taken, else the one for the config name, else none.
func parseAliases(raw json.RawMessage, network, name string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	bad := func(got string) error {
		return cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf(`config key "runtimeConfig.aliases": want a list of names (["web"]) or an object of such lists keyed by network name ({%q:["web"]}), got %s`, network, got))
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var byNet map[string][]string
	if err := json.Unmarshal(raw, &byNet); err != nil {
		got := string(raw)
		if len(got) > 64 {
			got = got[:64] + "..."
		}
		return nil, bad(got)
	}
	if l, ok := byNet[network]; ok {
		return l, nil
	}
	return byNet[name], nil
}

// Args are the CNI_ARGS keys we read.
type Args struct {
	types.CommonArgs
	IP                types.UnmarshallableString
	MAC               types.UnmarshallableString
	K8S_POD_NAME      types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAMESPACE types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

// request is the requested IPv4 and IPv6 addresses (zero: IPAM) and MAC
// (nil: derived).
type request struct {
	IP      netip.Addr
	IP6     netip.Addr
	MAC     net.HardwareAddr
	PodName string
}

// parseRequest reads runtimeConfig ips/mac and CNI_ARGS IP=/MAC= (runtimeConfig wins).
func parseRequest(c *Config, cniArgs string) (request, error) {
	var r request
	a := Args{}
	if cniArgs != "" {
		if err := types.LoadArgs(cniArgs, &a); err != nil {
			return r, cniErr(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_ARGS: %v", err))
		}
	}
	r.PodName = string(a.K8S_POD_NAME)
	macStr := string(a.MAC)
	// CNI_ARGS IP= is one address or a comma list (one per family).
	var ipStrs []string
	if string(a.IP) != "" {
		ipStrs = strings.Split(string(a.IP), ",")
	}
	src := "CNI_ARGS IP"
	if len(c.RuntimeConfig.IPs) > 0 {
		ipStrs, src = c.RuntimeConfig.IPs, "runtimeConfig ips"
	}
	for _, ipStr := range ipStrs {
		s := strings.TrimSpace(ipStr)
		if p, err := netip.ParsePrefix(s); err == nil {
			s = p.Addr().String()
		}
		ip, err := netip.ParseAddr(s)
		switch {
		case err != nil || ip.Zone() != "" || ip.Is4In6():
			return r, cniErr(CodeAddressRefused, fmt.Sprintf("%s %q: want an IPv4 address such as 198.19.0.10 and/or an IPv6 one such as fd00:198:19::10", src, ipStr))
		case ip.Is4() && r.IP.IsValid(), ip.Is6() && r.IP6.IsValid():
			return r, cniErr(CodeAddressRefused, fmt.Sprintf("%s %v: at most one IPv4 and one IPv6 address", src, ipStrs))
		case ip.Is4():
			r.IP = ip
		default:
			r.IP6 = ip
		}
	}
	msrc := "CNI_ARGS MAC"
	if c.RuntimeConfig.MAC != "" {
		macStr, msrc = c.RuntimeConfig.MAC, "runtimeConfig mac"
	}
	if macStr != "" {
		m, err := net.ParseMAC(macStr)
		if err != nil {
			return r, cniErr(CodeAddressRefused, fmt.Sprintf("%s %q: want a unicast MAC such as 02:00:c6:13:00:0a", msrc, macStr))
		}
		if err := ovnport.CheckMAC(m); err != nil {
			return r, cniErr(CodeAddressRefused, fmt.Sprintf("%s: %v", msrc, err))
		}
		r.MAC = m
	}
	return r, nil
}

// logger writes to logFile or stderr, never stdout.
type logger struct {
	l     *log.Logger
	level int
	close func()
}

func newLogger(c *Config, verb, container, ifName string) *logger {
	var w io.Writer = os.Stderr
	closer := func() {}
	if c != nil && c.LogFile != "" {
		if f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err == nil {
			w, closer = f, func() { f.Close() }
		}
	}
	lv := 1
	if c != nil {
		switch c.LogLevel {
		case "error":
			lv = 0
		case "debug":
			lv = 2
		}
	}
	prefix := fmt.Sprintf("ovlmgr-cni %s %.12s/%s: ", verb, container, ifName)
	return &logger{l: log.New(w, prefix, log.LstdFlags|log.Lmicroseconds), level: lv, close: closer}
}

func (l *logger) Infof(f string, a ...interface{}) {
	if l.level >= 1 {
		l.l.Printf(f, a...)
	}
}
func (l *logger) Debugf(f string, a ...interface{}) {
	if l.level >= 2 {
		l.l.Printf(f, a...)
	}
}
func (l *logger) Errorf(f string, a ...interface{}) { l.l.Printf("error: "+f, a...) }

// resultFromPrev converts a prevResult to the current type (nil if none).
func resultFromPrev(c *Config) (*current.Result, error) {
	if c.PrevResult == nil {
		return nil, nil
	}
	r, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return nil, cniErr(types.ErrDecodingFailure, fmt.Sprintf("convert prevResult: %v", err))
	}
	return r, nil
}
