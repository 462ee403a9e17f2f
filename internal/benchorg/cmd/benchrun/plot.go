package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Plotting needs gnuplot (a developer's tool, not a build or CI
// dependency): apt-get install gnuplot-nox.

var scenarioTitle = map[string]string{
	scSHA: "sha256sum of the file", scImport: "first import", scNoChange: "no change",
	scOnePct: "1 % changed", scFull: "--full", scChanges: "changed people",
}

// targets of issue 11 at a size: scenario → seconds, and peak MB.
var timeTargets = []struct {
	users    int
	scenario string
	seconds  float64
}{
	{100_000, scImport, 6}, {1_000_000, scImport, 120}, {1_000_000, scFull, 30}, {1_000_000, scOnePct, 15},
}

var memTargets = []struct {
	users    int
	scenario string
	mb       float64
}{
	{1_000_000, scImport, 1536}, {1_000_000, scFull, 2048},
}

// plot writes the PNGs of rows into dir with gnuplot.
func plot(dir string, rows []Row) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: gnuplot not found (apt-get install gnuplot-nox): no PNGs")
		return nil
	}
	var b bytes.Buffer
	writeData(&b, rows)
	ns := sizesOf(rows)
	if len(ns) > 0 {
		fmt.Fprintf(&b, "xlo = %d\nxhi = %d\n", min(ns[0], 10_000)/2, max(ns[len(ns)-1], 1_000_000)*2)
	}
	sizePlot(&b, filepath.Join(dir, "cost-vs-size.png"))
	rssPlot(&b, filepath.Join(dir, "rss-vs-size.png"))
	changesPlot(&b, filepath.Join(dir, "cost-vs-changes.png"), rows)
	cmd := exec.Command("gnuplot")
	cmd.Stdin = &b
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gnuplot: %w", err)
	}
	fmt.Fprintln(os.Stderr, "benchrun: wrote", filepath.Join(dir, "*.png"))
	return nil
}

// writeData writes one gnuplot datablock a scenario ($first_import …):
// users, wall seconds, peak MB, changed people.
func writeData(b *bytes.Buffer, rows []Row) {
	for _, sc := range scenarioOrder {
		fmt.Fprintf(b, "$%s << EOD\n", block(sc))
		for _, r := range rows {
			if r.Scenario == sc && r.Exit == 0 {
				fmt.Fprintf(b, "%d %.4f %.1f %d %.4f\n", r.Users, r.Wall, mb(r.MaxRSSKB), r.Changed, r.Wall*1.5)
			}
		}
		fmt.Fprintln(b, "EOD")
	}
	for _, sc := range []string{scImport, scOnePct, scFull} {
		fmt.Fprintf(b, "$time_target_%s << EOD\n", block(sc))
		for _, t := range timeTargets {
			if t.scenario == sc {
				fmt.Fprintf(b, "%d %g\n", t.users, t.seconds)
			}
		}
		fmt.Fprintf(b, "EOD\n$mem_target_%s << EOD\n", block(sc))
		for _, t := range memTargets {
			if t.scenario == sc {
				fmt.Fprintf(b, "%d %g\n", t.users, t.mb)
			}
		}
		fmt.Fprintln(b, "EOD")
	}
}

func block(scenario string) string { return strings.ReplaceAll(scenario, "-", "_") }

const plotStyle = `
set terminal pngcairo size 900,600 font "sans,11"
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key top left box opaque
set logscale xy
set format x "%.0s%c"
set style line 1 lc rgb "#1f77b4" lw 2 pt 7
set style line 2 lc rgb "#d62728" lw 2 pt 5
set style line 3 lc rgb "#2ca02c" lw 2 pt 9
set style line 4 lc rgb "#9467bd" lw 2 pt 11
set style line 5 lc rgb "#7f7f7f" lw 2 pt 13 dt 2
`

func sizePlot(b *bytes.Buffer, out string) {
	scenarioPlot(b, out, "wall time", "wall time (s, log)", 2, "time_target", [2]string{"", ""}, "$sha256sum u 1:5 w l ls 5 t \"1.5 × sha256sum (no-change target)\", \\\n     ")
}

