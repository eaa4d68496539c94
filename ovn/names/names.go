// Package names holds the rule every ovlmgr object name follows (networks,
// routers, policies): the CNI network-name rule [A-Za-z0-9][A-Za-z0-9_.-]*,
// at most MaxLen characters.
package names

import (
	"fmt"
	"regexp"
)

// MaxLen is the longest name allowed.
const MaxLen = 63

// Rule is the pattern a name must match, as shown in errors and help.
const Rule = "[A-Za-z0-9][A-Za-z0-9_.-]*"

var ruleRE = regexp.MustCompile("^" + Rule + "$")

// Validate checks name against Rule and MaxLen. field names the input in
// the error (e.g. "name", "--net", "router name"); the error gives field,
// value and what is allowed.
func Validate(field, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty: want %s, at most %d characters", field, Rule, MaxLen)
	}
	if len(name) > MaxLen {
		return fmt.Errorf("%s %q: %d characters, at most %d allowed", field, name, len(name), MaxLen)
	}
	if !ruleRE.MatchString(name) {
		return fmt.Errorf("%s %q: must match %s (letters, digits, then also _ . -)", field, name, Rule)
	}
	return nil
}

// Valid reports whether name follows the rule (Validate returns nil).
func Valid(name string) bool { return len(name) <= MaxLen && ruleRE.MatchString(name) }
