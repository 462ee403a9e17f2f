package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// fetch reads path with a connector built the way the registry builds it.
func fetch(t *testing.T, path string) (*connectors.Result, error) {
	t.Helper()
	cfg := Type.NewConfig().(*Config)
	cfg.Path = path
	if errs := cfg.Validate(connectors.Options{}); len(errs) > 0 {
		t.Fatalf("Validate(%s) = %v", path, errs)
	}
	c, err := Type.New(cfg, connectors.Options{Name: "hr"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c.FetchAll(context.Background())
}

func mustFetch(t *testing.T, path string) *connectors.Result {
	t.Helper()
	res, err := fetch(t, path)
	if err != nil {
		t.Fatalf("FetchAll(%s): %v", path, err)
	}
	return res
}

// fetchFails checks that reading path fails with no result and an error
// containing every one of wants.
func fetchFails(t *testing.T, path string, wants ...string) {
	t.Helper()
	res, err := fetch(t, path)
	if err == nil {
		t.Fatalf("FetchAll(%s) = %d users, %d problems, want an error", path, len(res.Users), len(res.Problems))
	}
	if res != nil {
		t.Errorf("FetchAll(%s) returned a result together with error %v", path, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// writeTemp writes data to name in a new temporary directory.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p, write := rewritable(t, name)
	write(string(data))
	return p
}

// rewritable returns the path of name in a new temporary directory and a
// function that (re)writes that file.
func rewritable(t *testing.T, name string) (string, func(string)) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	return p, func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fromTestdata copies a testdata file to a temporary one, replacing markers
// with bytes that are awkward to keep in a text file.
func fromTestdata(t *testing.T, name string, oldnew ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(oldnew...).Replace(string(data))
	return writeTemp(t, name, []byte(s))
}

func problems(res *connectors.Result) []string {
	var out []string
	for _, p := range res.Problems {
		out = append(out, p.String())
	}
	return out
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// ada is the first user of testdata/ok.json and ok.csv.
var ada = connectors.User{ExternalID: "u1", UserName: "ada", Email: "ada@example.com", GivenName: "Ada", FamilyName: "Lovelace",
	DisplayName: "Ada Lovelace", Title: "Engineer", Department: "Engineering", EmployeeNumber: "E1",
	CostCenter: "CC-1", Status: connectors.StatusActive}

func TestFetchJSON(t *testing.T) {
	res := mustFetch(t, "testdata/ok.json")
	if !res.Full {
		t.Error("Full = false, want a full result")
	}
	if len(res.Problems) > 0 {
		t.Errorf("Problems = %v", problems(res))
	}
	wantUsers := []connectors.User{
		ada,
		{ExternalID: "u2", UserName: "grace", Email: "grace@example.com", GivenName: "Grace", FamilyName: "Hopper",
			Status: connectors.StatusActive},
		{ExternalID: "u3", UserName: "alan", Email: "alan@example.com", Status: connectors.StatusInactive},
		// Duplicate emails are kept: matching is the reconciler's business.
		{ExternalID: "u4", UserName: "edsger", Email: "ADA@example.com", Status: connectors.StatusSkip},
		{ExternalID: "u5", UserName: "barbara", Email: "ada@example.com", Status: connectors.StatusActive},
	}
	if !reflect.DeepEqual(res.Users, wantUsers) {
		t.Errorf("Users:\n got  %+v\n want %+v", res.Users, wantUsers)
	}
	wantGroups := []connectors.Group{
		{ExternalID: "g1", Name: "Engineering", Description: "Builds things\nand fixes them"},
		{ExternalID: "g2", Name: "Empty"},
		{ExternalID: "g3", Name: "No members"},
	}
	if !reflect.DeepEqual(res.Groups, wantGroups) {
		t.Errorf("Groups:\n got  %+v\n want %+v", res.Groups, wantGroups)
	}
	wantMembers := map[string][]string{"g1": {"u1", "u3", "u5"}}
	if !reflect.DeepEqual(res.Members, wantMembers) {
		t.Errorf("Members = %v, want %v", res.Members, wantMembers)
	}
	data, _ := os.ReadFile("testdata/ok.json")
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]); res.Cursor != want {
		t.Errorf("Cursor = %q, want the file's sha256 %q", res.Cursor, want)
	}
	if len(res.DeletedUsers)+len(res.DeletedGroups)+len(res.AddedMembers)+len(res.RemovedMembers) > 0 {
		t.Errorf("a full result has delta fields: %+v", res)
	}
}

func TestFetchJSONGroupsBeforeUsers(t *testing.T) {
	res := mustFetch(t, "testdata/groups_first.json")
	if len(res.Problems) > 0 {
		t.Errorf("Problems = %v", problems(res))
	}
	// Sorted, whatever the file's order: the mirror keeps the list as it is.
	if got, want := res.Members["g1"], []string{"u1", "u2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("members of g1 = %q, want %q", got, want)
	}
}

func TestFetchJSONBadRecords(t *testing.T) {
	p := fromTestdata(t, "bad_records.json", "BADUTF8", "\xff\xfe@example.com")
	res := mustFetch(t, p)
	sameStrings(t, "problems", problems(res), []string{
		`users[1]: missing id`,
		`users[2]: id "u0": duplicate id (first at users[0])`,
		`users[3]: id "u3": given_name: contains a control character`,
		`users[4]: id "u4": email: is not valid UTF-8`,
		`users[5]: id "u5": status "terminated": want active, inactive or skip`,
		`users[6]: id: want a string, got number`,
		`users[7]: id "u7": email: want a string, got array`,
		`users[8]: want an object, got string`,
		`groups[1]: missing id`,
		`groups[2]: id "g2": missing name`,
		`groups[3]: id "g0": duplicate id (first at groups[0])`,
		`groups[4]: id "g4": duplicate name "Good" (first at groups[0])`,
		`groups[5]: id "g5": members: want an array, got string`,
		`groups[6]: id "g6": name: contains a control character`,
		// u3 and u5 were skipped above: only the truly unknown id is reported.
		`groups[0]: id "g0": dropped 1 member with an unknown user id: "nobody"`,
	})
	var ids []string
	for _, u := range res.Users {
		ids = append(ids, u.ExternalID)
	}
	sameStrings(t, "users", ids, []string{"u0", "u9"})
	if res.Users[0].Email != "ok@example.com" {
		t.Errorf("the first u0 must win, got %q", res.Users[0].Email)
	}
	if len(res.Groups) != 1 || res.Groups[0].ExternalID != "g0" {
		t.Errorf("groups = %+v, want only g0", res.Groups)
	}
	sameStrings(t, "members of g0", res.Members["g0"], []string{"u0", "u9"})
}

func TestFetchJSONManyUnknownMembers(t *testing.T) {
	p := writeTemp(t, "org.json", []byte(`{"users":[{"id":"a"}],"groups":[{"id":"g","name":"G",
		"members":["a","x1","x2","x3","x4","x5","x6","x7"]}]}`))
	res := mustFetch(t, p)
	sameStrings(t, "problems", problems(res), []string{
		`groups[0]: id "g": dropped 7 members with unknown user ids: "x1", "x2", "x3", "x4", "x5" and 2 more`,
	})
	sameStrings(t, "members", res.Members["g"], []string{"a"})
}

// failCase is a source file whose read must fail with an error that says
// every one of want.
type failCase struct {
	name string
	path string
	data string // used instead of path when set
	want []string
}

// fetchFailures reads each case, written to a file named name when it
// has data.
func fetchFailures(t *testing.T, name string, cases []failCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			if p == "" {
				p = writeTemp(t, name, []byte(tc.data))
			}
			fetchFails(t, p, tc.want...)
		})
	}
}

