package db

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestColumnsComeFromTags(t *testing.T) {
	t.Parallel()
	type row struct {
		A    int    `db:"a"`
		Skip string `db:"-"`
		B    string `db:"b_col"`
	}
	c := columnsOf[row]()
	require.Equal(t, "a, b_col", c.String())
	require.Equal(t, "r.a, r.b_col", c.Of("r"))
	var r row
	require.Equal(t, []any{&r.A, &r.B}, c.dest(&r))
}

func TestColumnsRefuseAnUntaggedField(t *testing.T) {
	t.Parallel()
	type row struct {
		A int `db:"a"`
		B int
	}
	require.PanicsWithValue(t, `db: row.B has no db tag (a column name, or "-")`, func() { columnsOf[row]() })
}
