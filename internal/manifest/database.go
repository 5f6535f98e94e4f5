package manifest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Database is the app's database. Its migrations folder is part of every
// revision; lastgood lints the migrations a release brings at apply and
// runs them in a transaction before the release takes traffic (see
// docs/database.md).
type Database struct {
	// Driver is DriverPostgres or DriverSQLite.
	Driver string `json:"driver"`
	// URL is where the database is, as written; ${VAR} is expanded from
	// lastgood's environment when lastgood connects, so the password need
	// not be in the manifest. PostgreSQL: postgres://user:pass@host:port/db;
	// SQLite: the absolute path of the database file.
	URL string `json:"url"`
	// Migrations is the folder of migration files in the golang-migrate
	// layout (NNN_name.up.sql, NNN_name.down.sql), as written: absolute or
	// relative to the manifest's folder. Default ./migrations.
	Migrations string `json:"migrations"`
	// Allow acknowledges destructive or backward-incompatible migrations,
	// each with the reason, which goes into the event log.
	Allow []AllowMigration `json:"allow,omitempty"`
}

// AllowMigration acknowledges one migration that lint would refuse.
type AllowMigration struct {
	// Migration is the version as written in the file names ("004").
	Migration string `json:"migration"`
	Reason    string `json:"reason"`
}

// Version is the migration's version as a number (004 is 4).
func (a AllowMigration) Version() (uint64, bool) {
	n, err := strconv.ParseUint(a.Migration, 10, 64)
	return n, err == nil
}

// Drivers of database.driver.
const (
	DriverPostgres = "postgres"
	DriverSQLite   = "sqlite"
)

const defaultMigrations = "./migrations"

func (d *Database) setDefaults(w written) {
	if !w("database.migrations") {
		d.Migrations = defaultMigrations
	}
	if len(d.Allow) == 0 {
		d.Allow = nil
	}
}

func (v *validator) database(d *Database) {
	switch d.Driver {
	case DriverPostgres, DriverSQLite:
	case "":
		v.fail("database.driver", "is required: postgres or sqlite")
	default:
		v.fail("database.driver", "must be postgres or sqlite, got %q", d.Driver)
	}
	switch refs, err := references(d.URL); {
	case d.URL == "":
		v.fail("database.url", "is required: like \"${DATABASE_URL}\" (expanded from lastgood's environment)")
	case err != nil:
		v.fail("database.url", "%v", err)
	case len(refs) == 0 && d.Driver != "":
		if err := CheckURL(d.Driver, d.URL); err != nil {
			v.fail("database.url", "%v", err)
		}
	}
	if strings.TrimSpace(d.Migrations) == "" {
		v.fail("database.migrations", "must name the folder of migration files, like ./migrations")
	}
	first := map[uint64]int{}
	for i, a := range d.Allow {
		path := index("database.allow", i)
		n, ok := a.Version()
		switch {
		case a.Migration == "":
			v.fail(path+".migration", "is required: the version of the migration, as in its file name (004)")
		case !ok:
			v.fail(path+".migration", "must be a migration version, the digits its file name starts with (004), got %q", a.Migration)
		}
		if strings.TrimSpace(a.Reason) == "" {
			v.fail(path+".reason", "is required: why this migration is safe to run while the stable revision serves (it goes into the event log)")
		}
		if j, dup := first[n]; ok && dup {
			v.fail(path, "acknowledges migration %s twice (also database.allow[%d])", a.Migration, j)
		} else if ok {
			first[n] = i
		}
	}
}

// references returns the variable names of the ${NAME} references in s,
// and an error for a malformed one.
func references(s string) ([]string, error) {
	var names []string
	for rest := s; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return names, nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q has a ${ without its closing }", s)
		}
		name := rest[i+2 : i+j]
		if !envPattern.MatchString(name) {
			return nil, fmt.Errorf("${%s} is not a variable reference: names are letters, digits and _, not starting with a digit", name)
		}
		names = append(names, name)
		rest = rest[i+j+1:]
	}
}

// ExpandURL expands the ${VAR} references of the URL with getenv and
// checks the result. The error names a variable that is not set, never a
// value.
func (d *Database) ExpandURL(getenv func(string) (string, bool)) (string, error) {
	refs, err := references(d.URL)
	if err != nil {
		return "", err
	}
	out := d.URL
	for _, name := range refs {
		val, ok := getenv(name)
		if !ok || val == "" {
			return "", fmt.Errorf("database.url: %s is not set in lastgood's environment", name)
		}
		out = strings.Replace(out, "${"+name+"}", val, 1)
	}
	if err := CheckURL(d.Driver, out); err != nil {
		if len(refs) > 0 {
			return "", fmt.Errorf("database.url (from %s): %w", strings.Join(refs, ", "), err)
		}
		return "", fmt.Errorf("database.url: %w", err)
	}
	return out, nil
}

// CheckURL checks a database URL for a driver. Its errors never hold the
// URL's password.
func CheckURL(driver, raw string) error {
	switch driver {
	case DriverPostgres:
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("must be a postgres:// URL, like postgres://app@127.0.0.1:5432/app, or a ${VAR} reference")
		}
		if u.Host == "" {
			return fmt.Errorf("must name a host, like postgres://app@127.0.0.1:5432/app")
		}
		if strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("must name a database, like postgres://app@127.0.0.1:5432/app")
		}
	case DriverSQLite:
		if !filepath.IsAbs(raw) {
			return fmt.Errorf("must be the absolute path of the SQLite file, like /var/lib/web/web.db, or a ${VAR} reference")
		}
		if strings.ContainsAny(raw, "?\x00") {
			return fmt.Errorf("must be a plain file path (no ?options, no NUL)")
		}
	}
	return nil
}
