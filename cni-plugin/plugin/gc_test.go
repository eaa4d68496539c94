package plugin

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// unsetenv removes key for the test and restores it afterwards.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	if v, ok := os.LookupEnv(key); ok {
		t.Cleanup(func() { os.Setenv(key, v) })
		os.Unsetenv(key)
	}
}

// gcSettings returns the GC percent and memory limit in force, leaving
// them as they were.
func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

func TestSetOneVerbGC(t *testing.T) {
	p0, l0 := gcSettings()
	t.Cleanup(func() { debug.SetGCPercent(p0); debug.SetMemoryLimit(l0) })

	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	SetOneVerbGC()
	if p, l := gcSettings(); p != -1 || l != OneVerbHeapLimit {
		t.Errorf("GC percent %d, memory limit %d; want -1 (off) and %d", p, l, OneVerbHeapLimit)
	}

	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		t.Setenv(env, "200")
		SetOneVerbGC()
		if p, l := gcSettings(); p != 100 || l != math.MaxInt64 {
			t.Errorf("with %s set: GC percent %d, memory limit %d; want Go's settings kept", env, p, l)
		}
		os.Unsetenv(env)
	}
}