func rssPlot(b *bytes.Buffer, out string) {
	scenarioPlot(b, out, "peak RSS", "peak RSS of the process (MB, log)", 3, "mem_target", [2]string{" (1.5 GB at 1M)", " (2 GB at 1M)"}, "")
}

// scenarioPlot draws column col of the four scenarios against org size,
// with the targets in datablocks named prefix_<scenario>.
func scenarioPlot(b *bytes.Buffer, out, what, ylabel string, col int, prefix string, note [2]string, extra string) {
	b.WriteString(plotStyle)
	fmt.Fprintf(b, "set output %q\nset title \"learnsync run --once, file source: %s against org size\"\n", out, what)
	fmt.Fprintf(b, "set xlabel \"people in the org (groups of 100, 5 memberships a person)\"\nset ylabel %q\nset xrange [xlo:xhi]\n", ylabel)
	fmt.Fprint(b, "plot ")
	for i, sc := range []string{scImport, scNoChange, scOnePct, scFull} {
		fmt.Fprintf(b, "$%s u 1:%d w lp ls %d t %q, \\\n     ", block(sc), col, []int{2, 1, 3, 4}[i], scenarioTitle[sc])
	}
	fmt.Fprint(b, extra)
	if prefix == "time_target" {
		fmt.Fprintf(b, "$%s_one_percent u 1:2 w p ls 3 pt 3 ps 2.5 t \"target: 1 %% changed\", \\\n     ", prefix)
	}
	fmt.Fprintf(b, "$%s_first_import u 1:2 w p ls 2 pt 3 ps 2.5 t \"target: first import%s\", \\\n     ", prefix, note[0])
	fmt.Fprintf(b, "$%s_full u 1:2 w p ls 4 pt 3 ps 2.5 t \"target: --full%s\"\n", prefix, note[1])
}

// changesPlot draws wall time against changed people for each size with
// a changes curve; the no-change run is a dashed line.
func changesPlot(b *bytes.Buffer, out string, rows []Row) {
	b.WriteString(plotStyle)
	fmt.Fprintf(b, `set output %q
set title "learnsync run --once, file source: wall time against changed people"
set xlabel "people changed since the last run (log)"
set ylabel "wall time (s, log)"
set format x "%%.0f"
set key bottom right
set autoscale x
set offsets graph 0.05, graph 0.05, 0, 0
`, out)
	var plots []string
	style := 1
	for _, n := range sizesOf(rows) {
		if _, ok := find(rows, n, scChanges); !ok {
			continue
		}
		var curve []Row
		for _, r := range rows {
			if r.Users == n && (r.Scenario == scChanges || r.Scenario == scOnePct) && r.Exit == 0 {
				curve = append(curve, r)
			}
		}
		slices.SortFunc(curve, func(a, b Row) int { return cmp.Compare(a.Changed, b.Changed) })
		fmt.Fprintf(b, "$curve_%d << EOD\n", n)
		for _, r := range curve {
			fmt.Fprintf(b, "%d %.4f\n", r.Changed, r.Wall)
		}
		fmt.Fprintln(b, "EOD")
		nc, _ := find(rows, n, scNoChange)
		plots = append(plots,
			fmt.Sprintf("$curve_%d u 1:2 w lp ls %d t \"%s people\"", n, style, human(n)),
			fmt.Sprintf("%.4f w l ls %d dt 3 t \"%s people, no change\"", nc.Wall, style, human(n)))
		style++
	}
	if len(plots) == 0 {
		plots = append(plots, "1/0 t \"no changes curve measured\"")
	}
	// Issue 11 at 1M: 100 changed people reconciled in 0.5 s, 1 % (10,000)
	// in 15 s with the file's parse.
	fmt.Fprintln(b, "$changes_targets << EOD\n100 0.5\n10000 15\nEOD")
	plots = append(plots, "$changes_targets u 1:2 w p lc rgb \"#d62728\" pt 3 ps 2.5 lw 2 t \"targets at 1M\"")
	fmt.Fprintf(b, "plot %s\n", strings.Join(plots, ", \\\n     "))
}
