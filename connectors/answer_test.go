package connectors

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAnswerCheck(t *testing.T) {
	check := AnswerCheck{IdP: "Okta", Limit: 1 << 20}
	jsonCT := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	htmlCT := http.Header{"Content-Type": {"text/html"}}
	page := "<html><head><title>Web Page\nBlocked</title></head></html>"
	for _, c := range []struct {
		name   string
		status int
		h      http.Header
		body   string
		want   AnswerKind // 0: usable
		msg    string
	}{
		{"object", 200, jsonCT, `{"a":1}`, 0, ""},
		{"list", 200, jsonCT, ` [1] `, 0, ""},
		{"no content", 204, http.Header{}, "", 0, ""},
		{"idp error", 404, jsonCT, `{"errorCode":"E0000007"}`, 0, ""},
		{"html 200", 200, htmlCT, page, KindNotJSON, `answer is not JSON (text/html), page title "Web Page Blocked": a proxy or firewall between learnsync and Okta`},
		{"html 502", 502, htmlCT, page, KindNotJSON, "HTTP 502 Bad Gateway answer is not JSON"},
		{"no type", 200, http.Header{}, "x", KindNotJSON, "(no Content-Type)"},
		{"error without body", 404, jsonCT, "", KindNotJSON, "not Okta's error answer"},
		{"error cut", 500, jsonCT, `{"errorCo`, KindNotJSON, "not Okta's error answer"},
		{"empty", 200, jsonCT, " \n", KindEmpty, "is empty (HTTP 200 with no body)"},
		{"empty without type", 200, http.Header{}, "", KindEmpty, "empty"},
		{"cut", 200, jsonCT, `[{"id":`, KindTruncated, "the document ends in the middle"},
		{"extra", 200, jsonCT, `{} {}`, KindTruncated, "not valid JSON"},
		{"null", 200, jsonCT, "null", KindNotObject, "not an object or a list (null)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ae := check.Check(c.status, c.h, []byte(c.body))
			if c.want == 0 {
				if ae != nil {
					t.Fatalf("Check = %v, want nil", ae)
				}
				return
			}
			if ae == nil || ae.Kind != c.want || ae.Status != c.status || !strings.Contains(ae.Msg, c.msg) || ae.Terminal {
				t.Fatalf("Check = %+v, want a non-terminal %s error with status %d saying %q", ae, c.want, c.status, c.msg)
			}
		})
	}
	if ae := (AnswerCheck{ObjectOnly: true}).Check(200, jsonCT, []byte("[]")); ae == nil || ae.Kind != KindNotObject {
		t.Errorf("ObjectOnly took a list: %v", ae)
	}
}

func TestAnswerCheckRead(t *testing.T) {
	check := AnswerCheck{Limit: 4 << 20}
	b, err := check.Read(io.NopCloser(strings.NewReader("abc")))
	if err != nil || string(b) != "abc" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	_, err = check.Read(io.NopCloser(strings.NewReader(strings.Repeat("x", 4<<20+1))))
	if ae := AsAnswerError(err); ae == nil || ae.Kind != KindTooLarge || ae.Msg != "answer larger than 4 MiB" {
		t.Fatalf("Read of a large body: %v", err)
	}
	cut := errors.New("cut")
	if _, err := check.Read(io.NopCloser(io.MultiReader(strings.NewReader("a"), errReader{cut}))); !errors.Is(err, cut) {
		t.Fatalf("Read of a failing body: %v, want the read error", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestAnswerErrorTerminalAndRetryable(t *testing.T) {
	net := NetworkFailure("users", errors.New("refused"), "users request: refused")
	if net.Terminal || !net.Retryable() || errors.Is(net, ErrTerminal) || net.Kind != KindNetwork {
		t.Errorf("network failure: %+v", net)
	}
	refused := &AnswerError{Kind: KindStatus, Status: 401, Terminal: true}
	if !errors.Is(refused, ErrTerminal) || refused.Retryable() {
		t.Errorf("refused credentials: %+v", refused)
	}
}

func TestClean(t *testing.T) {
	if got := Clean("a\x00b\n\t c\xff", 100); got != "a b c?" {
		t.Errorf("Clean = %q", got)
	}
	if got := Clean(strings.Repeat("é", 10), 5); got != "éé…" {
		t.Errorf("Clean cut = %q", got)
	}
}
