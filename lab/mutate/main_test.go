package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every break of the mutations file still applies to today's code: its
// original text occurs exactly once in its file. A refactor that changes
// the text fails here (make unit, make test) instead of leaving `make
// mutation` to find out.
func TestMutationsApply(t *testing.T) {
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join(root, "integration", "testdata", "mutations.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("mutations file holds no breaks")
	}
	for _, m := range ms {
		src, err := os.ReadFile(filepath.Join(root, m.File))
		if err != nil {
			t.Errorf("mutation at line %d: %v", m.line, err)
			continue
		}
		if n := strings.Count(string(src), m.Original); n != 1 {
			t.Errorf("mutation at line %d (%s): %s holds the original text %d times, want once: %q", m.line, m.Run, m.File, n, m.Original)
		}
	}
}
