package plugin

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"web","type":"ovlmgr-cni","unknownKey":{"x":1}}`))
	if err != nil || c.Network != "web" || c.ReadyTimeout.Duration != DefaultReadyTimeout {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"x","network":"db","readyTimeout":2.5,"mtu":1400}`))
	if err != nil || c.Network != "db" || c.ReadyTimeout.Duration != 2500*time.Millisecond || c.MTU != 1400 {
		t.Fatalf("explicit: %+v, %v", c, err)
	}
	// podman 4 (`-p 8080:80`) and the CRI send portMappings this way.
	c, err = ParseConfig([]byte(`{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]}}`))
	if err != nil || len(c.RuntimeConfig.PortMappings) != 1 || c.RuntimeConfig.PortMappings[0].HostPort != 8080 || c.RuntimeConfig.PortMappings[0].ContainerPort != 80 {
		t.Fatalf("portMappings: %+v, %v", c, err)
	}
	long := strings.Repeat("k", 63)
	c, err = ParseConfig([]byte(`{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"labels":{"app.io/tier":"db","` + long + `":"x"}}}`))
	if err != nil || c.RuntimeConfig.Labels["app.io/tier"] != "db" {
		t.Fatalf("labels: %+v, %v", c, err)
	}
	bad := []struct {
		conf string
		code uint
		want string
	}{
		{`{"name":`, types.ErrDecodingFailure, "decode"},
		{`{"name":"web","mtu":"big"}`, types.ErrInvalidNetworkConfig, `"mtu"`},
		{`{"name":"web","mtu":100}`, types.ErrInvalidNetworkConfig, `"mtu": 100`},
		{`{"name":"web","readyTimeout":"soon"}`, types.ErrInvalidNetworkConfig, `"readyTimeout"`},
		{`{"name":"web","readyTimeout":-1}`, types.ErrInvalidNetworkConfig, `"readyTimeout"`},
		{`{"name":"web","nb":"http://x"}`, types.ErrInvalidNetworkConfig, `"nb"`},
		{`{"name":"web","ovs":"tcp:nope"}`, types.ErrInvalidNetworkConfig, `"ovs"`},
		{`{"name":"web","logLevel":"loud"}`, types.ErrInvalidNetworkConfig, `"logLevel"`},
		{`{"name":"bad name"}`, types.ErrInvalidNetworkConfig, `"network"`},
		{`{"cniVersion":"1.1.0"}`, types.ErrInvalidNetworkConfig, `"network"`},
		{`{"name":"web","runtimeConfig":{"labels":{"/tier":"db"}}}`, types.ErrInvalidNetworkConfig, `label "/tier": want [A-Za-z0-9][A-Za-z0-9_./-]*, at most 63 characters`},
		{`{"name":"web","runtimeConfig":{"labels":{"` + long + `k":"x"}}}`, types.ErrInvalidNetworkConfig, `label "` + long + `k"`},
		{`{"name":"web","runtimeConfig":{"ips":"198.19.0.1"}}`, types.ErrInvalidNetworkConfig, `runtimeConfig.ips`},
		{`{"name":"web","runtimeConfig":{"portMappings":{"hostPort":80}}}`, types.ErrInvalidNetworkConfig, `runtimeConfig.portMappings`},
		{`{"name":"web","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}`, types.ErrInvalidNetworkConfig, `"portMappings": portMappings 0:80/tcp: port mapping refused: hostPort 0: allowed 1..65535`},
		{`{"name":"web","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]}}`, types.ErrInvalidNetworkConfig, `protocol "icmp": allowed tcp, udp, sctp`},
		{`{"name":"web","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"hostIP":"x"}]}}`, types.ErrInvalidNetworkConfig, `hostIP "x": not an IP address`},
	}
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.conf))
		var te *types.Error
		if !errors.As(err, &te) || te.Code != b.code || !strings.Contains(te.Msg, b.want) {
			t.Errorf("ParseConfig(%s) = %v; want code %d mentioning %s", b.conf, err, b.code, b.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	c := &Config{}
	r, err := parseRequest(c, "IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=198.19.0.9;MAC=0a:58:00:00:00:09;FOO=bar")
	if err != nil || r.IP.String() != "198.19.0.9" || r.MAC.String() != "0a:58:00:00:00:09" || r.PodName != "web-0" {
		t.Fatalf("CNI_ARGS: %+v, %v", r, err)
	}
	c.RuntimeConfig = RuntimeConfig{IPs: []string{"198.19.0.10/24"}, MAC: "0a:58:00:00:00:0a"}
	r, err = parseRequest(c, "IP=198.19.0.9")
	if err != nil || r.IP.String() != "198.19.0.10" || r.MAC.String() != "0a:58:00:00:00:0a" {
		t.Fatalf("runtimeConfig must win: %+v, %v", r, err)
	}
	for args, code := range map[string]uint{
		"FOO=bar":               types.ErrInvalidEnvironmentVariables,
		"IP=300.1.1.1":          CodeAddressRefused,
		"IP=fd00::1%eth0":       CodeAddressRefused,
		"IP=fd00::1,fd00::2":    CodeAddressRefused,
		"MAC=01:00:00:00:00:01": CodeAddressRefused,
	} {
		_, err := parseRequest(&Config{}, args)
		var te *types.Error
		if !errors.As(err, &te) || te.Code != code {
			t.Errorf("parseRequest(%q) = %v; want code %d", args, err, code)
		}
	}
	if _, err := parseRequest(&Config{RuntimeConfig: RuntimeConfig{IPs: []string{"198.19.0.1", "198.19.0.2"}}}, ""); err == nil {
		t.Error("two requested IPv4 addresses accepted")
	}
	// One address per family, from the ips capability or IP=a,b.
	r, err = parseRequest(&Config{RuntimeConfig: RuntimeConfig{IPs: []string{"fd00:198:19::9/64", "198.19.0.9/24"}}}, "")
	if err != nil || r.IP.String() != "198.19.0.9" || r.IP6.String() != "fd00:198:19::9" {
		t.Errorf("ips of both families: %+v, %v", r, err)
	}
	r, err = parseRequest(&Config{}, "IP=198.19.0.9,fd00:198:19::9")
	if err != nil || r.IP.String() != "198.19.0.9" || r.IP6.String() != "fd00:198:19::9" {
		t.Errorf("IP=v4,v6: %+v, %v", r, err)
	}
	r, err = parseRequest(&Config{}, "IP=fd00:198:19::9")
	if err != nil || r.IP.IsValid() || r.IP6.String() != "fd00:198:19::9" {
		t.Errorf("IP=v6: %+v, %v", r, err)
	}
}

// TestParseAliases: runtimeConfig.aliases as a list (libcni, containerd) or
// as podman's object keyed by network name; the entry for the config's
// network wins, then the one for the config name; anything else is code 7
// naming the key and both allowed forms.
func TestParseAliases(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"absent", `{"name":"web"}`, nil},
		{"null", `{"name":"web","runtimeConfig":{"aliases":null}}`, nil},
		{"list", `{"name":"web","runtimeConfig":{"aliases":["a","b"]}}`, []string{"a", "b"}},
		{"empty list", `{"name":"web","runtimeConfig":{"aliases":[]}}`, []string{}},
		{"podman map by name", `{"name":"web","runtimeConfig":{"aliases":{"web":["c1","0123abcd"]}}}`, []string{"c1", "0123abcd"}},
		{"map by network", `{"name":"conf","network":"web","runtimeConfig":{"aliases":{"conf":["x"],"web":["y"]}}}`, []string{"y"}},
		{"map falls back to name", `{"name":"conf","network":"web","runtimeConfig":{"aliases":{"conf":["x"]}}}`, []string{"x"}},
		{"map without this network", `{"name":"web","runtimeConfig":{"aliases":{"other":["x"]}}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.RuntimeConfig.Aliases, tc.want) || (tc.want != nil) != (c.RuntimeConfig.Aliases != nil) {
				t.Errorf("aliases %#v; want %#v", c.RuntimeConfig.Aliases, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, aliases, got string }{
		{"string", `"web"`, `got "web"`},
		{"number", `5`, `got 5`},
		{"list of numbers", `[1,2]`, `got [1,2]`},
		{"map of strings", `{"web":"a"}`, `got {"web":"a"}`},
		{"map of number lists", `{"web":[1]}`, `got {"web":[1]}`},
	} {
		t.Run("bad "+tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{"name":"web","runtimeConfig":{"aliases":` + tc.aliases + `}}`))
			var te *types.Error
			if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig {
				t.Fatalf("err %v; want code %d", err, types.ErrInvalidNetworkConfig)
			}
			for _, w := range []string{`"runtimeConfig.aliases"`, `a list of names`, `keyed by network name`, tc.got} {
				if !strings.Contains(te.Msg, w) {
					t.Errorf("%q does not mention %s", te.Msg, w)
				}
			}
		})
	}
}

// TestCheckBadInterfaceIndex: a prevResult whose address names interface
// -1 (or one past the list) is a CNI error, not a panic (index out of
// range before).
func TestCheckBadInterfaceIndex(t *testing.T) {
	for _, idx := range []string{"-1", "2"} {
		c, err := ParseConfig([]byte(`{"cniVersion":"1.0.0","name":"web","type":"ovlmgr-cni","network":"web","prevResult":{"cniVersion":"1.0.0",` +
			`"interfaces":[{"name":"ovl0"},{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"interface":` + idx + `,"address":"198.19.0.5/24"}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		err = check(c, &skel.CmdArgs{ContainerID: "c1", IfName: "eth0", Netns: "/run/netns/x"})
		if err == nil || !strings.Contains(err.Error(), "no address for interface eth0") {
			t.Errorf("interface %s: %v, want no address for interface eth0", idx, err)
		}
	}
}
