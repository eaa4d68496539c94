package dbconn_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// The libovsdb copy parses a schema's column types by looking at whether
// each is a JSON object (ovn/ovsdb/libovsdb/OVLMGR.md) instead of decoding
// it as a string first: the NB schema's columns come out with the kinds,
// bounds, enums and references OVN gives them, and a type that is neither
// an atomic type name nor an object is still refused. A column without a
// type or key type is an error (upstream dereferenced it: a panic on a
// malformed schema).
func TestSchemaColumnTypes(t *testing.T) {
	raw, err := os.ReadFile(ovsdbtest.NBSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s ovsdb.DatabaseSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	lsp := s.Tables["Logical_Switch_Port"]
	acl := s.Tables["ACL"]
	ls := s.Tables["Logical_Switch"]
	for _, c := range []struct {
		name     string
		col      *ovsdb.ColumnSchema
		kind     ovsdb.ExtendedType
		min, max int
	}{
		{"Logical_Switch_Port.name", lsp.Column("name"), ovsdb.TypeString, 1, 1},
		{"Logical_Switch_Port.addresses", lsp.Column("addresses"), ovsdb.TypeSet, 0, ovsdb.Unlimited},
		{"Logical_Switch_Port.external_ids", lsp.Column("external_ids"), ovsdb.TypeMap, 0, ovsdb.Unlimited},
		{"Logical_Switch_Port.tag", lsp.Column("tag"), ovsdb.TypeSet, 0, 1},
		{"ACL.action", acl.Column("action"), ovsdb.TypeEnum, 1, 1},
		{"Logical_Switch.ports", ls.Column("ports"), ovsdb.TypeSet, 0, ovsdb.Unlimited},
	} {
		if c.col == nil {
			t.Fatalf("%s: not in the schema", c.name)
		}
		if c.col.Type != c.kind || c.col.TypeObj.Min() != c.min || c.col.TypeObj.Max() != c.max {
			t.Errorf("%s: %s min %d max %d; want %s min %d max %d", c.name, c.col.Type, c.col.TypeObj.Min(), c.col.TypeObj.Max(), c.kind, c.min, c.max)
		}
	}
	if e := acl.Column("action").TypeObj.Key.Enum; len(e) < 4 {
		t.Errorf("ACL.action enum %v; want OVN's actions", e)
	}
	if ref, err := ls.Column("ports").TypeObj.Key.RefTable(); err != nil || ref != "Logical_Switch_Port" {
		t.Errorf("Logical_Switch.ports refTable %q (%v); want Logical_Switch_Port", ref, err)
	}
	if max, _ := lsp.Column("tag").TypeObj.Key.MaxInteger(); max != 4095 {
		t.Errorf("Logical_Switch_Port.tag maxInteger %d; want 4095", max)
	}
	// minLength was set from maxLength (upstream), on parse and on print.
	var bt ovsdb.BaseType
	if err := json.Unmarshal([]byte(`{"type": "string", "minLength": 1, "maxLength": 8}`), &bt); err != nil {
		t.Fatal(err)
	}
	minLen, _ := bt.MinLength()
	maxLen, _ := bt.MaxLength()
	out, err := json.Marshal(bt)
	if minLen != 1 || maxLen != 8 || err != nil || !strings.Contains(string(out), `"minLength":1`) {
		t.Errorf("string of length 1 to 8: minLength %d maxLength %d, printed %s (%v)", minLen, maxLen, out, err)
	}
	for _, bad := range []string{`{"type": "text"}`, `{"type": null}`, `{"type": 7}`, `{"type": {"key": "text"}}`, `{"type": {"key": 7}}`, `{"type": {"value": "string"}}`, `{}`} {
		var c ovsdb.ColumnSchema
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("column %s parsed; want an error", bad)
		}
	}
}
