package stripemock

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestInstallTakesARelativeDirectory: callers name the repository's bin/
// relative to their package; go install refuses a relative GOBIN, so
// Install works with the directory made absolute (and returns the
// binary's absolute path).
func TestInstallTakesARelativeDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stripe-mock-"+Version), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Install(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(bin) || bin != filepath.Join(dir, "stripe-mock-"+Version) {
		t.Fatalf("Install(%q) = %q, want the absolute path in %s", rel, bin, dir)
	}
}
