package service

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/names"
)

// VIP is a service's virtual address, port and protocol.
type VIP struct {
	Addr     netip.Addr
	Port     int
	Protocol string // "tcp" or "udp"
}

// String is "IP:PORT/proto" ("[v6]:PORT/proto").
func (v VIP) String() string { return v.Key() + "/" + v.Protocol }

// Key is the Load_Balancer vips key "IP:PORT" ("[v6]:PORT").
func (v VIP) Key() string { return hostPort(v.Addr, v.Port) }

func hostPort(a netip.Addr, port int) string {
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// ParseVIP parses "IP:PORT[/tcp|udp]" (IPv6 as "[IP]:PORT"); tcp by default.
func ParseVIP(s string) (VIP, error) {
	v := VIP{Protocol: "tcp"}
	hp, proto, ok := strings.Cut(strings.TrimSpace(s), "/")
	if ok {
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" {
			return v, names.Bad("vip", s, "protocol %q: allowed are tcp, udp", proto)
		}
		v.Protocol = proto
	}
	host, port, err := splitHostPort(hp)
	if err != nil {
		return v, names.Bad("vip", s, "%v (want IP:PORT[/tcp|udp], e.g. 198.18.200.1:80/tcp)", err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return v, names.Bad("vip", s, "%q is not an IP address (want IP:PORT[/tcp|udp])", host)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return v, names.Bad("vip", s, "%s cannot be a service address (unspecified, loopback or multicast)", a)
	}
	v.Addr, v.Port = a, port
	return v, nil
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("want HOST:PORT")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: allowed are 1-65535", p)
	}
	if host == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	return host, port, nil
}

// BackendRef is a parsed --backend: a container name or an address, and a port.
type BackendRef struct {
	Host string     // as given
	Addr netip.Addr // valid when Host is an address
	Port int
}

// ParseBackend parses "CONTAINER_OR_IP:PORT".
func ParseBackend(s string) (BackendRef, error) {
	host, port, err := splitHostPort(strings.TrimSpace(s))
	if err != nil {
		return BackendRef{}, names.Bad("backend", s, "%v (want CONTAINER_OR_IP:PORT, e.g. web-1:8080 or 198.18.0.5:8080)", err)
	}
	b := BackendRef{Host: host, Port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		b.Addr = a.Unmap()
	}
	return b, nil
}

// ParseSelector parses "k=v[,k2=v2]" values (repeatable) into labels.
func ParseSelector(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, val := range vals {
		for _, kv := range strings.Split(val, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.ContainsAny(k+v, " \t") {
				return nil, names.Bad("selector", val, "want label=value[,label=value]")
			}
			out[k] = v
		}
	}
	return out, nil
}

// HealthCheck is an optional health check: probe every Interval seconds,
// a probe fails after Timeout seconds.
type HealthCheck struct {
	Interval int `json:"interval"`
	Timeout  int `json:"timeout"`
}

// ParseHealthCheck parses "interval,timeout" in seconds ("5,2"); "" is none.
func ParseHealthCheck(s string) (*HealthCheck, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, ",")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	t, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || i < 1 || t < 1 || i > 3600 || t > 3600 {
		return nil, names.Bad("health check", s, "want INTERVAL,TIMEOUT in whole seconds 1-3600, e.g. 5,2")
	}
	return &HealthCheck{Interval: i, Timeout: t}, nil
}

func (h *HealthCheck) String() string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("%d,%d", h.Interval, h.Timeout)
}

func formatSelector(sel map[string]string) string {
	ks := make([]string, 0, len(sel))
	for k := range sel {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

func parseAddrPorts(s string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, f := range strings.Split(s, ",") {
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(f)); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

func formatAddrPorts(aps []netip.AddrPort) string {
	s := make([]string, 0, len(aps))
	seen := map[netip.AddrPort]bool{}
	for _, ap := range aps {
		if !seen[ap] {
			seen[ap] = true
			s = append(s, ap.String())
		}
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
