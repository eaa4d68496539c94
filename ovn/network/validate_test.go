package network_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestValidateSpec: the spec and IPAM rules, without a database. Each bad
// spec is refused with a *names.FieldError naming the field and the value;
// good specs pass.
func TestValidateSpec(t *testing.T) {
	good := []network.Spec{
		{Name: "web", Subnet: "198.19.0.0/24"},
		{Name: "w.e_b-1", Subnet: "10.0.0.0/8"},
		{Name: "web", Subnet: "198.19.0.0/30"},
		{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.0.254", Exclude: []string{"198.19.0.9", "198.19.0.20..198.19.0.30"}},
		{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "fd00:1::/64", MTU: 1400, Labels: map[string]string{"team": "a"}},
		{Name: "web", Subnet: "198.19.0.0/24", MTU: 576},
		{Name: "web", Subnet: "198.19.0.0/24", MTU: 9000},
	}
	for _, s := range good {
		if err := network.Validate(s); err != nil {
			t.Errorf("Validate(%+v) = %v; want nil", s, err)
		}
	}
	bad := []struct {
		spec  network.Spec
		field string
		value string
	}{
		{network.Spec{Name: "-web", Subnet: "198.19.0.0/24"}, "name", "-web"},
		{network.Spec{Name: "web"}, "subnet", ""},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/33"}, "subnet", "198.19.0.0/33"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0"}, "subnet", "198.19.0.0"},
		{network.Spec{Name: "web", Subnet: "198.0.0.0/7"}, "subnet", "198.0.0.0/7"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/31"}, "subnet", "198.19.0.0/31"},
		{network.Spec{Name: "web", Subnet: "198.19.0.5/24"}, "subnet", "198.19.0.5/24"},
		{network.Spec{Name: "web", Subnet: "fd00::/64"}, "subnet", "fd00::/64"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "fd00::/48"}, "ipv6 subnet", "fd00::/48"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", IPv6Subnet: "fd00::1/64"}, "ipv6 subnet", "fd00::1/64"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.1.1"}, "gateway", "198.19.1.1"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.0.0"}, "gateway", "198.19.0.0"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Gateway: "198.19.0.255"}, "gateway", "198.19.0.255"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.1.5"}}, "exclude", "198.19.1.5"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", Exclude: []string{"198.19.0.9..198.19.0.5"}}, "exclude", "198.19.0.9..198.19.0.5"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", MTU: 100}, "mtu", "100"},
		{network.Spec{Name: "web", Subnet: "198.19.0.0/24", MTU: 9001}, "mtu", "9001"},
	}
	for _, c := range bad {
		err := network.Validate(c.spec)
		if err == nil {
			t.Errorf("Validate(%+v) = nil; want an error naming %s", c.spec, c.field)
			continue
		}
		var fe *names.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("Validate(%+v) = %v; want a *names.FieldError", c.spec, err)
			continue
		}
		// Value is as printed: quoted when it is a string.
		if fe.Field != c.field || strings.Trim(fe.Value, `"`) != c.value {
			t.Errorf("Validate(%+v): field %q value %q; want %q %q", c.spec, fe.Field, fe.Value, c.field, c.value)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Validate(%+v) = %q: want one line", c.spec, err)
		}
	}
}
