package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tarHeader is the part of a tar header the layer format fixes.
type tarHeader struct {
	Name     string
	Typeflag byte
	Mode     int64
	Size     int64
	UID, GID int
	Uname    string
	Gname    string
	ModTime  int64
}

func readTarHeaders(t *testing.T, data []byte) []tarHeader {
	t.Helper()
	var headers []tarHeader
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		headers = append(headers, tarHeader{
			Name: hdr.Name, Typeflag: hdr.Typeflag, Mode: hdr.Mode, Size: hdr.Size,
			UID: hdr.Uid, GID: hdr.Gid, Uname: hdr.Uname, Gname: hdr.Gname, ModTime: hdr.ModTime.Unix(),
		})
	}
}

func TestWriteTarHeaders(t *testing.T) {
	t.Parallel()
	mtime := time.Unix(1700000000, 0)
	tests := []struct {
		name    string
		entries []entry
		want    []tarHeader
	}{
		{
			name: "unsorted input is sorted",
			entries: []entry{
				{name: "b", mode: 0o644, data: []byte("bb")},
				{name: "a", mode: 0o755, dir: true},
				{name: "a/file", mode: 0o600, data: []byte("x")},
			},
			want: []tarHeader{
				{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755, Uname: "root", Gname: "root", ModTime: 1700000000},
				{Name: "a/file", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1, Uname: "root", Gname: "root", ModTime: 1700000000},
				{Name: "b", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2, Uname: "root", Gname: "root", ModTime: 1700000000},
			},
		},
		{
			name:    "sticky directory",
			entries: []entry{{name: "tmp", mode: 0o1777, dir: true}},
			want: []tarHeader{
				{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, Uname: "root", Gname: "root", ModTime: 1700000000},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := writeTar(tt.entries, mtime)
			if err != nil {
				t.Fatalf("writeTar: %v", err)
			}
			if diff := cmp.Diff(tt.want, readTarHeaders(t, data)); diff != "" {
				t.Errorf("tar headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteTarOrderIndependent(t *testing.T) {
	t.Parallel()
	entries := baseEntries([]byte("certificates"))
	reversed := make([]entry, len(entries))
	for i, e := range entries {
		reversed[len(entries)-1-i] = e
	}

	first, err := writeTar(entries, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("writeTar: %v", err)
	}
	second, err := writeTar(reversed, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("writeTar reversed: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Error("tar bytes depend on the entry order")
	}
}

func TestGzipBytesDeterministic(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("layer content "), 10000)
	first, err := gzipBytes(data)
	if err != nil {
		t.Fatalf("gzipBytes: %v", err)
	}
	second, err := gzipBytes(data)
	if err != nil {
		t.Fatalf("gzipBytes again: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Error("gzip output differs between two runs")
	}
	// Bytes 4 to 7 of a gzip member hold its modification time.
	if diff := cmp.Diff([]byte{0, 0, 0, 0}, first[4:8]); diff != "" {
		t.Errorf("gzip mtime (-want +got):\n%s", diff)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		want    time.Time
		wantErr bool
	}{
		{name: "empty", value: "", want: time.Unix(0, 0).UTC()},
		{name: "seconds", value: "1700000000", want: time.Unix(1700000000, 0).UTC()},
		{name: "negative", value: "-1", wantErr: true},
		{name: "not a number", value: "2024-01-01", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SourceDateEpoch(tt.value)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SourceDateEpoch(%q) = %s, want an error", tt.value, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("SourceDateEpoch(%q): %v", tt.value, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("SourceDateEpoch(%q) = %s, want %s", tt.value, got, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		registry string
		want     bool
	}{
		{registry: "localhost:5001", want: true},
		{registry: "localhost", want: true},
		{registry: "127.0.0.1:5000", want: true},
		{registry: "127.5.0.1", want: true},
		{registry: "[::1]:5000", want: true},
		{registry: "kind-registry:5000", want: false},
		{registry: "ghcr.io", want: false},
		{registry: "10.0.0.5:5000", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.registry, func(t *testing.T) {
			t.Parallel()
			if got := isLoopback(tt.registry); got != tt.want {
				t.Errorf("isLoopback(%q) = %t, want %t", tt.registry, got, tt.want)
			}
		})
	}
}
