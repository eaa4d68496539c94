package sysbin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFindOutsidePath finds a program in Dirs when PATH lacks its directory,
// and reports a missing one with ErrNotFound and its name.
func TestFindOutsidePath(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "ovlmgr-fake-daemon")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := Dirs
	Dirs = []string{dir}
	t.Cleanup(func() { Dirs = old })
	t.Setenv("PATH", t.TempDir())

	got, err := Find("ovlmgr-fake-daemon")
	if err != nil || got != prog {
		t.Fatalf("Find = %q, %v; want %q", got, err, prog)
	}
	_, err = Find("ovlmgr-no-such-daemon")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(missing) error %v does not wrap ErrNotFound", err)
	}
	if m := Missing("ovlmgr-fake-daemon", "ovlmgr-no-such-daemon"); len(m) != 1 || m[0] != "ovlmgr-no-such-daemon" {
		t.Fatalf("Missing = %v", m)
	}
}
