package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file, "0001_init.up.sql".
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

var (
	migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.up\.sql$`)
	sqlFile       = regexp.MustCompile(`\.sql$`)
)

// LoadMigrations reads the *.up.sql files at the root of fsys, in order. Any
// other .sql file name is an error, so a typo cannot silently skip a file. A
// nil fsys holds no migrations. When the root holds no .sql file but a
// "migrations" directory (an embed.FS of migrations/*.sql), that directory
// is read; an fsys with no migration at all is an error, since applying
// none would leave the plugin's tables missing until its first request.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return !e.IsDir() && sqlFile.MatchString(e.Name()) }) {
		var dirs []string
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, e.Name()+"/")
			}
		}
		if slices.Contains(dirs, "migrations/") {
			sub, err := fs.Sub(fsys, "migrations")
			if err != nil {
				return nil, fmt.Errorf("reading migrations: %w", err)
			}
			return LoadMigrations(sub)
		}
		return nil, fmt.Errorf("the migrations file system holds no NNNN_name.up.sql file at its root (it holds %s): "+
			"embed the files and pass the directory that holds them, e.g. //go:embed migrations/*.sql with Migrations: files, "+
			"or leave Migrations nil for a plugin without tables", describe(entries))
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !sqlFile.MatchString(e.Name()) {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must look like 0001_name.up.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, NewMigration(v, m[2], string(body)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// NewMigration builds a migration and its checksum.
func NewMigration(version int, name, sql string) Migration {
	sum := sha256.Sum256([]byte(sql))
	return Migration{Version: version, Name: name, SQL: sql, Checksum: hex.EncodeToString(sum[:])}
}

func describe(entries []fs.DirEntry) string {
	if len(entries) == 0 {
		return "nothing"
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}
