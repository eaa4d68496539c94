package names_test

import (
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/names"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"a", "web", "Net-1", "x_y.z", "9", strings.Repeat("n", names.MaxLen)} {
		if err := names.Validate("name", ok); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", ok, err)
		}
	}
	for _, c := range []struct{ name, want string }{
		{"", "name is empty: want " + names.Rule},
		{"-a", `name "-a": must match ` + names.Rule},
		{"a b", `name "a b": must match ` + names.Rule},
		{"a/b", `name "a/b": must match`},
		{"é", `name "é": must match`},
		{strings.Repeat("n", names.MaxLen+1), "64 characters, at most 63 allowed"},
	} {
		err := names.Validate("name", c.name)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%q) = %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if err := names.Validate("--net", "a b"); err == nil || !strings.HasPrefix(err.Error(), `--net "a b"`) {
		t.Errorf("field not named first: %v", err)
	}
}

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{"web": true, "a.b-c_d": true, "": false, "-a": false, "a b": false,
		strings.Repeat("n", names.MaxLen): true, strings.Repeat("n", names.MaxLen+1): false} {
		if got := names.Valid(name); got != want {
			t.Errorf("Valid(%q) = %v, want %v", name, got, want)
		}
		if got := names.Validate("name", name) == nil; got != want {
			t.Errorf("Validate(%q) == nil is %v, want %v", name, got, want)
		}
	}
}

func TestValidLabelKey(t *testing.T) {
	for k, want := range map[string]bool{"team": true, "app.io/tier": true, "a_b-c.d/e": true, "": false, "/a": false,
		"-a": false, "a b": false, "a=b": false, strings.Repeat("k", names.MaxLen): true, strings.Repeat("k", names.MaxLen+1): false} {
		if got := names.ValidLabelKey(k); got != want {
			t.Errorf("ValidLabelKey(%q) = %v, want %v", k, got, want)
		}
	}
}
