package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSummaryStages(t *testing.T) {
	var r Row
	parseSummary(&r, `time=x level=INFO msg="run finished" run=2 trigger=once reconcile=incremental result=ok created=0 updated=100 `+
		`problems=0 took=412ms fetch=380ms plan=25ms apply=7ms`+"\n")
	if r.Updated != 100 || r.Reconcile != "incremental" || r.Took != "412ms" || r.Fetch != "380ms" || r.Plan != "25ms" || r.Apply != "7ms" {
		t.Errorf("row = %+v", r)
	}
}

func TestCSVStagesRoundTripAndOldRows(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "new.csv")
	want := Row{Users: 1000, Scenario: scChanges, Changed: 10, Took: "1s", When: "w", Load: "0.1", Fetch: "0.5s", Plan: "0.3s", Apply: "0.2s"}
	if err := writeCSV(p, []Row{want}); err != nil {
		t.Fatal(err)
	}
	got, err := readCSV(p)
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	// A row written before the stage columns: they read as empty.
	old := filepath.Join(dir, "old.csv")
	header := strings.Join(csvHeader[:16], ",")
	if err := os.WriteFile(old, []byte(header+"\n1000,50,5000,changes,10,10,1.000,1.000,0.100,1000,100,0,incremental,1s,w,0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := readCSV(old)
	if err != nil || len(rows) != 1 || rows[0].Took != "1s" || rows[0].Fetch != "" || rows[0].Plan != "" || rows[0].Apply != "" {
		t.Fatalf("old row read as %+v, %v", rows, err)
	}
}
