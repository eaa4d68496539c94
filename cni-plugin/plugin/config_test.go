package plugin

import (
	"errors"
	"strings"
	"testing"
	"time"

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
		{`{"name":"web","runtimeConfig":{"ips":"198.19.0.1"}}`, types.ErrInvalidNetworkConfig, `runtimeConfig.ips`},
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
		"IP=fd00::1":            CodeAddressRefused,
		"MAC=01:00:00:00:00:01": CodeAddressRefused,
	} {
		_, err := parseRequest(&Config{}, args)
		var te *types.Error
		if !errors.As(err, &te) || te.Code != code {
			t.Errorf("parseRequest(%q) = %v; want code %d", args, err, code)
		}
	}
	if _, err := parseRequest(&Config{RuntimeConfig: RuntimeConfig{IPs: []string{"198.19.0.1", "198.19.0.2"}}}, ""); err == nil {
		t.Error("two requested IPs accepted")
	}
}
