package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	schema "github.com/boohpay/boohpay/sql"
)

// Migrator applies the embedded schema. golang-migrate holds a Postgres
// advisory lock while it works, so replicas starting together take turns.
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// NewMigrator opens its own connection on url (golang-migrate wants database/sql).
func NewMigrator(url string) (*Migrator, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	driver, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("opening migration driver: %w", err)
	}
	src, err := iofs.New(schema.Migrations, ".")
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("creating migrator: %w", err)
	}
	return &Migrator{m: m, db: sqlDB}, nil
}

// Up applies every pending migration.
func (m *Migrator) Up() error {
	if err := m.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrating up: %w", err)
	}
	return nil
}

// Down rolls back n migrations. Asking for more than are applied is refused
// before anything changes.
func (m *Migrator) Down(n int) error {
	v, _, err := m.Version()
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if applied := appliedCount(v); n > applied {
		return fmt.Errorf("migrating down %d: only %d migrations are applied (version %d)", n, applied, v)
	}
	if err := m.m.Steps(-n); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrating down %d: %w", n, err)
	}
	return nil
}

// Version returns the applied version (0 when none) and whether a failed
// migration left it dirty.
func (m *Migrator) Version() (uint, bool, error) {
	v, dirty, err := m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, dirty, err
}

// Close releases the migrator's connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

// SchemaVersion returns golang-migrate's recorded version and dirty flag:
// 0 for a database never migrated or migrated all the way down.
func (s *Store) SchemaVersion(ctx context.Context) (uint, bool, error) {
	var v int64
	var dirty bool
	err := s.Pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UndefinedTable:
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reading schema version: %w", err)
	}
	return uint(v), dirty, nil
}

var migrationFile = regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)

// Versions lists the migration versions embedded in the binary, ascending.
// Numbers may skip (work in progress on several branches reserves its own), so
// a count of migrations is len(Versions()), not the latest version.
func Versions() []uint {
	entries, _ := fs.ReadDir(schema.Migrations, ".") // sorted by name, and names are zero-padded
	var out []uint
	for _, e := range entries {
		if m := migrationFile.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			out = append(out, uint(n))
		}
	}
	return out
}

// LatestVersion is the highest migration version embedded in the binary.
func LatestVersion() uint {
	vs := Versions()
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// appliedCount is how many embedded migrations a database at version v has applied.
func appliedCount(v uint) int {
	n := 0
	for _, x := range Versions() {
		if x <= v {
			n++
		}
	}
	return n
}
