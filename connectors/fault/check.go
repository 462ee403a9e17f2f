package fault

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Timed runs the fetch under test with a deadline of 20 s and checks that
// it ends within 10 s.
func Timed(t testing.TB, fetch func(ctx context.Context) (*connectors.Result, error)) (*connectors.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := fetch(ctx)
	if took := time.Since(start); ctx.Err() != nil || took > 10*time.Second {
		t.Errorf("the fetch took %v", took)
	}
	return res, err
}

// Fetcher is a connector that fetches in full and incrementally.
type Fetcher interface {
	connectors.Connector
	connectors.Incremental
}

// FetchOf returns c's full fetch, or its incremental one from cursor.
func FetchOf(c Fetcher, full bool, cursor string) func(ctx context.Context) (*connectors.Result, error) {
	if full {
		return c.FetchAll
	}
	return func(ctx context.Context) (*connectors.Result, error) { return c.FetchChanges(ctx, cursor) }
}

// CheckFailed checks the contract of a failed fetch: an error and no
// result, an error that quotes the source, says one of want and shows
// none of hidden (both compared case-insensitively).
func CheckFailed(t testing.TB, source string, res *connectors.Result, err error, want []string, hidden ...string) {
	t.Helper()
	if err == nil || res != nil {
		t.Fatalf("fetch = %+v, %v; want an error and no result", res, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+source+`"`) {
		t.Errorf("error %q does not name the source %q", msg, source)
	}
	lower := strings.ToLower(msg)
	if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(lower, strings.ToLower(w)) }) {
		t.Errorf("error %q does not say %q", msg, strings.Join(want, `" or "`))
	}
	for _, s := range hidden {
		if s != "" && strings.Contains(lower, strings.ToLower(s)) {
			t.Errorf("error %q shows a secret or a token (%.6s…)", msg, s)
		}
	}
}

// CheckAnswer checks the error taxonomy: err carries a
// connectors.AnswerError of k's kind, which is not terminal unless k is a
// refusal.
func CheckAnswer(t testing.TB, err error, k Kind) {
	t.Helper()
	ae := connectors.AsAnswerError(err)
	switch {
	case ae == nil:
		t.Errorf("error %q carries no connectors.AnswerError; want kind %v", err, k.Answer)
	case ae.Kind != k.Answer:
		t.Errorf("error %q: answer kind %v, want %v", err, ae.Kind, k.Answer)
	case ae.Terminal && !k.Refusal:
		t.Errorf("error %q is terminal; a %s answer is worth retrying", err, k.Name)
	}
}

// checkTaxonomy asserts the error taxonomy of every Matrix case: the
// three connectors report every failed request as a connectors.AnswerError
// with the kind agreed for the fault (see Kinds).
func checkTaxonomy(t testing.TB, err error, k Kind) {
	t.Helper()
	CheckAnswer(t, err, k)
}

// Whole runs a full fetch of broken or fuzzed answers, with a deadline:
// it must fail as a whole (no result) or return a full result. Whole
// returns the result, or nil after a failed fetch.
func Whole(t testing.TB, fetchAll func(ctx context.Context) (*connectors.Result, error), deadline time.Duration) *connectors.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	res, err := fetchAll(ctx)
	if err != nil {
		if res != nil {
			t.Fatalf("FetchAll returned a result with error %v", err)
		}
		return nil
	}
	if res == nil || !res.Full {
		t.Fatalf("FetchAll returned %+v and no error", res)
	}
	return res
}

// First runs the first fetch of a case, with c, when it needs one: an
// incremental fetch continues from a full one, which touch then changes
// the source for; reuse asks for one before a full fetch too, so that the
// fetch under test reuses its connections. It returns the cursor for the
// fetch under test.
func First(t testing.TB, c connectors.Connector, full, reuse bool, touch func()) string {
	t.Helper()
	if full && !reuse {
		return ""
	}
	first, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	if !full {
		touch()
	}
	return first.Cursor
}
