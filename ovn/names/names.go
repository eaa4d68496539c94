// Package names holds the rule every ovlmgr object name follows (networks,
// routers, policies): the CNI network-name rule [A-Za-z0-9][A-Za-z0-9_.-]*,
// at most MaxLen characters.
package names

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// MaxLen is the longest name allowed.
const MaxLen = 63

// Rule is the pattern a name must match, as shown in errors and help.
const Rule = "[A-Za-z0-9][A-Za-z0-9_.-]*"

// ruleRE, labelKeyRE and fieldRef are compiled on first use (package init runs on every
// CNI call of the plugin, most of which never check a name).
var ruleRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^" + Rule + "$") })

// Validate checks name against Rule and MaxLen. field names the input in
// the error in domain terms (e.g. "name", "network", "router name"); the
// error, a *FieldError, gives field, value and what is allowed.
func Validate(field, name string) error {
	if name == "" {
		return &FieldError{Field: field, Problem: fmt.Sprintf("is empty: want %s, at most %d characters", Rule, MaxLen)}
	}
	if len(name) > MaxLen {
		return Bad(field, name, "%d characters, at most %d allowed", len(name), MaxLen)
	}
	if !ruleRE().MatchString(name) {
		return Bad(field, name, "must match %s (letters, digits, then also _ . -)", Rule)
	}
	return nil
}

// Valid reports whether name follows the rule (Validate returns nil).
func Valid(name string) bool { return len(name) <= MaxLen && ruleRE().MatchString(name) }

// LabelKeyRule is the pattern a label key must match (a network's labels,
// a container's runtime labels): Rule with "/" allowed after the first
// character; at most MaxLen characters.
const LabelKeyRule = "[A-Za-z0-9][A-Za-z0-9_./-]*"

var labelKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^" + LabelKeyRule + "$") })

// ValidLabelKey reports whether k matches LabelKeyRule and has at most
// MaxLen characters.
func ValidLabelKey(k string) bool { return len(k) <= MaxLen && labelKeyRE().MatchString(k) }

// FieldError is bad input, in domain terms: Field names the input as the
// library knows it (a Spec field or a config key: "subnet", "network"),
// Value is what was given as printed ("" when it is missing), and Problem
// says what is wrong and what is allowed; another input it mentions is
// written {field} ("only with {proto} tcp or udp"); with Field "" the error
// is about several inputs, each named that way. A command line shows the
// same error with its own names for the inputs (Render).
type FieldError struct {
	Field   string
	Value   string
	Problem string
	// Err is the cause, if any (reachable with errors.Is/As).
	Err error
	// Sentence: Problem continues the value without a colon
	// (`subnet "x" overlaps network "y"`).
	Sentence bool
}

// Error renders the error with the domain names of the inputs.
func (e *FieldError) Error() string { return e.Render(func(f string) string { return f }) }

var fieldRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{([a-z][a-z0-9 ]*)\}`) })

// Render renders the error naming each input as name returns it:
// `NAME VALUE: PROBLEM`, or `NAME PROBLEM` when no value was given.
func (e *FieldError) Render(name func(field string) string) string {
	problem := fieldRef().ReplaceAllStringFunc(e.Problem, func(ref string) string { return name(ref[1 : len(ref)-1]) })
	if e.Field == "" {
		return problem // about several inputs, each named {field} in Problem
	}
	if e.Value == "" {
		if strings.HasPrefix(problem, ":") {
			return name(e.Field) + problem
		}
		return name(e.Field) + " " + problem
	}
	if e.Sentence {
		return name(e.Field) + " " + e.Value + " " + problem
	}
	return name(e.Field) + " " + e.Value + ": " + problem
}

// Says returns a FieldError that reads as one sentence about value (printed
// like Bad's) of field: `FIELD VALUE PROBLEM`.
func Says(field string, value any, format string, args ...any) *FieldError {
	e := Bad(field, value, format, args...)
	e.Sentence = true
	return e
}

func (e *FieldError) Unwrap() error { return e.Err }

// Bad returns a FieldError for value (printed with %q when it is a string,
// %v otherwise, e.g. a Shown) of field; format and args say what is wrong and what is
// allowed.
func Bad(field string, value any, format string, args ...any) *FieldError {
	v := fmt.Sprint(value)
	if s, ok := value.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	// format may wrap a cause with %w (e.g. a sentinel callers test).
	p := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Value: v, Problem: p.Error(), Err: errors.Unwrap(p)}
}

// Shown is a value Bad prints as it is, without quotes.
type Shown string

// About returns a FieldError about field as a whole (no value):
// `FIELD: PROBLEM`.
func About(field string, format string, args ...any) *FieldError {
	p := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Problem: ": " + p.Error(), Err: errors.Unwrap(p)}
}

// Wrap returns a FieldError for value (printed as is) of field whose
// problem is err (errors.Is/As reach it).
func Wrap(field, value string, err error) *FieldError {
	return &FieldError{Field: field, Value: value, Problem: err.Error(), Err: err}
}

// Missing returns a FieldError for a required field that was not given;
// format and args say what it wants.
func Missing(field string, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: "is required: " + fmt.Sprintf(format, args...)}
}
