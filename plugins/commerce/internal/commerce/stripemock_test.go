package commerce_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// stripe-mock (github.com/stripe/stripe-mock), Stripe's own mock of its
// API, answers the plugin's calls in these tests: installed once into the
// repository's bin/ at a pinned version (go install), started on a free
// loopback port for this test binary and stopped after it. STRIPE_MOCK_URL
// names one already running instead.

const stripeMockVersion = "v0.203.0"

type stripeMock struct {
	URL string
	cmd *exec.Cmd
}

func startStripeMock() (*stripeMock, error) {
	if u := os.Getenv("STRIPE_MOCK_URL"); u != "" {
		return &stripeMock{URL: u}, nil
	}
	bin, err := installStripeMock()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	setPdeathsig(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return &stripeMock{URL: "http://" + a, cmd: cmd}, nil
	case <-time.After(2 * time.Minute): // a bound on start-up, not a measurement
		_ = cmd.Process.Kill()
		return nil, errors.New("stripe-mock did not say where it listens")
	}
}

func (m *stripeMock) Stop() {
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
}

// installStripeMock is <repository>/bin/stripe-mock-<version>, installed
// with go install when missing.
func installStripeMock() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "stripe-mock-"+stripeMockVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Join(root, "bin"), ".stripe-mock-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", "github.com/stripe/stripe-mock@"+stripeMockVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install github.com/stripe/stripe-mock@%s: %w\n%s", stripeMockVersion, err, b)
	}
	if err := os.Rename(filepath.Join(tmp, "stripe-mock"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// repoRoot is the directory of the repository's go.mod
// (github.com/edulure/edulure) above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/edulure/edulure\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/edulure/edulure above the working directory")
		}
		dir = parent
	}
}
