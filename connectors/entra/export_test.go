package entra

import (
	"testing"
	"time"
)

// FastTokenRetries makes the retries of token requests wait milliseconds
// instead of seconds for connectors built until tb ends. Tests that call it
// must not run in parallel with tests that build connectors themselves.
func FastTokenRetries(tb testing.TB) {
	old := tokenRetry
	tokenRetry.RetryDelay = time.Millisecond
	tokenRetry.MaxRetryDelay = 5 * time.Millisecond
	tb.Cleanup(func() { tokenRetry = old })
}

// SetRequestTimeout changes the request timeout of c's Graph requests
// (tokens keep the one c was built with).
func SetRequestTimeout(c *Connector, d time.Duration) {
	c.tr.timeout = d
}