func TestFetchJSONFails(t *testing.T) {
	fetchFailures(t, "org.json", []failCase{
		{name: "truncated", path: "testdata/truncated.json",
			want: []string{"line 4, column 33", "unexpected end of file"}},
		{name: "syntax", path: "testdata/syntax.json",
			want: []string{"line 7, column 48", "invalid character"}},
		{name: "unknown field", path: "testdata/unknown_field.json",
			want: []string{"line 4, column 5", `users[1]: unknown field "emial"`}},
		{name: "empty", data: "", want: []string{"the file is empty"}},
		{name: "cut after users", data: `{"users": [{"id": "u1"}]`, want: []string{"line 1, column 25", "unexpected end of file"}},
		{name: "not an object", data: `[{"id": "u1"}]`, want: []string{"must hold one JSON object"}},
		{name: "unknown key", data: "{\"users\": [],\n \"people\": []}", want: []string{"line 2, column 2", `unknown key "people"`}},
		{name: "users twice", data: `{"users": [], "users": []}`, want: []string{`"users" appears twice`}},
		{name: "users not array", data: `{"users": {"id": "u1"}}`, want: []string{"users: must be an array"}},
		{name: "trailing data", data: "{\"users\": []}\n{}", want: []string{"line 2, column 1", "data after the JSON object"}},
		{name: "trailing garbage", data: `{"users": []} x`, want: []string{"invalid JSON"}},
	})
}

