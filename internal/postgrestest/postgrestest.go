// Package postgrestest starts a real, throwaway PostgreSQL server (the
// Debian package; scripts/test.sh installs it) for tests: a new cluster
// made by initdb on a free 127.0.0.1 port, password authentication over
// TCP, stopped and deleted when the test (or TestMain) ends. It is
// imported by tests only.
package postgrestest

import (
	"context"
	"database/sql"
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
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Role and Password are the login every database made by CreateDatabase
// belongs to; the role may create databases (lint's scratch copies).
const (
	Role     = "app"
	Password = "s3cret-app-pw"
)

// Server is one running cluster.
type Server struct {
	Host string
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	// admin is the superuser's connection.
	admin *sql.DB
}

// Start runs a new cluster for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// binDir finds PostgreSQL's programs: in PATH, or Debian's
// /usr/lib/postgresql/N/bin (the newest).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (no initdb in PATH or /usr/lib/postgresql/*/bin): run scripts/test.sh, which installs it")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// StartServer runs a new cluster; Stop ends it. For TestMain.
func StartServer() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lastgood-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	const superPassword = "super-pw"
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(superPassword+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s, err := start(bin, dir, cred)
		if err == nil {
			admin, err := sql.Open("pgx", s.url("postgres", superPassword, "postgres"))
			if err == nil {
				s.admin = admin
				_, err = admin.Exec(fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'`, Role, Password))
			}
			if err != nil {
				s.Stop()
				return nil, fmt.Errorf("create role %s: %w", Role, err)
			}
			return s, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// credential makes dir usable by the postgres user when the tests run as
// root, whom PostgreSQL refuses to run as.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func start(bin, dir string, cred *syscall.Credential) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "max_connections=50", "-c", "shared_buffers=16MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Port: port, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited at start:\n%s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(port)), time.Second); err == nil {
			c.Close()
			// accepting connections does not mean ready: ask
			db, _ := sql.Open("pgx", s.url("postgres", "super-pw", "postgres"))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := db.PingContext(ctx)
			cancel()
			db.Close()
			if err == nil {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, errors.New("postgres was not ready within 60s")
}

func (s *Server) url(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase makes a new database owned by Role and returns its URL
// (with Role's password).
func (s *Server) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	u, err := s.NewDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// NewDatabase is CreateDatabase for callers that are not tests (the CLI's
// scripts).
func (s *Server) NewDatabase(name string) (string, error) {
	if _, err := s.admin.Exec(fmt.Sprintf(`CREATE DATABASE %q OWNER %s`, name, Role)); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.url(Role, Password, name), nil
}

// Admin is the superuser's connection to the server's postgres database.
func (s *Server) Admin() *sql.DB { return s.admin }

// Log is the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(b)
}

// Stop ends the server (a fast shutdown, then SIGKILL) and deletes its
// cluster.
func (s *Server) Stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	if !strings.HasPrefix(filepath.Base(s.dir), "lastgood-pg-") {
		return
	}
	os.RemoveAll(s.dir)
}
