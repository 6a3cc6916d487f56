// Package sql holds the database schema as golang-migrate files, embedded in
// the binary. River's own schema is part of the sequence (files named
// *_river_NNN_*), written by scripts/riversql from River's migrator.
package sql

import "embed"

// Migrations are the golang-migrate files, up and down.
//
//go:embed *.sql
var Migrations embed.FS
