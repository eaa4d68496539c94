package cnistats

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestRecordRead: calls recorded from many goroutines at once (as from many
// plugin processes: each call maps the file anew) all count, in the right
// buckets and error slots.
func TestRecordRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code := uint(0)
			if i%10 == 0 {
				code = 11
			}
			if err := RecordAt(path, Add, 30*time.Millisecond, code); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	for _, c := range []uint{7, 103, 999} {
		if err := RecordAt(path, Del, 20*time.Second, c); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	add := s[Add]
	if add.Count != 50 || add.Sum != 50*30*time.Millisecond || add.Buckets[3] != 50 || add.Errors[11] != 5 || len(add.Errors) != 1 {
		t.Errorf("ADD stats = %+v; want 50 calls of 30ms in bucket 3 (<=50ms), 5 errors with code 11", add)
	}
	del := s[Del]
	if del.Count != 3 || del.Buckets[len(Bounds)] != 3 || del.Errors[7] != 1 || del.Errors[103] != 1 || del.Errors[OtherCode] != 1 {
		t.Errorf("DEL stats = %+v; want 3 calls over 10s, codes 7, 103 and other", del)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(Size) {
		t.Errorf("file size = %v, %v; want %d", fi, err, Size)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Read of a missing file: no error")
	}
}

// BenchmarkRecord is the cost a plugin call pays.
func BenchmarkRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), FileName)
	for i := 0; i < b.N; i++ {
		if err := RecordAt(path, Add, time.Duration(i)*time.Microsecond, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecordNotThroughSymlink: a counters file that is a symlink (put
// there by whoever can write the run directory) is refused: root never
// grows, stamps and writes counters into the file it points to.
func TestRecordNotThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	orig := []byte("root:$y$j9T$secret:20000:0:99999:7:::\nnobody:*:20000:0:99999:7:::\n")
	if err := os.WriteFile(victim, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cni-stats.v1")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := RecordAt(path, Add, time.Millisecond, 0); err == nil {
		t.Error("RecordAt through a symlink: no error")
	}
	if b, _ := os.ReadFile(victim); string(b) != string(orig) {
		t.Errorf("the symlink's target changed: %q", b)
	}
}
