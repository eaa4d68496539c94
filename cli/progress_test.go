package main

import (
	"bytes"
	"fmt"
	"testing"
)

// TestProgressLog: step lines are rewritten in place on a terminal; a
// pipe (not a terminal) gets no progress at all.
func TestProgressLog(t *testing.T) {
	if progressLog(&bytes.Buffer{}) != nil {
		t.Error("progress to a non-terminal writer; want quiet (nil)")
	}
	var b bytes.Buffer
	w := &statusWriter{w: &b}
	fmt.Fprintf(w, "lab x: central up\n")
	fmt.Fprintf(w, "lab x: node n1 joined [1/2]\n")
	fmt.Fprintf(w, "lab x: node n2 joined [2/2]\n")
	fmt.Fprintf(w, "lab x: ready\n")
	want := "\r\033[Klab x: central up\n\r\033[Klab x: node n1 joined [1/2]\r\033[Klab x: node n2 joined [2/2]\r\033[Klab x: ready\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}
