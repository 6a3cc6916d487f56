package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestPGBenchScriptMatchesService ties bench/pgbench/create_and_succeed.sql
// to the service: it records every statement the service sends for the
// bench's own create + simulate pair (through the real router, a merchant
// with a webhook URL) and compares them, in order, with the script's. The
// differences the script's header allows are skipped here and nothing else.
func TestPGBenchScriptMatchesService(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("pgbench", "create_and_succeed.sql"))
	if err != nil {
		t.Fatal(err)
	}
	want := parsePGBenchScript(string(script))
	got := serviceStatements(t)

	for i := 0; i < max(len(got), len(want)); i++ {
		if i >= len(want) {
			t.Fatalf("statement %d: the service sends\n\t%s\nthe script has no more", i+1, normalizeSQL(got[i]))
		}
		if i >= len(got) {
			t.Fatalf("statement %d: the script runs\n\t%s\nthe service sent no more", i+1, normalizeSQL(want[i].sql))
		}
		w, g := want[i], got[i]
		if w.loose {
			if a, b := sqlTouches(g), sqlTouches(w.sql); a != b {
				t.Fatalf("statement %d (compared by tables and column lists):\nservice: %s\nscript:  %s", i+1, a, b)
			}
			continue
		}
		if a, b := normalizeSQL(g), normalizeSQL(w.sql); a != b {
			t.Fatalf("statement %d:\nservice: %s\nscript:  %s", i+1, a, b)
		}
	}
}

