package directory

import (
	"fmt"
	"slices"
	"strings"
)

// touched collects the people whose groups or seats, and the groups whose
// members, a commit changes, so that the read view's meta.lastModified
// (the later of updated_at and touched_at) moves for them. Rows the same
// commit creates need no stamp: their updated_at is the commit's time.
type touched struct {
	people, groups map[int64]bool
	newGroups      map[int64]bool
	// firstNew is the id of the first person the commit creates (0: none
	// yet): the commit gives its new people the ids from there on, in
	// turn, so that a first import needs no set of a million ids.
	firstNew int64
}

func newTouched() *touched {
	return &touched{people: map[int64]bool{}, groups: map[int64]bool{}, newGroups: map[int64]bool{}}
}

// created notes that the commit creates people from id on.
func (t *touched) created(id int64) {
	if t.firstNew == 0 {
		t.firstNew = id
	}
}

func (t *touched) person(id int64) {
	if t.firstNew == 0 || id < t.firstNew {
		t.people[id] = true
	}
}

func (t *touched) group(id int64) {
	if !t.newGroups[id] {
		t.groups[id] = true
	}
}

// stamp sets touched_at to the commit's time on the rows touched, a batch
// of ids a statement; touched_at only moves forward.
func (w *writer) stamp() error {
	for _, table := range []struct {
		name string
		ids  map[int64]bool
	}{{"people", w.touched.people}, {"groups", w.touched.groups}} {
		ids := make([]int64, 0, len(table.ids))
		for id := range table.ids {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for chunk := range slices.Chunk(ids, batchRows) {
			args := make([]any, 0, len(chunk)+2)
			args = append(args, w.now, w.now)
			for _, id := range chunk {
				args = append(args, id)
			}
			q := `UPDATE ` + table.name + ` SET touched_at = ? WHERE (touched_at IS NULL OR touched_at < ?) AND id IN (?` +
				strings.Repeat(", ?", len(chunk)-1) + `)`
			if _, err := w.exec(q, args...); err != nil {
				return fmt.Errorf("stamp %s: %w", table.name, err)
			}
		}
	}
	return nil
}
