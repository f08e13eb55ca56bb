package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Owner and file system settings of the generated files.
const (
	nonrootID   = 65532
	nonrootName = "nonroot"
	appDir      = "app"
)

// entry is one file or directory in a layer. Name is relative to the root, without a leading
// slash, and directories carry no trailing slash here.
type entry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// baseEntries returns the files shared by every service image: the CA bundle, the user and
// group databases with root and nonroot, and a world-writable /tmp with the sticky bit.
func baseEntries(caBundle []byte) []entry {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("%s:x:%d:%d:%s:/nonexistent:/sbin/nologin\n", nonrootName, nonrootID, nonrootID, nonrootName)
	group := "root:x:0:\n" +
		fmt.Sprintf("%s:x:%d:\n", nonrootName, nonrootID)

	return []entry{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl", mode: 0o755, dir: true},
		{name: "etc/ssl/certs", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		{name: "tmp", mode: 0o1777, dir: true},
	}
}

// appEntries returns the layer that holds the service binary. Root owns the binary, so the
// nonroot user can run it but not replace it.
func appEntries(service string, binary []byte) []entry {
	return []entry{
		{name: appDir, mode: 0o755, dir: true},
		{name: appDir + "/" + service, mode: 0o755, data: binary},
	}
}

// entrypoint returns the absolute path of the service binary inside the image.
func entrypoint(service string) string {
	return "/" + appDir + "/" + service
}

// writeTar returns an uncompressed tar of entries, sorted by name, where every header has the
// same mtime, uid 0, gid 0 and owner names "root". The result depends only on its arguments.
func writeTar(entries []entry, mtime time.Time) ([]byte, error) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range sorted {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: mtime,
			Uname:   "root",
			Gname:   "root",
			Format:  tar.FormatPAX,
		}
		if e.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write tar header %q: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("write tar entry %q: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// gzipBytes compresses data at the highest level with an empty gzip header, so the output
// depends only on data and the compress/flate version of the Go toolchain.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("create gzip writer: %w", err)
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	return buf.Bytes(), nil
}

// bytesOpener returns an opener over data for tarball.LayerFromOpener.
func bytesOpener(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}
