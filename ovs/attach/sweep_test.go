package attach

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepDue: a call without a session sweeps when no call stamped a
// sweep of the node within sweepEvery, and stamps it; one within that
// time skips; a stamp from the future (a clock set back) does not stop
// sweeps; without a place for the stamp every call sweeps.
func TestSweepDue(t *testing.T) {
	dir := t.TempDir()
	ep := "unix:" + filepath.Join(dir, "db.sock")
	stamp := filepath.Join(dir, SweepStampFile)
	now := time.Now()
	if !sweepDue(ep, now) {
		t.Fatal("first call: not due; want due (no stamp yet)")
	}
	st, err := os.Stat(stamp)
	if err != nil {
		t.Fatalf("first call left no stamp: %v", err)
	}
	if !st.ModTime().Equal(now) {
		t.Errorf("stamp time %v; want %v", st.ModTime(), now)
	}
	if sweepDue(ep, now.Add(sweepEvery-time.Second)) {
		t.Errorf("call %s after the stamp: due; want skipped", sweepEvery-time.Second)
	}
	later := now.Add(sweepEvery)
	if !sweepDue(ep, later) {
		t.Errorf("call %s after the stamp: not due; want due", sweepEvery)
	}
	if st, err := os.Stat(stamp); err != nil || !st.ModTime().Equal(later) {
		t.Errorf("stamp after the second sweep: %v, %v; want %v", st.ModTime(), err, later)
	}
	if !sweepDue(ep, later.Add(-time.Minute)) {
		t.Error("stamp in the future: not due; want due")
	}
	// A stamp that is a symlink: every call sweeps, and the file it points
	// to keeps its time (root never sets times through it).
	dir2 := t.TempDir()
	victim := filepath.Join(dir2, "victim")
	if err := os.WriteFile(victim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-time.Hour)
	if err := os.Chtimes(victim, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir2, SweepStampFile)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if !sweepDue("unix:"+filepath.Join(dir2, "db.sock"), now) {
			t.Errorf("symlinked stamp, call %d: not due; want due", i+1)
		}
	}
	if st, err := os.Stat(victim); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("the stamp symlink's target: time %v (%v); want %v, untouched", st.ModTime(), err, old)
	}
	// Without a place for the stamp every call sweeps, twice in a row too.
	for _, ep := range []string{"tcp:127.0.0.1:6640", "unix:" + filepath.Join(dir, "gone", "db.sock")} {
		for i := 0; i < 2; i++ {
			if !sweepDue(ep, now) {
				t.Errorf("%s, call %d: not due; want due", ep, i+1)
			}
		}
	}
}
