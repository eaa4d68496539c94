package plugin

import (
	"os"
	"runtime/debug"
)

// OneVerbHeapLimit is the heap size at which a plugin process that runs
// one verb collects garbage (SetOneVerbGC).
const OneVerbHeapLimit = 64 << 20

// SetOneVerbGC turns the garbage collector off for a process that runs
// one CNI verb and exits, up to OneVerbHeapLimit, where it collects
// again. Such a process allocates a few MB (the databases' schemas, the
// rows it reads) and frees nothing it still needs before it exits, so
// each collection only costs the ADD time: two cycles of about 10 ms each
// on a busy 2-core node. GOGC or GOMEMLIMIT in the environment win. The
// node's CNI server (serve) and the pool refill keep Go's defaults.
func SetOneVerbGC() {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(OneVerbHeapLimit)
	debug.SetGCPercent(-1)
}
