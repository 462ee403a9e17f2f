package file

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/learnsync/learnsync/connectors"
)

// CSV columns, in the order they are listed in errors.
const (
	colID = iota
	colUserName
	colEmail
	colGivenName
	colFamilyName
	colDisplayName
	colTitle
	colDepartment
	colEmployeeNumber
	colManager
	colCostCenter
	colStatus
	colGroups
	numCols
)

var csvColumnNames = [numCols]string{
	"id", "user_name", "email", "given_name", "family_name", "display_name", "title",
	"department", "employee_number", "manager", "cost_center", "status", "groups",
}

// Columns named attributes.<name> hold a user's own attributes for the
// rules (`user.attributes.<name>`); they map to nothing else.
const (
	attrPrefix = "attributes."
	colAttr    = -2
)

// csvRaw is a row as the rules see it: each column by its name, those of
// attributes.<name> in an attributes object.
func csvRaw(header []string, cols []int, rec []string) map[string]any {
	m := make(map[string]any, len(rec))
	attrs := map[string]any{}
	for i, v := range rec {
		if i >= len(cols) {
			break
		}
		if cols[i] == colAttr {
			attrs[strings.TrimPrefix(strings.TrimSpace(header[i]), attrPrefix)] = v
			continue
		}
		m[csvColumnNames[cols[i]]] = v
	}
	m["attributes"] = attrs
	return m
}

// groupSep separates group names in the groups column.
const groupSep = ";"

// readCSV reads a header row and one user per row. The groups column names
// the user's groups; a group's external id is its name.
func (s *snapshot) readCSV(ctx context.Context, r io.Reader, hooks connectors.Hooks) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil // an empty file is an empty snapshot
	}
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	header = slices.Clone(header) // the reader reuses its record
	cols, err := csvHeader(header)
	if err != nil {
		return err
	}

	var u connectors.User
	for n := 0; ; n++ {
		if n%progressEvery == 0 && n > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			hooks.OnProgress(connectors.Progress{Users: len(s.users), Groups: len(s.groups)})
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			if errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine != pe.Line {
				// An unbalanced quote swallows the rows after it: which of
				// them were meant as rows cannot be told, so refuse the file.
				return fmt.Errorf("line %d: quoted field runs on to line %d: %w", pe.StartLine, pe.Line, pe.Err)
			}
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				s.problem(linePos(pe.StartLine), fmt.Sprintf("has %d fields, the header has %d", len(rec), len(cols)))
			} else {
				s.problem(linePos(pe.StartLine), fmt.Sprintf("column %d: %v", pe.Column, pe.Err))
			}
			continue
		}
		line, _ := cr.FieldPos(0)

		u = connectors.User{}
		var status, groups string
		for i, v := range rec {
			switch cols[i] {
			case colID:
				u.ExternalID = v
			case colUserName:
				u.UserName = v
			case colEmail:
				u.Email = v
			case colGivenName:
				u.GivenName = v
			case colFamilyName:
				u.FamilyName = v
			case colDisplayName:
				u.DisplayName = v
			case colTitle:
				u.Title = v
			case colDepartment:
				u.Department = v
			case colEmployeeNumber:
				u.EmployeeNumber = v
			case colManager:
				u.Manager = v
			case colCostCenter:
				u.CostCenter = v
			case colStatus:
				status = v
			case colGroups:
				groups = v
			}
		}
		u.Attrs = s.attrs.Keep(func() map[string]any { return csvRaw(header, cols, rec) })
		// Check the groups first so that a bad name skips the whole row.
		if reason := checkGroupList(groups); reason != "" {
			s.rejectUser(line, strings.TrimSpace(u.ExternalID), reason)
			continue
		}
		ui := s.addUser(line, &u, status)
		if ui < 0 {
			continue
		}
		id := s.users[ui].ExternalID
		for rest := groups; rest != ""; {
			var name string
			name, rest, _ = strings.Cut(rest, groupSep)
			if name = strings.TrimSpace(name); name != "" {
				s.csvMember(line, name, id)
			}
		}
	}
}

// csvHeader maps each column of the header to a field. Unknown and repeated
// columns are errors: a misspelt column would silently drop data.
func csvHeader(header []string) ([]int, error) {
	cols := make([]int, len(header))
	var seen [numCols]bool
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if attr, ok := strings.CutPrefix(name, attrPrefix); ok && attr != "" {
			cols[i] = colAttr
			continue
		}
		c := -1
		for k, known := range csvColumnNames {
			if name == known {
				c = k
				break
			}
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("line 1: column %d has no name", i+1)
		case c < 0:
			return nil, fmt.Errorf("line 1: unknown column %q (columns are %s)", strings.TrimSpace(h), strings.Join(csvColumnNames[:], ", "))
		case seen[c]:
			return nil, fmt.Errorf("line 1: column %q appears twice", name)
		}
		seen[c] = true
		cols[i] = c
	}
	if !seen[colID] {
		return nil, errors.New("line 1: the header has no id column")
	}
	return cols, nil
}

// checkGroupList returns why a groups cell is not acceptable, or "".
func checkGroupList(groups string) string {
	for rest := groups; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, groupSep)
		if r := checkText(strings.TrimSpace(name), false); r != "" {
			return "groups: " + r
		}
	}
	return ""
}

// csvMember adds user id to the group called name, creating the group on
// its first mention.
func (s *snapshot) csvMember(line int, name, id string) {
	gi, ok := s.groupIdx[name]
	if !ok {
		gi = int32(len(s.groups))
		s.groupIdx[name] = gi
		s.groupName[name] = gi
		s.groups = append(s.groups, connectors.Group{ExternalID: name, Name: name})
		s.groupPos = append(s.groupPos, int32(line))
		s.members = append(s.members, nil)
	}
	ms := s.members[gi]
	// Rows are read one user at a time, so a repeat within the row is the
	// last member added.
	if n := len(ms); n > 0 && ms[n-1] == id {
		return
	}
	s.members[gi] = append(ms, id)
}
