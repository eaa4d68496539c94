package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/lab/sysbin"
)

// rtTool returns the path of a runtime program (lab/sysbin: PATH, then
// the system directories), else the repository's bin/, where `make deps`
// builds crictl and cnitool. A missing one stops the test through
// prereq.Need.
func rtTool(t testing.TB, name string) string {
	t.Helper()
	p, err := sysbin.Find(name)
	if err == nil {
		return p
	}
	if b, _ := filepath.Abs(filepath.Join("..", "bin", name)); b != "" {
		if st, serr := os.Stat(b); serr == nil && st.Mode()&0o111 != 0 {
			return b
		}
	}
	prereq.Need(t, fmt.Errorf("%w (nor in the repository's bin/)", err))
	return ""
}

// rtRun runs name with args on node (its network namespace and private
// directories, see lab.Node.Command) with env added, and returns stdout;
// a failure fails the test with stdout and stderr.
func rtRun(t testing.TB, ctx context.Context, node *lab.Node, env []string, name string, args ...string) string {
	t.Helper()
	out, err := rtTryRun(ctx, node, env, name, args...)
	if err != nil {
		t.Fatalf("%s: %v", node.Name, err)
	}
	return out
}

// rtTryRun is rtRun returning the error (with stderr) instead.
func rtTryRun(ctx context.Context, node *lab.Node, env []string, name string, args ...string) (string, error) {
	cmd := node.Command(ctx, name, args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// writeConfList runs the real `ovlmgr cni config NET --out /etc/cni/net.d`
// on node (the node's own /etc/cni/net.d) and removes the file at test end.
// extra are more flags (e.g. --cni-version). The runtimes use it unedited.
func writeConfList(t testing.TB, ctx context.Context, node *lab.Node, net string, extra ...string) string {
	t.Helper()
	ovlmgr := filepath.Join(cniPluginDir(t), "ovlmgr")
	path := strings.TrimSpace(rtRun(t, ctx, node, nil, ovlmgr, append([]string{"cni", "config", net, "--out", "/etc/cni/net.d"}, extra...)...))
	t.Cleanup(func() {
		_, _ = rtTryRun(context.Background(), node, nil, "rm", "-f", path)
	})
	return path
}

// busyboxRootfs writes a tar of a root filesystem holding the static
// busybox (sh, ping, nc, nslookup, ip, sleep, ...) and returns its bytes.
func busyboxRootfs(t testing.TB) []byte {
	t.Helper()
	bb := rtTool(t, "busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if !isStatic(bb) {
		prereq.Need(t, fmt.Errorf("%s is not statically linked: run `make deps` (busybox-static)", bb))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "run", "var"} {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data)), ModTime: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "ping", "nc", "nslookup", "ip", "sleep", "cat", "echo", "hostname", "ls"} {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// isStatic reports whether the ELF file at path has no program interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// ociArchive returns an OCI image layout tar (what `ctr images import`
// reads) named ref whose one layer is layer and whose entrypoint is entry.
func ociArchive(t testing.TB, ref string, layer []byte, entry []string) []byte {
	t.Helper()
	digest := func(b []byte) string { h := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(h[:]) }
	mustJSON := func(v interface{}) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	config := mustJSON(map[string]interface{}{
		"architecture": "amd64", "os": "linux",
		"config": map[string]interface{}{"Entrypoint": entry},
		"rootfs": map[string]interface{}{"type": "layers", "diff_ids": []string{digest(layer)}},
	})
	manifest := mustJSON(map[string]interface{}{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]interface{}{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []interface{}{map[string]interface{}{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}},
	})
	index := mustJSON(map[string]interface{}{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []interface{}{map[string]interface{}{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref[strings.LastIndex(ref, ":")+1:]},
		}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for _, b := range [][]byte{config, manifest, layer} {
		add("blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostLinks returns the names of the links in node's network namespace.
func hostLinks(t testing.TB, node *lab.Node) []string {
	t.Helper()
	var names []string
	if err := node.Do(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// assertLinksBack checks node has exactly the links of before again.
func assertLinksBack(t testing.TB, node *lab.Node, before []string) {
	t.Helper()
	if now := hostLinks(t, node); strings.Join(now, ",") != strings.Join(before, ",") {
		t.Errorf("links on %s: %v; before: %v", node.Name, now, before)
	}
}
