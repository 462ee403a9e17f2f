// Package httplog keeps what an HTTP handler answered, for its log line and
// its metrics. It uses only the standard library, so the fake IdP servers
// can use it without pulling in anything else.
package httplog

import "net/http"

// StatusWriter is a ResponseWriter that remembers the status it sent.
type StatusWriter struct {
	http.ResponseWriter
	// Status is the status sent, 0 before the answer starts. A handler
	// may set it itself (e.g. -1 for a connection closed without an
	// answer).
	Status int
}

// WriteHeader sends and remembers the status.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends body bytes; a body without a status is a 200.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer (to hijack
// or flush it).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
