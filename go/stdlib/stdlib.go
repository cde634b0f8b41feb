// Package stdlib puts a database/sql front on a pgpool.Pool, like pgx's stdlib package:
//
//	pool, err := pgpool.NewPool(ctx, url)
//	db := stdlib.OpenDBFromPool(pool)
//
// Every database/sql connection is a connection acquired from the pool and released when
// database/sql closes it; the *sql.DB keeps no idle connections of its own (the pool does).
package stdlib

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	pgpool "github.com/pgpool/pgpool/go"
)

// OpenDBFromPool returns a *sql.DB whose connections come from pool. Closing the *sql.DB
// does not close the pool. It sets the *sql.DB's idle connections to zero, since the pool
// manages them.
func OpenDBFromPool(pool *pgpool.Pool) *sql.DB {
	db := sql.OpenDB(&Connector{Pool: pool})
	db.SetMaxIdleConns(0)
	return db
}

// Connector is a driver.Connector over a pgpool.Pool.
type Connector struct{ Pool *pgpool.Pool }

// Connect acquires a connection from the pool.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{conn: conn}, nil
}

// Driver returns the package's driver.Driver (it cannot open connection strings: use
// OpenDBFromPool).
func (c *Connector) Driver() driver.Driver { return Driver{} }

// Driver is the driver.Driver of Connector; Open is not supported.
type Driver struct{}

// Open always fails: a connection needs a pool (OpenDBFromPool).
func (Driver) Open(string) (driver.Conn, error) {
	return nil, errors.New("pgpool/stdlib: use OpenDBFromPool")
}

// Conn is a database/sql driver connection: a pooled pgpool.Conn.
type Conn struct {
	conn *pgpool.Conn
	inTx bool
}

var (
	_ driver.Conn               = (*Conn)(nil)
	_ driver.ConnBeginTx        = (*Conn)(nil)
	_ driver.QueryerContext     = (*Conn)(nil)
	_ driver.ExecerContext      = (*Conn)(nil)
	_ driver.ConnPrepareContext = (*Conn)(nil)
	_ driver.Pinger             = (*Conn)(nil)
	_ driver.NamedValueChecker  = (*Conn)(nil)
	_ driver.SessionResetter    = (*Conn)(nil)
	_ driver.Validator          = (*Conn)(nil)
)

// PgpoolConn is the underlying pooled connection (for sql.Conn.Raw).
func (c *Conn) PgpoolConn() *pgpool.Conn { return c.conn }

// Close releases the connection to the pool.
func (c *Conn) Close() error {
	c.conn.Release()
	return nil
}

// Prepare returns a statement that runs through the connection's statement cache.
func (c *Conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext returns a statement that runs through the connection's statement cache
// (the library prepares it on first use).
func (c *Conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &Stmt{conn: c, query: query}, nil
}

// Begin starts a transaction.
func (c *Conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

var isolation = map[sql.IsolationLevel]string{
	sql.LevelReadUncommitted: "READ UNCOMMITTED",
	sql.LevelReadCommitted:   "READ COMMITTED",
	sql.LevelRepeatableRead:  "REPEATABLE READ",
	sql.LevelSnapshot:        "REPEATABLE READ",
	sql.LevelSerializable:    "SERIALIZABLE",
}

// BeginTx starts a transaction with the isolation level and read-only flag of opts.
func (c *Conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	set := ""
	if level := sql.IsolationLevel(opts.Isolation); level != sql.LevelDefault {
		name, ok := isolation[level]
		if !ok {
			return nil, fmt.Errorf("pgpool/stdlib: unsupported isolation level %v", level)
		}
		set = " ISOLATION LEVEL " + name
	}
	if opts.ReadOnly {
		set += " READ ONLY"
	}
	if err := c.conn.Begin(ctx); err != nil {
		return nil, err
	}
	if set != "" {
		if err := c.conn.Batch(ctx, "SET TRANSACTION"+set); err != nil {
			_ = c.conn.Rollback(ctx)
			return nil, err
		}
	}
	c.inTx = true
	return &Tx{conn: c, ctx: ctx}, nil
}

// Tx is a transaction on a Conn.
type Tx struct {
	conn *Conn
	ctx  context.Context
}

// Commit commits (a failed transaction is rolled back and reported with SQLSTATE 25P02).
func (t *Tx) Commit() error {
	t.conn.inTx = false
	return t.conn.conn.Commit(context.WithoutCancel(t.ctx))
}

// Rollback rolls back.
func (t *Tx) Rollback() error {
	t.conn.inTx = false
	return t.conn.conn.Rollback(t.ctx)
}

func args(named []driver.NamedValue) ([]any, error) {
	out := make([]any, len(named))
	for i, n := range named {
		if n.Name != "" {
			return nil, fmt.Errorf("pgpool/stdlib: named parameter %q: use $%d", n.Name, n.Ordinal)
		}
		out[i] = n.Value
	}
	return out, nil
}

// CheckNamedValue accepts every value the pgpool binders take (they report the others).
func (c *Conn) CheckNamedValue(*driver.NamedValue) error { return nil }

// QueryContext runs a query.
func (c *Conn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	a, err := args(named)
	if err != nil {
		return nil, err
	}
	rows, err := c.conn.Query(ctx, query, a...)
	if err != nil {
		return nil, err
	}
	return &Rows{rows: rows}, nil
}

// ExecContext runs a command.
func (c *Conn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	a, err := args(named)
	if err != nil {
		return nil, err
	}
	tag, err := c.conn.Exec(ctx, query, a...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// Ping runs an empty round trip.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.conn.Exec(ctx, "SELECT 1")
	return err
}

// ResetSession is called before database/sql reuses the connection.
func (c *Conn) ResetSession(context.Context) error { return nil }

// IsValid reports whether the connection may be reused.
func (c *Conn) IsValid() bool { return !c.inTx }

// Stmt is a prepared statement: the SQL runs through the connection's statement cache.
type Stmt struct {
	conn  *Conn
	query string
}

// Close is a no-op (the session's cache keeps the statement).
func (s *Stmt) Close() error { return nil }

// NumInput is -1: the server checks the parameter count.
func (s *Stmt) NumInput() int { return -1 }

// Exec runs the statement as a command.
func (s *Stmt) Exec(a []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(a))
}

// Query runs the statement.
func (s *Stmt) Query(a []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(a))
}

// ExecContext runs the statement as a command.
func (s *Stmt) ExecContext(ctx context.Context, a []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.query, a)
}

// QueryContext runs the statement.
func (s *Stmt) QueryContext(ctx context.Context, a []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.query, a)
}

func named(a []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(a))
	for i, v := range a {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

// Rows is a driver.Rows over pgpool.Rows.
type Rows struct{ rows *pgpool.Rows }

// Columns are the column names.
func (r *Rows) Columns() []string { return r.rows.Columns() }

// ColumnTypeDatabaseTypeName is the column's type name in upper case ("INT4", "TEXT").
func (r *Rows) ColumnTypeDatabaseTypeName(i int) string {
	names := r.rows.ColumnTypeNames()
	if i < 0 || i >= len(names) {
		return ""
	}
	return upper(names[i])
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// Close frees the rows.
func (r *Rows) Close() error {
	r.rows.Close()
	return nil
}

// Next fills dest with the next row's values, io.EOF at the end.
func (r *Rows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	return r.rows.DriverValues(dest)
}