// serviceStatements runs one create + simulate pair, as the bench sends it,
// and returns the statements the service sent, less the allowed extras.
func serviceStatements(t *testing.T) []string {
	var rec statementLog
	store := dbtest.Open(t, dbtest.URL(t), func(c *pgxpool.Config) { c.ConnConfig.Tracer = &rec })
	nm, err := store.MerchantCreate(t.Context(), "pgbench tie", "https://merchant.example.com/hooks")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(api.NewServer(api.Config{DatabaseTimeout: time.Minute}, log, store, nil))
	defer srv.Close()
	c := newAPIClient(srv.URL, nm.APIKey)
	rec.on.Store(true)
	id, err := c.createPayment(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.simulate(t.Context(), id, "SUCCEEDED"); err != nil {
		t.Fatal(err)
	}
	rec.on.Store(false)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, s := range rec.sqls {
		if !allowedExtra(s) {
			out = append(out, s)
		}
	}
	return out
}

// allowedExtra reports the service statements the script leaves out on
// purpose (its header says why): the once-a-minute API key touch, River's
// optional insert notification (the script sends it with the measured
// probability, in an \if block), and River's once-per-client version probe.
func allowedExtra(sql string) bool {
	n := normalizeSQL(sql)
	return strings.HasPrefix(n, "update api_keys set last_used_at") ||
		strings.Contains(sql, "-- name: PGNotifyMany") ||
		strings.Contains(sql, "-- name: PGGetProductAndVersion")
}

type scriptStatement struct {
	sql   string
	loose bool // marked "[shape only]": compared by tables and column lists
}

// parsePGBenchScript splits a pgbench script into its SQL statements: a
// statement ends at ";" or at a \gset; other meta-commands are dropped, and
// so is the \if :notify block (River's optional notification).
func parsePGBenchScript(s string) []scriptStatement {
	var (
		out   []scriptStatement
		cur   []string
		loose bool
		inIf  bool
	)
	flush := func() {
		if sql := strings.TrimSpace(strings.Join(cur, "\n")); sql != "" {
			out = append(out, scriptStatement{sql: sql, loose: loose})
		}
		cur, loose = nil, false
	}
	for _, line := range strings.Split(s, "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, `\if`):
			inIf = true
		case strings.HasPrefix(trim, `\endif`):
			inIf = false
		case inIf:
		case strings.HasPrefix(trim, `\gset`):
			flush()
		case strings.HasPrefix(trim, `\`):
		case strings.HasPrefix(trim, "--"):
			if strings.Contains(trim, "[shape only]") {
				loose = true
			}
		default:
			cur = append(cur, line)
			if strings.HasSuffix(trim, ";") {
				flush()
			}
		}
	}
	flush()
	return out
}

var (
	reComment     = regexp.MustCompile(`--[^\n]*`)
	reString      = regexp.MustCompile(`'(?:[^']|'')*'`)
	reParam       = regexp.MustCompile(`\$\d+`)
	rePGBenchVar  = regexp.MustCompile(`(^|[^:]):[A-Za-z_]\w*`)
	reSpace       = regexp.MustCompile(`\s+`)
	rePunct       = regexp.MustCompile(`\s*([(),;=\[\]])\s*`)
	reNumber      = regexp.MustCompile(`\b\d+\b`)
	reNull        = regexp.MustCompile(`\bnull\b`)
	reValue       = regexp.MustCompile(`bench_uuidv7\(\)|decode\(\?,\?\)|array\[(\?|now\(\))\]`)
	reCast        = regexp.MustCompile(`\?::[a-z_]+(\(\?\))?(\[\])?`)
	reAroundValue = regexp.MustCompile(`\s*\?\s*`)
)

// normalizeSQL gives a statement's shape: comments dropped, whitespace
// collapsed, lower case, and every value a "?" — the service's $n, the
// script's :vars and literals (NULL included), bench_uuidv7() ids,
// decode(…, 'hex') of the key hash, one-element ARRAY[…] (of a value or
// now()) of River's batch arguments — with the casts on them dropped.
func normalizeSQL(s string) string {
	s = reComment.ReplaceAllString(s, " ")
	s = reString.ReplaceAllString(s, "?")
	s = reParam.ReplaceAllString(s, "?")
	s = rePGBenchVar.ReplaceAllString(s, "$1?")
	s = strings.ToLower(s)
	s = reSpace.ReplaceAllString(s, " ")
	s = rePunct.ReplaceAllString(s, "$1")
	s = reNumber.ReplaceAllString(s, "?")
	s = reNull.ReplaceAllString(s, "?")
	for prev := ""; prev != s; {
		prev = s
		s = reValue.ReplaceAllString(s, "?")
		s = reCast.ReplaceAllString(s, "?")
	}
	s = reAroundValue.ReplaceAllString(s, "?")
	return strings.TrimSuffix(strings.TrimSpace(s), ";")
}

var (
	reInsert = regexp.MustCompile(`insert into (\w+)\(([^)]*)\)`)
	reTable  = regexp.MustCompile(`\b(?:from|join|update) (\w+)`)
	reCTE    = regexp.MustCompile(`(?:with|,) ?(\w+) as\(`)
)

// sqlTouches is what a statement the script must build differently (ids
// and the event body made in SQL) still has to share with the service's:
// the tables it inserts into with their column lists, and the tables it
// reads or updates.
func sqlTouches(sql string) string {
	n := normalizeSQL(sql)
	ctes := map[string]bool{}
	for _, m := range reCTE.FindAllStringSubmatch(n, -1) {
		ctes[m[1]] = true
	}
	var parts []string
	for _, m := range reInsert.FindAllStringSubmatch(n, -1) {
		parts = append(parts, "insert "+m[1]+"("+m[2]+")")
	}
	for _, m := range reTable.FindAllStringSubmatch(n, -1) {
		if !ctes[m[1]] {
			parts = append(parts, "table "+m[1])
		}
	}
	return strings.Join(parts, "; ")
}

// statementLog records every statement a pool sends while on.
type statementLog struct {
	on   atomic.Bool
	mu   sync.Mutex
	sqls []string
}

func (l *statementLog) add(sql string) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	l.sqls = append(l.sqls, sql)
	l.mu.Unlock()
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add(d.SQL)
	return ctx
}

func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (l *statementLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.add(d.SQL)
}

func (l *statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