func TestFetchJSONNullLists(t *testing.T) {
	res := mustFetch(t, writeTemp(t, "org.json", []byte(`{"users": null, "groups": null}`)))
	if len(res.Users) != 0 || len(res.Groups) != 0 || len(res.Problems) != 0 {
		t.Errorf("got %+v, want an empty snapshot", res)
	}
}

func TestFetchCSV(t *testing.T) {
	res := mustFetch(t, "testdata/ok.csv")
	if len(res.Problems) > 0 {
		t.Errorf("Problems = %v", problems(res))
	}
	wantUsers := []connectors.User{
		ada,
		{ExternalID: "u2", UserName: "grace", Email: "grace@example.com", GivenName: "Grace", FamilyName: "Hopper",
			DisplayName: "Grace Hopper", Title: "Rear Admiral, retired", Department: "Navy", EmployeeNumber: "E2",
			Manager: "u1", CostCenter: "CC-2", Status: connectors.StatusActive},
		{ExternalID: "u3", UserName: "alan", Email: "alan@example.com", GivenName: "Alan", FamilyName: "Turing",
			DisplayName: "Alan Turing", Title: `Says "hello"`, Department: "Maths", EmployeeNumber: "E3",
			Manager: "u1", CostCenter: "CC-3", Status: connectors.StatusInactive},
		{ExternalID: "u4", UserName: "edsger", Email: "ada@example.com", GivenName: "Edsger", FamilyName: "Dijkstra",
			Status: connectors.StatusSkip},
	}
	if !reflect.DeepEqual(res.Users, wantUsers) {
		t.Errorf("Users:\n got  %+v\n want %+v", res.Users, wantUsers)
	}
	wantGroups := []connectors.Group{
		{ExternalID: "Engineering", Name: "Engineering"},
		{ExternalID: "Learning Users", Name: "Learning Users"},
	}
	if !reflect.DeepEqual(res.Groups, wantGroups) {
		t.Errorf("Groups = %+v, want %+v", res.Groups, wantGroups)
	}
	wantMembers := map[string][]string{
		"Engineering":    {"u1", "u2"},
		"Learning Users": {"u1", "u2", "u4"},
	}
	if !reflect.DeepEqual(res.Members, wantMembers) {
		t.Errorf("Members = %v, want %v", res.Members, wantMembers)
	}
}

func TestFetchCSVBOM(t *testing.T) {
	data, err := os.ReadFile("testdata/ok.csv")
	if err != nil {
		t.Fatal(err)
	}
	withBOM := append([]byte("\xef\xbb\xbf"), data...)
	res := mustFetch(t, writeTemp(t, "org.csv", withBOM))
	plain := mustFetch(t, "testdata/ok.csv")
	if !reflect.DeepEqual(res.Users, plain.Users) || len(res.Problems) > 0 {
		t.Errorf("with a BOM: users %+v, problems %v", res.Users, problems(res))
	}
	if res.Cursor == plain.Cursor {
		t.Error("the cursor must hash the file's bytes, BOM included")
	}
	// JSON files from Windows tools may carry one too.
	if _, err := fetch(t, writeTemp(t, "org.json", []byte("\xef\xbb\xbf{\"users\": []}"))); err != nil {
		t.Errorf("JSON with a BOM: %v", err)
	}
}

func TestFetchCSVHeaderCaseAndOrder(t *testing.T) {
	res := mustFetch(t, "testdata/reordered.csv")
	if len(res.Problems) > 0 {
		t.Errorf("Problems = %v", problems(res))
	}
	if len(res.Users) != 2 || res.Users[1].ExternalID != "u2" || res.Users[1].Email != "b@example.com" {
		t.Errorf("Users = %+v", res.Users)
	}
	sameStrings(t, "members of G", res.Members["G"], []string{"u1"})
}

