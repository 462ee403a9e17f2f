package connectors

import (
	"context"
	"errors"
	"testing"
)

type typeConfig struct{ fail bool }

func (c *typeConfig) Validate(Options) []error { return nil }

type typeConn struct{}

func (*typeConn) FetchAll(context.Context) (*Result, error) { return &Result{Full: true}, nil }

func TestTypeOfNeverReturnsATypedNil(t *testing.T) {
	typ := TypeOf(func() *typeConfig { return &typeConfig{} }, func(c *typeConfig, _ Options) (*typeConn, error) {
		if c.fail {
			return nil, errors.New("refused")
		}
		return &typeConn{}, nil
	})
	cfg := typ.NewConfig()
	if _, ok := cfg.(*typeConfig); !ok {
		t.Fatalf("NewConfig = %T", cfg)
	}
	if conn, err := typ.New(cfg, Options{Name: "x"}); err != nil || conn == nil {
		t.Fatalf("New = %v, %v", conn, err)
	}
	cfg.(*typeConfig).fail = true
	if conn, err := typ.New(cfg, Options{Name: "x"}); err == nil || conn != nil {
		t.Errorf("failed New = %#v, %v; want a nil interface and the error", conn, err)
	}
	for _, bad := range []Config{nil, (*typeConfig)(nil)} {
		if conn, err := typ.New(bad, Options{Name: "x"}); err == nil || conn != nil {
			t.Errorf("New(%#v) = %#v, %v; want an error", bad, conn, err)
		}
	}
}
