package runfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
)

// TestOpenRefuses: Open never writes through a symlink (existing or
// dangling target), opens no FIFO (and does not hang on one), and writes
// no file with another link; a plain file of this user opens.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(victim, old, old); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "created"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard")
	if err := os.Link(victim, hard); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		flag int
	}{
		{link, os.O_RDWR | os.O_CREATE}, {link, os.O_RDONLY}, {dangling, os.O_WRONLY | os.O_CREATE},
		{fifo, os.O_RDONLY}, {fifo, os.O_WRONLY}, {hard, os.O_RDWR},
	} {
		done := make(chan error, 1)
		go func() {
			f, err := Open(c.path, c.flag, 0o600)
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Open(%s, %#o): opened; want refused", filepath.Base(c.path), c.flag)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s, %#o) hangs", filepath.Base(c.path), c.flag)
		}
	}
	if err := Touch(link, time.Now()); !errors.Is(err, ErrNotOwn) {
		t.Errorf("Touch through a symlink: %v; want %v", err, ErrNotOwn)
	}
	if err := Touch(dangling, time.Now()); err == nil {
		t.Error("Touch of a dangling symlink: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "created")); !os.IsNotExist(err) {
		t.Errorf("a dangling symlink's target was created: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret" {
		t.Errorf("victim now %q", b)
	}
	if fi, _ := os.Stat(victim); !fi.ModTime().Equal(old) {
		t.Errorf("victim's time changed: %v; want %v", fi.ModTime(), old)
	}
	// A plain file: created 0600, its time set to the nanosecond.
	stamp := filepath.Join(dir, "stamp")
	now := time.Now()
	if err := Touch(stamp, now); err != nil {
		t.Fatal(err)
	}
	if mt, err := ModTime(stamp); err != nil || !mt.Equal(now) {
		t.Errorf("ModTime after Touch: %v, %v; want %v", mt, err, now)
	}
	if fi, _ := os.Stat(stamp); fi.Mode().Perm() != 0o600 {
		t.Errorf("stamp mode %v; want 0600", fi.Mode().Perm())
	}
}

// TestOpenOtherUsersFile: another user's file is not opened to write (root
// would write where that user points it), and is opened to read.
func TestOpenOtherUsersFile(t *testing.T) {
	prereq.Root(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "theirs")
	if err := os.WriteFile(p, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(p, os.O_RDWR, 0); !errors.Is(err, ErrNotOwn) {
		if f != nil {
			f.Close()
		}
		t.Errorf("open another user's file to write: %v; want %v", err, ErrNotOwn)
	}
	f, err := Open(p, os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open another user's file to read: %v", err)
	}
	f.Close()
}
