package file_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/file"
	"github.com/learnsync/learnsync/internal/benchorg"
)

// FuzzFileJSON reads arbitrary bytes as a JSON source file. A read either
// fails as a whole (an error, no result) or returns a full result that the
// reconciler can trust: every user has an id, clean text and a known status,
// ids are unique, every member is a known user, and every user record of
// the file is either kept or reported.
//
//	go test -run '^$' -fuzz FuzzFileJSON -fuzztime 20s ./connectors/file/
func FuzzFileJSON(f *testing.F) {
	var synth bytes.Buffer
	if err := (benchorg.Org{Users: 6, Groups: 2, MembersPerGroup: 3, Seed: 1}).Write(&synth); err != nil {
		f.Fatal(err)
	}
	fuzzFile(f, ".json", []string{
		synth.String(),
		"",
		"{}",
		"\xef\xbb\xbf{\"users\": [{\"id\": \"u1\"}]}",
		`{"users": null, "groups": null}`,
		`{"groups": [{"id": "g", "name": "G", "members": ["u1", " u1 ", "u2"]}], "users": [{"id": " u1 ", "status": "SKIP"}]}`,
		`{"users": [{"id": "u1", "email": "a\u0000b"}, {"id": "u1\ud800"}, {"id": 7}, [], null]}`,
		`{"users": [{"id": "u1"}], "users": []}`,
		`{"users": [{"id": "u1", "manager": "u1", "status": "inactive"}]} trailing`,
	}, func(t *testing.T, data []byte, res *connectors.Result) {
		// No user record vanishes silently: each is kept or reported.
		var doc struct {
			Users []json.RawMessage `json:"users"`
		}
		if len(data) > 0 && data[0] == '{' && json.Unmarshal(data, &doc) == nil {
			reported := 0
			for _, p := range res.Problems {
				if strings.HasPrefix(p.Object, "users[") {
					reported++
				}
			}
			if kept := len(res.Users); kept+reported != len(doc.Users) {
				t.Errorf("%d user records, %d kept and %d reported", len(doc.Users), kept, reported)
			}
		}
	})
}

// FuzzFileCSV reads arbitrary bytes as a CSV source file, with the same
// guarantees as FuzzFileJSON; a CSV group's id is its name.
//
//	go test -run '^$' -fuzz FuzzFileCSV -fuzztime 20s ./connectors/file/
func FuzzFileCSV(f *testing.F) {
	fuzzFile(f, ".csv", []string{
		"",
		"id\n",
		"id\nu1\n u1 \n",
		"\xef\xbb\xbfid,email,groups\r\nu1,a@example.com,G;H\r\n",
		"ID , Email,STATUS,groups\nu1,a@example.com,Inactive, G ;;G\nu2,b@example.com,skip,G\n",
		"id,groups\nu1,\"a;b\nc\"\nu2,\"open\n",
		"id,id\nu1,u2\n",
		"email\nx@example.com\n",
		"id,email\nu1,a@example.com,extra\nu2\n\"u3\"x,c\n",
	}, func(t *testing.T, _ []byte, res *connectors.Result) {
		for _, g := range res.Groups {
			if g.ExternalID != g.Name {
				t.Errorf("CSV group %q has id %q", g.Name, g.ExternalID)
			}
		}
	})
}

// fuzzFile fuzzes a source file with the extension ext, seeded with the
// testdata files and seeds; check runs on every full result of a read.
func fuzzFile(f *testing.F, ext string, seeds []string, check func(t *testing.T, data []byte, res *connectors.Result)) {
	seedFromTestdata(f, ext)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "org"+ext)
	f.Fuzz(func(t *testing.T, data []byte) {
		if res := fetchFuzzed(t, path, data); res != nil {
			check(t, data, res)
		}
	})
}

