package directory

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// The directory's statements are written once, in SQLite's dialect. On
// PostgreSQL the connections translate them as they are prepared: ?
// placeholders become $1, $2 …, and the few SQLite idioms the store uses
// become their PostgreSQL equivalents (pgRewrites). Each statement is
// translated once (pgQueries caches the result).

// pgRewrites are the SQLite fragments the store's statements use and what
// they are on PostgreSQL, applied in order before the placeholders.
var pgRewrites = strings.NewReplacer(
	// A list of [a, b] pairs.
	"SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
	"SELECT value->>0, value->>1 FROM json_array_elements(CAST(? AS json))",
	// A list parameter: one JSON array, whatever its length.
	"json_each(?)", "json_array_elements_text(CAST(? AS json))",
	// Scalar max of two values.
	"max(p.updated_at, ", "GREATEST(p.updated_at, ",
	"max(g.updated_at, ", "GREATEST(g.updated_at, ",
	"instr(", "strpos(",
	"group_concat(person_id)", "string_agg(CAST(person_id AS TEXT), ',')",
)

var pgQueries sync.Map // SQLite text → PostgreSQL text

// pgQuery translates a statement for PostgreSQL.
func pgQuery(q string) string {
	if v, ok := pgQueries.Load(q); ok {
		return v.(string)
	}
	out := rebind(pgRewrites.Replace(q))
	pgQueries.Store(q, out)
	return out
}

// rebind numbers the ? placeholders outside quoted strings and identifiers
// (?NNN keeps its number).
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			b.WriteByte('$')
			if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				continue // ?NNN: $NNN
			}
			n++
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pgConnector opens pgx connections that translate the store's statements.
type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{cn.(*stdlib.Conn)}, nil
}

// pgConn is a pgx connection whose statements are translated by pgQuery.
type pgConn struct{ *stdlib.Conn }

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.Conn.Prepare(pgQuery(q)) }

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, pgQuery(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, pgQuery(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, pgQuery(q), args)
}

// PgxConn is the pgx connection under c, for what database/sql cannot do
// (package ha's LISTEN).
func (c *pgConn) PgxConn() *pgx.Conn { return c.Conn.Conn() }

// CheckNamedValue passes booleans as 0 and 1: the schema keeps SQLite's
// integer flags.
func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
	}
	return c.Conn.CheckNamedValue(nv)
}

// pgxConn returns the pgx connection under a database/sql driver
// connection (for COPY).
func pgxConn(driverConn any) *pgx.Conn {
	if c, ok := driverConn.(*pgConn); ok {
		return c.Conn.Conn()
	}
	return nil
}

// migrateLockKey and runLockKey are the advisory locks of the directory on
// PostgreSQL: migrating (per transaction) and the run lock (per session).
const (
	migrateLockKey int64 = 0x6c73_6d69_6772 // "lsmigr"
	runLockKey     int64 = 0x6c73_7275_6e00 // "lsrun"
)

// OpenPostgres opens the directory in the PostgreSQL database dsn (a URL or
// key=value pairs), migrating its schema as needed. The DSN's password
// never appears in an error, nor in Path.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", redactErr(err, dsnPassword(dsn)))
	}
	s := &Store{path: RedactDSN(dsn), driver: DriverPostgres, fence: opts.Fence, secret: cfg.Password, Now: time.Now}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "learnsync"
	}
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 10*time.Second)
	db := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg, stdlib.OptionAfterConnect(scanUTC))})
	db.SetMaxOpenConns(cmp.Or(opts.MaxConns, 8))
	db.SetMaxIdleConns(cmp.Or(opts.MaxConns, 8))
	db.SetConnMaxIdleTime(5 * time.Minute)
	if _, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{
		Logger: logger.Discard, SkipDefaultTransaction: true,
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", s.path, s.redact(err))
	}
	s.db = db
	if opts.ReadOnly {
		if _, err := s.SchemaVersion(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %w", s.path, err)
		}
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// scanUTC makes the connection read timestamps in UTC, as SQLite's driver
// does.
func scanUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
	return nil
}

// RedactDSN returns dsn with its password replaced by xxxxx, for messages.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if pw := dsnPassword(dsn); pw != "" {
		return strings.ReplaceAll(dsn, pw, "xxxxx")
	}
	return dsn
}

// dsnPassword returns the password written in dsn, if any.
func dsnPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			return strings.Trim(v, "'")
		}
	}
	return ""
}

// IsDSN says whether target names a PostgreSQL database rather than a
// SQLite file.
func IsDSN(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://") ||
		strings.Contains(target, "host=") || strings.Contains(target, "dbname=")
}

// redact keeps the store's password out of err.
func (s *Store) redact(err error) error { return redactErr(err, s.secret) }

// redactErr returns err with every occurrence of secret in its message
// replaced; errors.Is and As still see the original.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// lockPostgres takes the run lock on PostgreSQL: a session advisory lock on
// a connection of its own, held until unlock or until the session ends (the
// process dies, the connection drops).
func (s *Store) lockPostgres(ctx context.Context, wait time.Duration) (func(), error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock directory: %w", s.redact(err))
	}
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(?)", runLockKey).Scan(&ok); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock directory: %w", s.redact(err))
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			holder := "another process"
			var pid int
			var app, addr string
			if conn.QueryRowContext(ctx, `SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'local')
				FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'advisory' AND l.granted AND l.objid = ? LIMIT 1`, int64(runLockKey&0xffffffff)).Scan(&pid, &app, &addr) == nil {
				holder = fmt.Sprintf("%s (backend pid %d from %s)", app, pid, addr)
			}
			conn.Close()
			return nil, fmt.Errorf("%w (%s holds the run lock of %s); try again when it has finished", ErrLocked, holder, s.path)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			conn.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return func() {
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", runLockKey)
		conn.Close()
	}, nil
}
