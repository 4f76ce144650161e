package pgcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options tune a cluster. The zero value is a durable cluster for development.
type Options struct {
	// Throwaway turns off fsync and full-page writes: fast, but a crash may
	// lose data. Right for test clusters only.
	Throwaway bool
	// Port to listen on (127.0.0.1 only). Zero picks a free one.
	Port int
}

// Cluster is one PostgreSQL data directory and the server running on it.
type Cluster struct {
	Dir      string // data directory (where a relocated cluster really is: see Open)
	Port     int
	link     string // the directory asked for, a symlink to Dir, when relocated
	password string
	binDir   string
	runAs    *user.User // nil: run as the current user
	opts     Options
}

// BinDir finds the PostgreSQL server binaries: $PG_BIN, then initdb on PATH,
// then the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("postgres server binaries not found: install postgresql (initdb, pg_ctl) or set PG_BIN")
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Open prepares a cluster in dir, running initdb if dir holds none yet.
// The password of the "postgres" superuser is kept in dir/../<base>.password
// so that a later Open of the same dir can connect.
//
// When the server runs as the postgres user (the caller is root) and that
// user cannot reach dir — a checkout in root's home, mode 0700 — the cluster
// is made in a directory it can reach (under the postgres user's home, else
// the temporary directory) and dir becomes a symlink to it, so a later Open
// of dir finds it again. The password file stays beside dir, readable by
// the caller only.
func Open(ctx context.Context, dir string, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, binDir: bin, opts: opts}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: need a \"postgres\" user: %w", err)
		}
		c.runAs = u
	}
	pwFile := dir + ".password"
	if c.runAs != nil {
		if err := c.relocate(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); err == nil {
		pw, err := os.ReadFile(pwFile)
		if err != nil {
			return nil, fmt.Errorf("cluster %s exists but its password file is missing: %w", dir, err)
		}
		c.password = strings.TrimSpace(string(pw))
		return c, nil
	}
	if err := c.initdb(ctx, pwFile); err != nil {
		return nil, err
	}
	return c, nil
}

// relocate points c.Dir at a directory the server user can reach: dir's
// target when dir is a symlink (an earlier relocation), dir itself when the
// server user can reach it, else a new directory it can reach, with dir a
// symlink to it.
func (c *Cluster) relocate(ctx context.Context) error {
	if fi, err := os.Lstat(c.Dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(c.Dir)
		if err != nil {
			return fmt.Errorf("cluster %s is a symlink to a directory that is gone: %w (make db/reset removes it)", c.Dir, err)
		}
		c.link, c.Dir = c.Dir, real
		return nil
	}
	if c.reachable(ctx, c.Dir) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "data", "PG_VERSION")); err == nil {
		return fmt.Errorf("cluster %s exists but the %s user cannot reach it: give it search permission on every parent directory", c.Dir, c.runAs.Username)
	}
	base := ""
	for _, b := range []string{c.runAs.HomeDir, os.TempDir()} {
		if b != "" && c.reachable(ctx, b) {
			base = filepath.Join(b, "edulure-clusters")
			break
		}
	}
	if base == "" {
		return fmt.Errorf("the %s user can reach neither %s nor a place to keep the cluster instead", c.runAs.Username, c.Dir)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	real, err := os.MkdirTemp(base, filepath.Base(c.Dir)+"-")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o755); err != nil {
		return err
	}
	os.Remove(c.Dir) // an empty directory left by a failed attempt
	if err := os.Symlink(real, c.Dir); err != nil {
		os.Remove(real)
		return fmt.Errorf("the %s user cannot reach %s, so the cluster lives in %s: linking it: %w", c.runAs.Username, c.Dir, real, err)
	}
	c.link, c.Dir = c.Dir, real
	return nil
}

// reachable reports whether the server user can reach path: search
// permission on it (when it exists) and every parent, which it needs to
// open its data directory and socket. It asks the system rather than
// reading mode bits, so groups and ACLs count.
func (c *Cluster) reachable(ctx context.Context, path string) bool {
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		parent := filepath.Dir(path)
		if parent == path {
			return false
		}
		path = parent
	}
	cmd := exec.CommandContext(ctx, "runuser", "-u", c.runAs.Username, "--", "test", "-x", path)
	cmd.Dir = "/"
	return cmd.Run() == nil
}

func (c *Cluster) initdb(ctx context.Context, pwFile string) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	c.password = randomHex(16)
	// initdb reads the password from a file the server user can read.
	tmpPw := filepath.Join(c.Dir, ".initpw")
	if err := os.WriteFile(tmpPw, []byte(c.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(tmpPw)
	if err := c.chown(c.Dir); err != nil {
		return err
	}
	if err := c.chown(tmpPw); err != nil {
		return err
	}
	// initdb wants an empty directory, so it initialises a subdirectory
	// rename would need privileges; instead it is pointed at c.Dir/data.
	out, err := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+tmpPw).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	// Only a cluster that exists gets a password file, so a failed initdb
	// never leaves a password that matches nothing.
	return os.WriteFile(pwFile, []byte(c.password+"\n"), 0o600)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := c.opts.Port
		if port == 0 {
			p, err := FreePort()
			if err != nil {
				return err
			}
			port = p
		}
		c.Port = port
		settings := []string{
			"-c", "listen_addresses=127.0.0.1",
			"-c", "port=" + strconv.Itoa(port),
			"-c", "unix_socket_directories=" + c.Dir,
			"-c", "max_connections=300",
		}
		if c.opts.Throwaway {
			settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		}
		out, err := c.command(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.dataDir(),
			"-l", filepath.Join(c.Dir, "server.log"), "-o", strings.Join(quoteAll(settings), " ")).CombinedOutput()
		if err == nil {
			return nil
		}
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, tail(string(log), 2000))
		if c.opts.Port != 0 || !strings.Contains(string(log), "could not bind") {
			break
		}
	}
	return lastErr
}

// Stop stops the server (fast shutdown). It is safe to call on a stopped cluster.
func (c *Cluster) Stop() error {
	if _, err := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid")); err != nil {
		return nil
	}
	out, err := c.command(context.Background(), "pg_ctl", "stop", "-m", "fast", "-w", "-D", c.dataDir()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Remove deletes the data directory and the password file (and the symlink
// of a relocated cluster). Stop first.
func (c *Cluster) Remove() error {
	pwDir := c.Dir
	if c.link != "" {
		pwDir = c.link
		os.Remove(c.link)
	}
	os.Remove(pwDir + ".password")
	return os.RemoveAll(c.Dir)
}

// URL is a connection string for database db as the superuser.
func (c *Cluster) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(c.binDir, name)
	var cmd *exec.Cmd
	if c.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs.Username, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = os.TempDir()
	// Keep the server out of our process group so that Ctrl-C reaches us
	// first and we stop it in order.
	cmd.SysProcAttr = detached()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (c *Cluster) chown(path string) error {
	if c.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.runAs.Uid)
	gid, _ := strconv.Atoi(c.runAs.Gid)
	return os.Chown(path, uid, gid)
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