func TestFetchCSVBadRows(t *testing.T) {
	p := fromTestdata(t, "bad_rows.csv", "BADUTF8", "\xff\xfe", "CTRL", "Ops\x01")
	res := mustFetch(t, p)
	sameStrings(t, "problems", problems(res), []string{
		`line 3: has 2 fields, the header has 4`,
		`line 4: missing id`,
		`line 5: id "u1": duplicate id (first at line 2)`,
		`line 6: id "u5": status "retired": want active, inactive or skip`,
		`line 7: column 7: bare " in non-quoted-field`,
		`line 8: id "u7": email: is not valid UTF-8`,
		`line 9: id "u8": groups: contains a control character`,
		`line 11: has 5 fields, the header has 4`,
	})
	var ids []string
	for _, u := range res.Users {
		ids = append(ids, u.ExternalID+"/"+string(u.Status))
	}
	sameStrings(t, "users", ids, []string{"u1/active", "u9/inactive"})
	sameStrings(t, "members of Good", res.Members["Good"], []string{"u1", "u9"})
	if res.Users[0].Email != "one@example.com" {
		t.Errorf("the first u1 must win, got %q", res.Users[0].Email)
	}
}

func TestFetchCSVFails(t *testing.T) {
	fetchFailures(t, "org.csv", []failCase{
		{name: "unknown column", path: "testdata/unknown_column.csv",
			want: []string{`line 1: unknown column "emial"`, "columns are id, user_name"}},
		{name: "no id column", data: "email,status\na@example.com,active\n", want: []string{"no id column"}},
		{name: "column twice", data: "id,email,Email\n", want: []string{`column "email" appears twice`}},
		{name: "unnamed column", data: "id,email,\n", want: []string{"column 3 has no name"}},
		{name: "runaway quote", path: "testdata/runaway_quote.csv",
			want: []string{"line 2: quoted field runs on to line"}},
	})
}

func TestFetchCSVEmpty(t *testing.T) {
	for name, data := range map[string]string{
		"empty":       "",
		"header only": "id,email,groups\n",
		"BOM only":    "\xef\xbb\xbf",
	} {
		t.Run(name, func(t *testing.T) {
			res := mustFetch(t, writeTemp(t, "org.csv", []byte(data)))
			if !res.Full || len(res.Users) != 0 || len(res.Groups) != 0 || len(res.Problems) != 0 {
				t.Errorf("got %+v, want an empty full snapshot", res)
			}
		})
	}
}

