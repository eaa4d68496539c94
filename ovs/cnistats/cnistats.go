// Package cnistats records the outcome and latency of each CNI verb on a
// node in a small fixed-size file of counters, shared by every ovlmgr-cni
// process on the node and read by the node's exporter (ovs/nodemetrics).
//
// The file (File(): $OVLMGR_RUNDIR/cni-stats.v1, default /run/ovlmgr) is
// mapped into memory and updated with atomic additions: no lock, no
// network, no growth (its size never changes), about ten microseconds per
// call. It lives on tmpfs, so counters start at zero after a reboot, which
// Prometheus treats as a counter reset. This package imports only the
// standard library: it is linked into the plugin, whose start-up time counts.
package cnistats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/ovlmgr/ovlmgr/ovs/runfile"
)

// Verb is a CNI verb with counters of its own.
type Verb int

// The verbs, in file order.
const (
	Add Verb = iota
	Del
	Check
	GC
	Status
	numVerbs
)

// Verbs lists the verbs with their CNI names (CNI_COMMAND).
var Verbs = []struct {
	Verb Verb
	Name string
}{{Add, "ADD"}, {Del, "DEL"}, {Check, "CHECK"}, {GC, "GC"}, {Status, "STATUS"}}

// Bounds are the upper bounds (seconds) of the latency histogram's buckets;
// a last bucket holds what is slower than the last bound.
var Bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// OtherCode is the error slot of codes above 254 (counted together).
const OtherCode = 255

// Layout: a header of 8 words (magic, then reserved), then per verb:
// count, sum of nanoseconds, len(Bounds)+1 bucket counts, 256 error slots
// (index = CNI error code; 0 unused).
const (
	headerWords = 8
	bucketSlots = 12 // len(Bounds)+1
	codeSlots   = 256
	verbWords   = 2 + bucketSlots + codeSlots
	words       = headerWords + int(numVerbs)*verbWords
	// Size is the file's size in bytes.
	Size  = words * 8
	magic = 0x31_53_49_4e_43_4c_56_4f // "OVLCNIS1" little-endian
)

// EnvDir names the environment variable that overrides DefaultDir (the lab
// sets it to each node's directory, since its nodes share one filesystem).
const EnvDir = "OVLMGR_RUNDIR"

// DefaultDir holds the file on a real node.
const DefaultDir = "/run/ovlmgr"

// FileName is the file's name in its directory; the version in the name
// changes with the layout, so old and new binaries never mix layouts.
const FileName = "cni-stats.v1"

// File returns the counters file of this node: $OVLMGR_RUNDIR/cni-stats.v1,
// or /run/ovlmgr/cni-stats.v1.
func File() string {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, FileName)
}

// Record adds one call of verb that took d and ended with CNI error code
// code (0: success) to the node's counters file. It never fails the
// caller: a file it cannot open or map is skipped, and the error returned
// is only for tests and logs.
func Record(verb Verb, d time.Duration, code uint) error {
	return RecordAt(File(), verb, d, code)
}

// RecordAt is Record on the file at path (created with its directory if
// missing).
func RecordAt(path string, verb Verb, d time.Duration, code uint) error {
	if verb < 0 || verb >= numVerbs {
		return fmt.Errorf("cni stats: verb %d unknown", verb)
	}
	m, err := mapFile(path, true)
	if err != nil {
		return err
	}
	defer m.close()
	w := m.words()
	if atomic.LoadUint64(&w[0]) != magic {
		atomic.StoreUint64(&w[0], magic)
	}
	base := headerWords + int(verb)*verbWords
	atomic.AddUint64(&w[base], 1)
	if d < 0 {
		d = 0
	}
	atomic.AddUint64(&w[base+1], uint64(d))
	atomic.AddUint64(&w[base+2+bucketOf(d)], 1)
	if code != 0 {
		atomic.AddUint64(&w[base+2+bucketSlots+int(codeSlot(code))], 1)
	}
	return nil
}

func bucketOf(d time.Duration) int {
	s := d.Seconds()
	for i, b := range Bounds {
		if s <= b {
			return i
		}
	}
	return len(Bounds)
}

func codeSlot(code uint) uint {
	if code >= OtherCode {
		return OtherCode
	}
	return code
}

// VerbStats are one verb's counters.
type VerbStats struct {
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts calls at most Bounds[i] long (not cumulative); the
	// last one those slower than every bound.
	Buckets [bucketSlots]uint64
	// Errors maps a CNI error code (OtherCode for codes ≥ 255) to its calls.
	Errors map[uint]uint64
}

// Stats are the counters of every verb, indexed by Verb.
type Stats [numVerbs]VerbStats

// ErrNoFile means no CNI call was recorded on this node yet.
var ErrNoFile = errors.New("no CNI calls recorded yet")

// Read returns the counters in the file at path; ErrNoFile when it does not
// exist.
func Read(path string) (*Stats, error) {
	m, err := mapFile(path, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoFile)
	}
	if err != nil {
		return nil, err
	}
	defer m.close()
	w := m.words()
	if v := atomic.LoadUint64(&w[0]); v != magic && v != 0 {
		return nil, fmt.Errorf("cni stats %s: not a counters file (magic %#x)", path, v)
	}
	var s Stats
	for v := Verb(0); v < numVerbs; v++ {
		base := headerWords + int(v)*verbWords
		vs := &s[v]
		vs.Count = atomic.LoadUint64(&w[base])
		vs.Sum = time.Duration(atomic.LoadUint64(&w[base+1]))
		for i := range vs.Buckets {
			vs.Buckets[i] = atomic.LoadUint64(&w[base+2+i])
		}
		vs.Errors = map[uint]uint64{}
		for c := 1; c < codeSlots; c++ {
			if n := atomic.LoadUint64(&w[base+2+bucketSlots+c]); n > 0 {
				vs.Errors[uint(c)] = n
			}
		}
	}
	return &s, nil
}

type mapping struct{ b []byte }

func (m *mapping) words() []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&m.b[0])), words)
}

func (m *mapping) close() { _ = syscall.Munmap(m.b) }

// mapFile maps the file at path, shared; write creates it (and its
// directory) and sizes it first. Sizing to Size is idempotent, so
// concurrent first calls agree.
func mapFile(path string, write bool) (*mapping, error) {
	flag, prot := os.O_RDONLY, syscall.PROT_READ
	if write {
		flag, prot = os.O_RDWR|os.O_CREATE, syscall.PROT_READ|syscall.PROT_WRITE
	}
	// Never through a symlink, and only a regular file of this user: root
	// maps and grows this file.
	f, err := runfile.Open(path, flag, 0o644)
	if write && errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("cni stats: %w", err)
		}
		f, err = runfile.Open(path, flag, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("cni stats: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cni stats: %w", err)
	}
	if fi.Size() != int64(Size) {
		if !write || fi.Size() > int64(Size) {
			return nil, fmt.Errorf("cni stats %s: size %d, want %d", path, fi.Size(), Size)
		}
		if err := f.Truncate(int64(Size)); err != nil {
			return nil, fmt.Errorf("cni stats: %w", err)
		}
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, Size, prot, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cni stats: map %s: %w", path, err)
	}
	return &mapping{b: b}, nil
}
