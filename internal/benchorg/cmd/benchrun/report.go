package main

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

var csvHeader = []string{"users", "groups", "memberships", "scenario", "changed", "updated",
	"wall_s", "user_s", "sys_s", "maxrss_kb", "file_bytes", "exit", "reconcile", "took", "when", "load1",
	"fetch", "plan", "apply"}

var scenarioOrder = []string{scSHA, scImport, scNoChange, scOnePct, scFull, scChanges}

func writeCSV(path string, rows []Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(csvHeader)
	for _, r := range rows {
		w.Write([]string{itoa(r.Users), itoa(r.Groups), itoa(r.Memberships), r.Scenario, itoa(r.Changed), itoa(r.Updated),
			ftoa(r.Wall), ftoa(r.User), ftoa(r.Sys), strconv.FormatInt(r.MaxRSSKB, 10), strconv.FormatInt(r.FileBytes, 10),
			itoa(r.Exit), r.Reconcile, r.Took, r.When, r.Load, r.Fetch, r.Plan, r.Apply})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
func atof(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
func atoi(s string) int     { v, _ := strconv.Atoi(s); return v }
func atoi64(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
func mb(kb int64) float64   { return float64(kb) / 1024 }
func secs(v float64) string { return strconv.FormatFloat(v, 'f', precision(v), 64) + " s" }
func precision(v float64) int {
	switch {
	case v < 1:
		return 3
	case v < 10:
		return 2
	}
	return 1
}

func readCSV(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var rows []Row
	for i, r := range recs {
		if i == 0 || len(r) < 15 {
			continue
		}
		r = append(r, make([]string, len(csvHeader)-len(r))...)
		rows = append(rows, Row{Users: atoi(r[0]), Groups: atoi(r[1]), Memberships: atoi(r[2]), Scenario: r[3],
			Changed: atoi(r[4]), Updated: atoi(r[5]), Wall: atof(r[6]), User: atof(r[7]), Sys: atof(r[8]),
			MaxRSSKB: atoi64(r[9]), FileBytes: atoi64(r[10]), Exit: atoi(r[11]), Reconcile: r[12], Took: r[13], When: r[14], Load: r[15],
			Fetch: r[16], Plan: r[17], Apply: r[18]})
	}
	return rows, nil
}

// mergeRows replaces the old rows of every size measured anew.
func mergeRows(old, fresh []Row) []Row {
	measured := map[int]bool{}
	for _, r := range fresh {
		measured[r.Users] = true
	}
	var out []Row
	for _, r := range old {
		if !measured[r.Users] {
			out = append(out, r)
		}
	}
	out = append(out, fresh...)
	slices.SortStableFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Users, b.Users),
			cmp.Compare(slices.Index(scenarioOrder, a.Scenario), slices.Index(scenarioOrder, b.Scenario)),
			cmp.Compare(a.Changed, b.Changed))
	})
	return out
}

func sizesOf(rows []Row) []int {
	var ns []int
	for _, r := range rows {
		if !slices.Contains(ns, r.Users) {
			ns = append(ns, r.Users)
		}
	}
	slices.Sort(ns)
	return ns
}

func find(rows []Row, n int, scenario string) (Row, bool) {
	for _, r := range rows {
		if r.Users == n && r.Scenario == scenario {
			return r, true
		}
	}
	return Row{}, false
}

// cell formats one run: wall time, peak RSS, and the kind of reconcile.
func cell(r Row, ok bool, sha float64) string {
	if !ok {
		return "—"
	}
	s := secs(r.Wall)
	if r.Scenario != scSHA {
		s += fmt.Sprintf(" (CPU %s), %.0f MB", strings.TrimSuffix(secs(r.User+r.Sys), " s"), mb(r.MaxRSSKB))
	}
	if r.Scenario == scNoChange && sha > 0 {
		s += fmt.Sprintf(" (%.1f× sha)", r.Wall/sha)
	}
	if r.Reconcile != "" {
		s += " · " + r.Reconcile
	}
	if r.Exit != 0 {
		s += fmt.Sprintf(" **exit %d**", r.Exit)
	}
	return s
}

// printTables writes the size table and the changes table in markdown.
func printTables(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| org (people / groups / memberships) | file | `sha256sum` | first import | no change | 1 % changed | `--full` |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, n := range sizesOf(rows) {
		sha, _ := find(rows, n, scSHA)
		any, _ := find(rows, n, scImport)
		if any.Users == 0 {
			any = sha
		}
		fmt.Fprintf(w, "| %s / %s / %s | %.0f MB |", human(n), human(any.Groups), human(any.Memberships), float64(sha.FileBytes)/1e6)
		for _, sc := range scenarioOrder[:5] {
			r, ok := find(rows, n, sc)
			fmt.Fprintf(w, " %s |", cell(r, ok, sha.Wall))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| org | changed people (asked) | updated (run) | wall | CPU (user+sys) | peak RSS | reconcile | run's `took` | fetch | plan | apply | load |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	var curve []Row
	for _, r := range rows {
		if r.Scenario == scChanges || r.Scenario == scOnePct || r.Scenario == scNoChange {
			curve = append(curve, r)
		}
	}
	slices.SortStableFunc(curve, func(a, b Row) int { return cmp.Or(cmp.Compare(a.Users, b.Users), cmp.Compare(a.Changed, b.Changed)) })
	for _, r := range curve {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f MB | %s | %s | %s | %s | %s | %s |\n", human(r.Users), human(r.Changed), human(r.Updated),
			secs(r.Wall), secs(r.User+r.Sys), mb(r.MaxRSSKB), cmp.Or(r.Reconcile, "—"), cmp.Or(r.Took, "—"),
			cmp.Or(r.Fetch, "—"), cmp.Or(r.Plan, "—"), cmp.Or(r.Apply, "—"), cmp.Or(r.Load, "—"))
	}
}

// human writes 100000 as 100k and 1000000 as 1M.
func human(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return itoa(n/1000) + "k"
	}
	return itoa(n)
}
