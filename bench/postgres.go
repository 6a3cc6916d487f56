package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/boohpay/boohpay/db"
)

// cluster is the Postgres the bench runs on: scripts/pg.sh's "bench"
// instance, with fsync and synchronous_commit on (not `fast`), as in
// production. Each phase gets a fresh database cloned from a migrated
// template, so no phase inherits another's tables or dead rows.
type cluster struct {
	repo         string
	adminURL     string
	poolMaxConns int // added to every phase's URL when > 0
}

const templateDB = "bench_template"

// startCluster starts (or reuses) the bench instance on port.
func startCluster(ctx context.Context, repo string, port, poolMaxConns int) (*cluster, error) {
	cmd := exec.CommandContext(ctx, "bash", "scripts/pg.sh", "start", "bench", strconv.Itoa(port))
	cmd.Dir = repo
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("starting postgres (scripts/pg.sh start bench %d): %w", port, err)
	}
	return &cluster{repo: repo, adminURL: strings.TrimSpace(string(out)), poolMaxConns: poolMaxConns}, nil
}

func (c *cluster) stop() error {
	cmd := exec.Command("bash", "scripts/pg.sh", "stop", "bench")
	cmd.Dir = c.repo
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// postmasterPID reads the running server's pid, 0 if there is none.
func (c *cluster) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(c.repo, ".data", "bench", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// url is the URL of database name, with the pool size the bench was told to use.
func (c *cluster) url(name string) string {
	u, _ := url.Parse(c.adminURL)
	u.Path = "/" + name
	if c.poolMaxConns > 0 {
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(c.poolMaxConns))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// poolSize is the pool size the service and the baselines get from a phase URL.
func (c *cluster) poolSize() int {
	if c.poolMaxConns > 0 {
		return c.poolMaxConns
	}
	return db.MaxConnsDefault // what db.Connect gives the service and the baselines
}

// exec runs statements on the admin database.
func (c *cluster) exec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, c.adminURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// prepareTemplate makes the migrated template every phase's database is cloned from.
func (c *cluster) prepareTemplate(ctx context.Context) error {
	if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+templateDB+" WITH (FORCE)", "CREATE DATABASE "+templateDB); err != nil {
		return err
	}
	m, err := db.NewMigrator(libpqURL(c.url(templateDB)))
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		return fmt.Errorf("migrating the template: %w", err)
	}
	return nil
}

// database creates a fresh, migrated database for one phase and returns its URL.
func (c *cluster) database(ctx context.Context, name string) (string, error) {
	name = "bench_" + name
	if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)",
		"CREATE DATABASE "+name+" TEMPLATE "+templateDB); err != nil {
		return "", err
	}
	return c.url(name), nil
}

// dropAll removes every database the bench made.
func (c *cluster) dropAll(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return nil
}

// settings reads the server settings the numbers depend on.
func (c *cluster) settings(ctx context.Context) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, c.adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	out := map[string]string{}
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes",
		"wal_sync_method", "commit_delay", "shared_buffers", "max_connections"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// waitFor polls cond every interval until it reports true, fails, or timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still waiting after %s: %w", timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// libpqURL drops pgxpool's own parameter (pool_max_conns) from u, which a
// single connection, golang-migrate and pgbench refuse.
func libpqURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := parsed.Query()
	q.Del("pool_max_conns")
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// connect opens one connection to a phase's database, for the bench's own queries.
func connect(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, libpqURL(dbURL))
}
