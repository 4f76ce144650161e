// Package stripemock installs and starts stripe-mock
// (github.com/stripe/stripe-mock), Stripe's own mock of its API, for the
// commerce plugin in development (edulure dev, make run) and in the
// kernel's end-to-end tests: no Stripe account and no network are needed.
//
// stripe-mock is installed once into the repository's bin/ at a pinned
// version with go install (through the module proxy, as every other
// dependency), and started on a free loopback port. It answers the API's
// requests with fixtures; it sends no webhooks.
package stripemock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// Version is the stripe-mock the project pins.
const Version = "v0.203.0"

// Server is a running stripe-mock.
type Server struct {
	// URL is its HTTP base URL, http://127.0.0.1:<port>.
	URL string
	cmd *exec.Cmd
}

// Install returns the path of binDir/stripe-mock-<Version>, installing it
// with go install when it is missing. The go command is the one on PATH.
func Install(ctx context.Context, binDir string) (string, error) {
	// go install takes only an absolute GOBIN; callers pass paths relative
	// to their package ("../../../bin").
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "stripe-mock-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	// Into a directory of its own, then renamed: two processes installing
	// at once never run a half-written binary.
	tmp, err := os.MkdirTemp(binDir, ".stripe-mock-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/stripe/stripe-mock@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install github.com/stripe/stripe-mock@%s: %w\n%s", Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "stripe-mock"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

var listening = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

// Start runs the stripe-mock binary bin on free loopback ports and returns
// once it says where it listens. The process dies with this one on Linux
// (parent-death signal); Stop ends it. Its output goes to log (nil:
// discarded) once it has started.
func Start(ctx context.Context, bin string, log io.Writer) (*Server, error) {
	if log == nil {
		log = io.Discard
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
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if !sent {
				if m := listening.FindStringSubmatch(sc.Text()); m != nil {
					addr <- m[1]
					sent = true
				}
				continue
			}
			fmt.Fprintln(log, sc.Text())
		}
		if !sent {
			close(addr)
		}
	}()
	// A bound on start-up against a wedged process, not a measurement.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	select {
	case a, ok := <-addr:
		if !ok {
			_ = cmd.Wait()
			return nil, errors.New("stripe-mock exited before it listened")
		}
		return &Server{URL: "http://" + a, cmd: cmd}, nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("stripe-mock did not say where it listens: %w", ctx.Err())
	}
}

// Stop ends the process.
func (s *Server) Stop() {
	if s != nil && s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}