func TestFetchMissingFile(t *testing.T) {
	c, err := New(&Config{Path: "gone.json"}, connectors.Options{BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.FetchAll(context.Background())
	if err == nil || res != nil {
		t.Fatalf("FetchAll = %v, %v; want an error and no result", res, err)
	}
	if !strings.Contains(err.Error(), "file not found") {
		t.Errorf("error %q does not say the file is not found", err)
	}
}

func TestFetchCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := New(&Config{Path: "testdata/ok.json"}, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FetchAll(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("FetchAll = %v, want context.Canceled", err)
	}
}

func TestCursor(t *testing.T) {
	p, write := rewritable(t, "org.json")
	write(`{"users": [{"id": "u1"}]}`)
	a := mustFetch(t, p)
	b := mustFetch(t, p)
	write(`{"users": [{"id": "u1", "title": "Boss"}]}`)
	c := mustFetch(t, p)
	if a.Cursor == "" || a.Cursor != b.Cursor {
		t.Errorf("an unchanged file gave cursors %q and %q", a.Cursor, b.Cursor)
	}
	if c.Cursor == a.Cursor {
		t.Error("a changed file kept its cursor")
	}
}

func TestFetchChangesSkipsAnUnchangedFile(t *testing.T) {
	path, write := rewritable(t, "org.csv")
	write("id,email,status\n1,a@example.com,active\n2,b@example.com,sometimes\n")
	c, err := New(&Config{Path: path}, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := c.FetchAll(context.Background())
	if err != nil || len(full.Problems) != 1 {
		t.Fatalf("FetchAll = %+v, %v; want one problem", full, err)
	}
	same, err := c.FetchChanges(context.Background(), full.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if same.Full || len(same.Users) != 0 || same.Cursor != full.Cursor {
		t.Errorf("unchanged file: %+v, want an empty delta with the same cursor", same)
	}
	if len(same.Problems) != 1 || same.Problems[0] != full.Problems[0] {
		t.Errorf("unchanged file reports problems %v, want %v again", same.Problems, full.Problems)
	}
	write("id,email,status\n1,a@example.com,inactive\n")
	changed, err := c.FetchChanges(context.Background(), full.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !changed.Full || len(changed.Users) != 1 || changed.Users[0].Status != connectors.StatusInactive || changed.Cursor == full.Cursor {
		t.Errorf("changed file: %+v, want a full result", changed)
	}
	if _, err := c.FetchChanges(context.Background(), "garbage"); err != nil {
		t.Errorf("unknown cursor: %v, want a full fetch", err)
	}
	os.Remove(path)
	if _, err := c.FetchChanges(context.Background(), changed.Cursor); err == nil {
		t.Error("a missing file must fail the fetch")
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]connectors.Status{
		"":           connectors.StatusActive,
		"active":     connectors.StatusActive,
		" Active ":   connectors.StatusActive,
		"ACTIVE":     connectors.StatusActive,
		"inactive":   connectors.StatusInactive,
		"InActive":   connectors.StatusInactive,
		"skip":       connectors.StatusSkip,
		"Skip":       connectors.StatusSkip,
		"suspended":  "",
		"deleted":    "",
		"activ":      "",
		"active,":    "",
		"inactive\n": connectors.StatusInactive,
	} {
		got, ok := parseStatus(in)
		if ok != (want != "") || got != want {
			t.Errorf("parseStatus(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		in        string
		multiline bool
		want      string
	}{
		{"Ada Lovelace", false, ""},
		{"Zoë Ñúñez 東京", false, ""},
		{"a\tb", false, "contains a control character"},
		{"a\tb\nc", true, ""},
		{"a\x00b", true, "contains a control character"},
		{"a\x7fb", false, "contains a control character"},
		{"a\u0085b", false, "contains a control character"},
		{"a\xffb", false, "is not valid UTF-8"},
		{"a\ufffdb", false, "is not valid UTF-8"},
	} {
		if got := checkText(tc.in, tc.multiline); got != tc.want {
			t.Errorf("checkText(%q, %v) = %q, want %q", tc.in, tc.multiline, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "org.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "org.txt"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "dir.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		base string
		want []string
	}{
		{name: "ok relative to BaseDir", cfg: Config{Path: "org.json"}, base: base},
		{name: "ok absolute", cfg: Config{Path: filepath.Join(base, "org.json")}},
		{name: "explicit format", cfg: Config{Path: "org.txt", Format: "JSON"}, base: base},
		{name: "required", cfg: Config{}, want: []string{"path: required"}},
		{name: "blank", cfg: Config{Path: "  "}, want: []string{"path: required"}},
		// Relative to BaseDir, not to the working directory, where it exists.
		{name: "not found", cfg: Config{Path: "testdata/ok.json"}, base: base, want: []string{"path: file not found"}},
		{name: "directory", cfg: Config{Path: "dir.json"}, base: base, want: []string{"path: is a directory, not a file"}},
		{name: "bad format", cfg: Config{Path: "org.json", Format: "xml"}, base: base, want: []string{"format: must be json or csv"}},
		{name: "no extension", cfg: Config{Path: "org.txt"}, base: base,
			want: []string{`format: cannot infer the format from "org.txt": set format to json or csv`}},
		{name: "everything", cfg: Config{Format: "yaml"}, want: []string{"path: required", "format: must be json or csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range tc.cfg.Validate(connectors.Options{BaseDir: tc.base}) {
				var fe *connectors.FieldError
				if !errors.As(err, &fe) {
					t.Errorf("%v is not a *connectors.FieldError", err)
				}
				got = append(got, err.Error())
			}
			sameStrings(t, "errors", got, tc.want)
		})
	}
}

func TestNew(t *testing.T) {
	c, err := New(&Config{Path: "data/org.csv"}, connectors.Options{BaseDir: "/etc/learnsync"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != "/etc/learnsync/data/org.csv" || c.format != FormatCSV {
		t.Errorf("path %q, format %q", c.Path(), c.format)
	}
	if _, err := Type.New(otherConfig{}, connectors.Options{}); err == nil {
		t.Error("Type.New accepted a config of another type")
	}
	if _, err := New(&Config{Path: "org.xml"}, connectors.Options{}); err == nil {
		t.Error("New accepted a file of unknown format")
	}
}

type otherConfig struct{}

func (otherConfig) Validate(connectors.Options) []error { return nil }

// The bundled examples are what config.example.yaml reads: they must be
// clean.
func TestExamples(t *testing.T) {
	for _, p := range []string{"../../examples/org.json", "../../examples/org.csv"} {
		res := mustFetch(t, p)
		if len(res.Problems) > 0 {
			t.Errorf("%s: problems %v", p, problems(res))
		}
		if len(res.Users) == 0 {
			t.Errorf("%s: no users", p)
		}
	}
	res := mustFetch(t, "../../examples/org.json")
	var names []string
	for _, g := range res.Groups {
		names = append(names, g.Name)
	}
	sameStrings(t, "example groups", names, []string{"Engineering", "Sales", "Learning Users", "Managers"})
}

// checkHashes fails unless every user and group of res carries the hash of
// what the result holds (cleaned, deduplicated, members resolved).
func checkHashes(t *testing.T, res *connectors.Result) {
	t.Helper()
	if len(res.UserHashes) != len(res.Users) || len(res.GroupHashes) != len(res.Groups) {
		t.Fatalf("%d user hashes for %d users, %d group hashes for %d groups",
			len(res.UserHashes), len(res.Users), len(res.GroupHashes), len(res.Groups))
	}
	for i := range res.Users {
		if want := connectors.UserHash(&res.Users[i]); res.UserHashes[i] != want {
			t.Errorf("user %s: hash %d, want %d", res.Users[i].ExternalID, res.UserHashes[i], want)
		}
	}
	for i, g := range res.Groups {
		if want := connectors.GroupHash(&g, slices.Values(res.Members[g.ExternalID])); res.GroupHashes[i] != want {
			t.Errorf("group %s: hash %d, want %d", g.ExternalID, res.GroupHashes[i], want)
		}
	}
}

// A full read hashes the records as it reads them, and says that it reads
// the whole file (connectors.ReadingWhole) unless the cursor shows that
// nothing changed.
func TestFetchHashesAndReadingWhole(t *testing.T) {
	for _, name := range []string{"bad_records.json", "ok.json", "ok.csv", "bad_rows.csv"} {
		t.Run(name, func(t *testing.T) {
			res := mustFetch(t, fromTestdata(t, name, "BADUTF8", "\xff\xfe@example.com"))
			if len(res.Users) == 0 {
				t.Fatal("no users: nothing checked")
			}
			checkHashes(t, res)
		})
	}
	path, write := rewritable(t, "org.json")
	write(`{"users":[{"id":"a","email":"a@x.io"},{"id":"b","email":"b@x.io"}],"groups":[{"id":"g","name":"G","members":["b","a","b"]}]}`)
	c, err := New(&Config{Path: path}, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	ctx := connectors.WithReadingWhole(context.Background(), func() { calls++ })
	full, err := c.FetchAll(ctx)
	if err != nil || calls != 1 {
		t.Fatalf("FetchAll: %v, ReadingWhole called %d times, want once", err, calls)
	}
	checkHashes(t, full)
	if _, err := c.FetchChanges(ctx, full.Cursor); err != nil || calls != 1 {
		t.Errorf("unchanged file: %v, ReadingWhole called %d times in all, want still once", err, calls)
	}
	write(`{"users":[{"id":"a","email":"a@x.io","title":"Boss"}]}`)
	changed, err := c.FetchChanges(ctx, full.Cursor)
	if err != nil || calls != 2 || !changed.Full {
		t.Errorf("changed file: %v, full %v, ReadingWhole called %d times in all, want twice", err, changed != nil && changed.Full, calls)
	}
	if changed != nil && changed.UserHashes[0] == full.UserHashes[0] {
		t.Error("a changed user kept its hash")
	}
}
