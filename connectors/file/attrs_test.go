package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// The rules see a file record's columns: a JSON record's keys with its
// attributes object, a CSV row's columns with those named
// attributes.<name>.
func TestRawAttributes(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"org.json": `{"users": [{"id": "1", "email": "ann@x.test", "department": "Sales",
			"attributes": {"country": "FR", "worker_type": "contractor", "level": 2}}]}`,
		"org.csv": "id,email,department,attributes.country,attributes.worker_type\n1,ann@x.test,Sales,FR,contractor\n",
	}
	sel := &connectors.Selection{}
	sel.Add([]string{"department"})
	sel.Add([]string{"attributes", "country"})
	sel.Add([]string{"attributes", "worker_type"})
	for name, body := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, attrs := range []*connectors.Selection{sel, nil} {
				c, err := New(&Config{Path: path}, connectors.Options{Attrs: attrs})
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.FetchAll(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Users) != 1 || len(res.Problems) != 0 {
					t.Fatalf("users %v, problems %v", res.Users, res.Problems)
				}
				want := `{"attributes":{"country":"FR","worker_type":"contractor"},"department":"Sales"}`
				if attrs == nil {
					want = ""
				}
				if got := res.Users[0].Attrs; got != want {
					t.Errorf("Attrs = %s, want %s", got, want)
				}
			}
		})
	}
}
