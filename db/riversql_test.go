package db_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
	schema "github.com/boohpay/boohpay/sql"
)

var riverFile = regexp.MustCompile(`^\d+_(river_\d{3}_.+)\.(up|down)\.sql$`)

// embeddedRiverFiles maps "river_NNN_name.up" and ".down" to the embedded
// file's name and content.
func embeddedRiverFiles(t *testing.T) map[string][2]string {
	t.Helper()
	entries, err := fs.ReadDir(schema.Migrations, ".")
	require.NoError(t, err)
	out := map[string][2]string{}
	for _, e := range entries {
		m := riverFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		b, err := fs.ReadFile(schema.Migrations, e.Name())
		require.NoError(t, err)
		key := m[1] + "." + m[2]
		require.NotContains(t, out, key, "two files for %s", key)
		out[key] = [2]string{e.Name(), string(b)}
	}
	return out
}

// TestRiverMigrationsAreAllInSQL fails when River's migrator knows a migration
// that sql/ lacks or holds differently: after upgrading River, run
// `go run ./scripts/riversql` and commit the new files.
func TestRiverMigrationsAreAllInSQL(t *testing.T) {
	t.Parallel()
	migrations, err := db.RiverMigrations()
	require.NoError(t, err)
	require.NotEmpty(t, migrations)

	files := embeddedRiverFiles(t)
	for _, m := range migrations {
		for dir, want := range map[string]string{"up": m.Up, "down": m.Down} {
			f, ok := files[m.Name+"."+dir]
			require.True(t, ok, "River migration %d (%s) has no %s file in sql/: run `go run ./scripts/riversql`", m.Version, m.Name, dir)
			require.Equal(t, want, f[1], "sql/%s differs from what River's migrator renders: regenerate it", f[0])
			delete(files, m.Name+"."+dir)
		}
	}
	require.Empty(t, files, "sql/ holds River files River's migrator does not know")
}

// TestRiverValidatesMigratedSchema asks River itself, on a database migrated
// by golang-migrate, whether any of its migrations is unapplied.
func TestRiverValidatesMigratedSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)

	res, err := migrator.Validate(ctx, nil)
	require.NoError(t, err)
	require.True(t, res.OK, "River reports: %v", res.Messages)

	// And River's own migrator has nothing left to do.
	up, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	require.Empty(t, up.Versions)
}

// TestRiverValidateSeesAMissingMigration shows the check above can fail: with
// River's last migration rolled back, Validate names it.
func TestRiverValidateSeesAMissingMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	migrations, err := db.RiverMigrations()
	require.NoError(t, err)
	last := migrations[len(migrations)-1]

	// Roll back to just before the last River migration's file.
	version := riverFileVersion(t, last.Name)
	steps := 0
	for _, v := range db.Versions() {
		if v >= version {
			steps++
		}
	}
	require.NoError(t, m.Down(steps))

	pool, err := db.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)
	res, err := migrator.Validate(ctx, nil)
	require.NoError(t, err)
	require.False(t, res.OK)
	require.Contains(t, strings.Join(res.Messages, " "), "Unapplied migrations")
}

func riverFileVersion(t *testing.T, name string) uint {
	t.Helper()
	entries, err := fs.ReadDir(schema.Migrations, ".")
	require.NoError(t, err)
	for _, e := range entries {
		if m := riverFile.FindStringSubmatch(e.Name()); m != nil && m[1] == name && m[2] == "up" {
			v, err := strconv.ParseUint(strings.SplitN(e.Name(), "_", 2)[0], 10, 32)
			require.NoError(t, err)
			return uint(v)
		}
	}
	t.Fatalf("no file for %s", name)
	return 0
}

// TestRiverSQLGenerator runs scripts/riversql on a copy of sql/: with every
// River migration present it writes nothing; with one missing it writes
// exactly that pair, numbered after the highest file, with River's content.
func TestRiverSQLGenerator(t *testing.T) {
	t.Parallel()
	_, thisFile, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(thisFile))
	work := t.TempDir()
	bin := filepath.Join(work, "riversql")
	build := exec.Command("go", "build", "-o", bin, "./scripts/riversql")
	build.Dir = repo
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building scripts/riversql: %s", out)

	sqlDir := filepath.Join(work, "sql")
	require.NoError(t, os.CopyFS(sqlDir, schema.Migrations))
	before := dirContents(t, sqlDir)

	runGen := func() string {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "riversql: %s", out)
		return string(out)
	}

	require.Empty(t, runGen(), "nothing to write when every River migration is present")
	require.Equal(t, before, dirContents(t, sqlDir))

	migrations, err := db.RiverMigrations()
	require.NoError(t, err)
	last := migrations[len(migrations)-1]
	version := riverFileVersion(t, last.Name)
	for _, dir := range []string{"up", "down"} {
		name := filepath.Join(sqlDir, fmtVersion(version)+"_"+last.Name+"."+dir+".sql")
		require.NoError(t, os.Remove(name))
	}
	next := fmtVersion(db.LatestVersion() + 1)
	require.Equal(t, "wrote "+next+"_"+last.Name+"\n", runGen())
	after := dirContents(t, sqlDir)
	require.Equal(t, last.Up, after[next+"_"+last.Name+".up.sql"])
	require.Equal(t, last.Down, after[next+"_"+last.Name+".down.sql"])
	require.Len(t, after, len(before))

	require.Empty(t, runGen(), "a second run writes nothing")
}

func fmtVersion(v uint) string { return fmt.Sprintf("%06d", v) }

func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}
