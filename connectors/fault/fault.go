// Package fault breaks the answers of the fake IdP servers in tests. It is
// one fault dialect for oktatest, entratest and onelogintest: one Fault
// type, one Injector that holds the faults and logs the requests, the
// broken answers themselves (a proxy's HTML page, an empty, cut or stalled
// body, a dropped connection, a late answer), a TLS base that the fakes
// embed, and Matrix, which runs a connector's fetch against every kind of
// fault at every endpoint and page position.
//
// A fake keeps only its IdP's data model and error bodies: it names its
// endpoints, gives its real answers and writes its IdP's error for a
// status (Handler).
//
// The package depends on the standard library and connectors only, so
// that tests outside a connector can use it without building that
// connector's SDK.
package fault

import (
	"fmt"
	"net/http"
	"time"
)

// Fault is an answer a fake gives instead of its real one, at any endpoint
// and page position: an error status with the IdP's error body, a proxy's
// HTML page, an empty or recorded body, an answer cut mid-way, a
// connection closed without an answer, or an answer slower than the client
// waits. Delay is waited first (except with Stall); a fault with nothing
// but a Delay gives the real answer late.
type Fault struct {
	// Endpoint is the requests the fault applies to, named as the fake
	// names them for Requests: an exact URL path in oktatest and
	// onelogintest ("/api/v1/users"), in which "{id}" stands for any one
	// segment ("/api/2/roles/{id}/users"); an endpoint name in entratest
	// ("users/delta", "token"); "*" for every request.
	Endpoint string
	// Nth is the request to Endpoint, counted from Inject, that gets the
	// fault first (1 = the next one; 0 means 1). Requests that an earlier
	// injected fault answered are not counted. With a page size of n,
	// request k of a listing is its page k.
	Nth int
	// Times is how many requests in a row get it (0 means 1; negative
	// means every one from the Nth on: a fault that outlasts any retry).
	Times int

	// Status alone answers that status with the IdP's error body for it.
	// With HTML, Empty or Body it is their status (200 if 0); with
	// Truncate or Stall the IdP's error body is the answer cut.
	Status int
	// Code and Message, when set, replace the code and the message of the
	// IdP's error body (Graph's error.code and error.message, Okta's
	// errorCode and errorSummary, OneLogin's message).
	Code, Message string
	// Header is added to the answer (Retry-After, rate-limit headers,
	// Content-Type for a Body).
	Header http.Header
	// Body is sent as is, as the IdP's JSON unless Header sets a
	// Content-Type: "null", a recorded page.
	Body string
	// HTML answers a proxy's HTML error page (Content-Type text/html):
	// what a corporate proxy or a captive portal sends instead of the
	// IdP's answer.
	HTML bool
	// Empty answers the IdP's JSON content type with no body at all, as a
	// proxy that lost the upstream answer may.
	Empty bool
	// Truncate sends the real answer with its body cut in the middle. The
	// body is sent without Content-Length and ends cleanly, so the client
	// sees a complete HTTP answer holding half a JSON document.
	Truncate bool
	// Reset closes the connection without an answer.
	Reset bool
	// Delay is waited before answering; the client may hang up first.
	Delay time.Duration
	// Stall sends the real answer's headers and half its body at once, and
	// the rest after Delay: an answer that starts in time but is slow to
	// finish.
	Stall bool
}

// ProxyPage is the HTML error page a proxy sends for status.
func ProxyPage(status int) string {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if status == http.StatusOK {
		title = "Web Page Blocked"
	}
	return "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><center><h1>" + title +
		"</h1></center>\n<hr><center>corporate-proxy</center>\n</body></html>\n"
}
