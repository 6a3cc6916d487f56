// Command riversql writes River's schema migrations into sql/ as
// golang-migrate files, one pair per River version, numbered after the
// highest existing file. Run it after upgrading River:
//
//	go run ./scripts/riversql
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/boohpay/boohpay/db"
)

func main() {
	if err := run("sql"); err != nil {
		fmt.Fprintln(os.Stderr, "riversql:", err)
		os.Exit(1)
	}
}

var fileVersion = regexp.MustCompile(`^(\d+)_(.*)\.(up|down)\.sql$`)

func run(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	highest := 0
	have := map[string]bool{}
	for _, e := range entries {
		m := fileVersion.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		highest = max(highest, n)
		have[m[2]] = true
	}
	migrations, err := db.RiverMigrations()
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if have[m.Name] {
			continue
		}
		highest++
		base := filepath.Join(dir, fmt.Sprintf("%06d_%s", highest, m.Name))
		if err := os.WriteFile(base+".up.sql", []byte(m.Up), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(base+".down.sql", []byte(m.Down), 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", strings.TrimPrefix(base, dir+"/"))
	}
	return nil
}
