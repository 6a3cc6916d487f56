package db_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// schemaObjects lists what the migrations leave in the database besides
// golang-migrate's own bookkeeping: tables, views, sequences, types and
// functions in the public schema.
func schemaObjects(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT 'relation ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p') AND c.relname <> 'schema_migrations'
		UNION ALL
		SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND NOT EXISTS
			(SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
		UNION ALL
		SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public'
		ORDER BY 1`)
	require.NoError(t, err)
	objects, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return objects
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	latest := db.LatestVersion()
	require.GreaterOrEqual(t, latest, uint(13))

	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })

	requireVersion := func(want uint) {
		t.Helper()
		v, dirty, err := m.Version()
		require.NoError(t, err)
		require.False(t, dirty)
		require.Equal(t, want, v)
	}

	requireVersion(0)
	require.NoError(t, m.Up())
	requireVersion(latest)
	migrated := schemaObjects(t, url)
	require.Contains(t, migrated, "relation merchants")
	require.Contains(t, migrated, "relation river_job")
	require.Contains(t, migrated, "type river_job_state")

	require.NoError(t, m.Up(), "up again is a no-op")
	requireVersion(latest)

	// Down every step to nothing: each down file must undo its up file,
	// River's included, leaving no table, type or function behind.
	require.NoError(t, m.Down(len(db.Versions())))
	requireVersion(0)
	require.Empty(t, schemaObjects(t, url))

	require.NoError(t, m.Up())
	requireVersion(latest)
	require.Equal(t, migrated, schemaObjects(t, url), "up after down builds the same schema")
}

func TestMigrateDownOneStepAtATime(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	versions := db.Versions()

	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Up())

	for i := len(versions) - 1; i >= 0; i-- {
		require.NoError(t, m.Down(1), "down from %d", versions[i])
		v, dirty, err := m.Version()
		require.NoError(t, err)
		require.False(t, dirty)
		want := uint(0)
		if i > 0 {
			want = versions[i-1]
		}
		require.Equal(t, want, v)
	}
	require.Empty(t, schemaObjects(t, url))
}

func TestMigrateDownPastZeroFails(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Up())

	latest := db.LatestVersion()
	err = m.Down(len(db.Versions()) + 5)
	require.ErrorContains(t, err, fmt.Sprintf("only %d migrations are applied", len(db.Versions())))
	v, dirty, err := m.Version()
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, latest, v, "a refused down changes nothing")
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	v, dirty, err := store.SchemaVersion(ctx)
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, db.LatestVersion(), v)
}

func TestSchemaVersionOfEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	store := dbtest.Open(t, url)

	// Never migrated: no schema_migrations table at all.
	v, dirty, err := store.SchemaVersion(ctx)
	require.NoError(t, err)
	require.False(t, dirty)
	require.Zero(t, v)

	// Migrated and rolled back: the table exists but holds no row.
	m, err := db.NewMigrator(url)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Up())
	require.NoError(t, m.Down(len(db.Versions())))
	v, dirty, err = store.SchemaVersion(ctx)
	require.NoError(t, err)
	require.False(t, dirty)
	require.Zero(t, v)
}