// seedFromTestdata adds every testdata file with the extension, with the
// markers the unit tests replace by bytes a text file cannot hold.
func seedFromTestdata(f *testing.F, ext string) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no testdata/*%s: %v", ext, err)
	}
	markers := strings.NewReplacer("BADUTF8", "\xff\xfe@example.com", "CTRL", "Ops\x01")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add([]byte(markers.Replace(string(data))))
	}
}

// fetchFuzzed writes data to path, reads it with FetchAll, checks the
// outcome, and returns the result (nil when the read failed).
func fetchFuzzed(t *testing.T, path string, data []byte) *connectors.Result {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := file.DefaultConfig()
	cfg.Path = path
	conn, err := file.New(cfg, connectors.Options{Name: "hr"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := conn.FetchAll(ctx)
	if err != nil {
		if res != nil {
			t.Fatalf("FetchAll returned a result with error %v", err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "read "+path+": ") || !utf8.ValidString(msg) {
			t.Errorf("error %q does not name the file or is not UTF-8", msg)
		}
		return nil
	}
	if res == nil {
		t.Fatal("FetchAll returned neither a result nor an error")
	}
	checkFullResult(t, res)

	// The same bytes give the same result, and an incremental fetch of the
	// unchanged file is an empty delta that reports the same problems.
	again, err := conn.FetchAll(ctx)
	if err != nil || !reflect.DeepEqual(again, res) {
		t.Fatalf("a second FetchAll of the same bytes differs (err %v)", err)
	}
	delta, err := conn.FetchChanges(ctx, res.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges with the file's own cursor: %v", err)
	}
	if delta.Full || len(delta.Users) != 0 || len(delta.Groups) != 0 || len(delta.Members) != 0 || delta.Cursor != res.Cursor {
		t.Errorf("FetchChanges of an unchanged file = full %v, %d users, %d groups; want an empty delta with the same cursor",
			delta.Full, len(delta.Users), len(delta.Groups))
	}
	if n := min(len(res.Problems), 1000); len(delta.Problems) != n || n > 0 && !reflect.DeepEqual(delta.Problems, res.Problems[:n]) {
		t.Errorf("FetchChanges reports %d problems, FetchAll %d", len(delta.Problems), len(res.Problems))
	}
	return res
}

// checkFullResult checks what the reconciler relies on in a full result.
func checkFullResult(t *testing.T, res *connectors.Result) {
	t.Helper()
	if !res.Full || len(res.DeletedUsers) != 0 || len(res.DeletedGroups) != 0 || len(res.AddedMembers) != 0 || len(res.RemovedMembers) != 0 {
		t.Errorf("FetchAll returned a delta: full %v", res.Full)
	}
	if hash, _, _ := strings.Cut(res.Cursor, "\n"); len(hash) != 64 || !isHex(hash) {
		t.Errorf("cursor %q does not start with a SHA-256", res.Cursor)
	}
	users := make(map[string]bool, len(res.Users))
	for i, u := range res.Users {
		if u.ExternalID == "" {
			t.Errorf("users[%d] has no id: %+v", i, u)
		}
		if users[u.ExternalID] {
			t.Errorf("users[%d]: duplicate id %q", i, u.ExternalID)
		}
		users[u.ExternalID] = true
		if !u.Status.Valid() {
			t.Errorf("user %q: status %q", u.ExternalID, u.Status)
		}
		for name, v := range map[string]string{
			"id": u.ExternalID, "user_name": u.UserName, "email": u.Email, "given_name": u.GivenName,
			"family_name": u.FamilyName, "display_name": u.DisplayName, "title": u.Title, "department": u.Department,
			"employee_number": u.EmployeeNumber, "manager": u.Manager, "cost_center": u.CostCenter,
		} {
			if reason := badText(v, false); reason != "" {
				t.Errorf("user %q: %s %q %s", u.ExternalID, name, v, reason)
			}
		}
	}
	groups := make(map[string]bool, len(res.Groups))
	names := make(map[string]bool, len(res.Groups))
	for i, g := range res.Groups {
		if g.ExternalID == "" || g.Name == "" {
			t.Errorf("groups[%d] has no id or name: %+v", i, g)
		}
		if groups[g.ExternalID] || names[g.Name] {
			t.Errorf("groups[%d]: duplicate id %q or name %q", i, g.ExternalID, g.Name)
		}
		groups[g.ExternalID], names[g.Name] = true, true
		for name, v := range map[string]string{"id": g.ExternalID, "name": g.Name} {
			if reason := badText(v, false); reason != "" {
				t.Errorf("group %q: %s %q %s", g.ExternalID, name, v, reason)
			}
		}
		if reason := badText(g.Description, true); reason != "" {
			t.Errorf("group %q: description %q %s", g.ExternalID, g.Description, reason)
		}
	}
	for gid, ms := range res.Members {
		if !groups[gid] {
			t.Errorf("members of unknown group %q", gid)
		}
		if len(ms) == 0 {
			t.Errorf("group %q has an empty member list", gid)
		}
		seen := make(map[string]bool, len(ms))
		for _, m := range ms {
			if !users[m] {
				t.Errorf("group %q: member %q is not a user", gid, m)
			}
			if seen[m] {
				t.Errorf("group %q: member %q twice", gid, m)
			}
			seen[m] = true
		}
	}
	for _, p := range res.Problems {
		if p.Object == "" || p.Reason == "" || !utf8.ValidString(p.Object) || !utf8.ValidString(p.Reason) {
			t.Errorf("problem %q: %q is empty or not UTF-8", p.Object, p.Reason)
		}
	}
}

// badText says why s is not clean text for the directory: invalid UTF-8,
// U+FFFD (what a decoder makes of invalid bytes), control characters
// (newlines and tabs allowed in multiline text), or surrounding space.
func badText(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if strings.TrimSpace(s) != s {
		return "is not trimmed"
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "holds U+FFFD"
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return "holds a control character"
		}
	}
	return ""
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
