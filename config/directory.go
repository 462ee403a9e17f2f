package config

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// The directory's drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// validate checks the directory keys. A DSN is never repeated in a message:
// it may hold a password.
func (c *Directory) validate(d *decoder) {
	dsn := strings.TrimSpace(c.DSN.Reveal())
	switch c.Driver {
	case DriverSQLite:
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			d.fail("directory.dsn", "is a PostgreSQL connection string: set directory.driver: postgres")
		}
	case DriverPostgres:
		if dsn == "" {
			break
		}
		if _, err := pgx.ParseConfig(dsn); err != nil {
			d.fail("directory.dsn", "not a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=verify-full, or key=value pairs)")
		}
	case "":
		d.fail("directory.driver", "required")
	default:
		d.fail("directory.driver", "unknown driver %q (supported: sqlite, postgres)", c.Driver)
	}
	if dsn == "" {
		d.fail("directory.dsn", "required")
	}
	if c.MaxConns < 0 {
		d.fail("directory.max_conns", "must not be negative, got %d", c.MaxConns)
	} else if c.MaxConns > 0 && c.Driver != DriverPostgres {
		d.fail("directory.max_conns", "applies to driver postgres only")
	}
}
