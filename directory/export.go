package directory

import (
	"cmp"
	"context"
	"slices"
	"strconv"

	"github.com/learnsync/learnsync/reconcile"
)

// Export is the directory as `learnsync export` prints it. Its JSON shape is
// a contract: tools outside the project read it.
type Export struct {
	Users    []ExportUser    `json:"users"`
	Groups   []ExportGroup   `json:"groups"`
	Licenses []ExportLicense `json:"licenses"`
}

// ExportUser is a person in the export.
type ExportUser struct {
	ID             string                  `json:"id"`
	UserName       string                  `json:"user_name"`
	Email          string                  `json:"email"`
	GivenName      string                  `json:"given_name"`
	FamilyName     string                  `json:"family_name"`
	DisplayName    string                  `json:"display_name"`
	Title          string                  `json:"title"`
	Department     string                  `json:"department"`
	EmployeeNumber string                  `json:"employee_number"`
	Manager        string                  `json:"manager"`
	Active         bool                    `json:"active"`
	Groups         []string                `json:"groups"`
	Licenses       []string                `json:"licenses"`
	Identities     []reconcile.IdentityRef `json:"identities"`
}

// ExportGroup is a mirrored group in the export; Members are emails.
type ExportGroup struct {
	ID         string   `json:"id"`
	Source     string   `json:"source"`
	ExternalID string   `json:"external_id"`
	Name       string   `json:"name"`
	Members    []string `json:"members"`
}

// ExportLicense is a pool in the export.
type ExportLicense struct {
	Name     string `json:"name"`
	Seats    int    `json:"seats"`
	Assigned int    `json:"assigned"`
	Waiting  int    `json:"waiting"`
}

// Export reads the directory into its export form, sorted: users by email
// (then id), groups by source and name (then external id), lists inside
// alphabetically.
func (s *Store) Export(ctx context.Context) (*Export, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, serr
	}
	defer end()
	st, err := s.LoadState(ctx)
	if err != nil {
		return nil, err
	}
	out := &Export{Users: []ExportUser{}, Groups: []ExportGroup{}, Licenses: []ExportLicense{}}
	users := make(map[int64]*ExportUser, len(st.People))
	for _, p := range st.People {
		users[p.ID] = &ExportUser{
			ID: strconv.FormatInt(p.ID, 10), UserName: p.UserName, Email: p.Email, GivenName: p.GivenName,
			FamilyName: p.FamilyName, DisplayName: p.DisplayName, Title: p.Title, Department: p.Department,
			EmployeeNumber: p.EmployeeNumber, Manager: p.Manager, Active: p.Active,
			Groups: []string{}, Licenses: []string{}, Identities: []reconcile.IdentityRef{},
		}
	}
	for ref, id := range st.Identities {
		if u := users[id]; u != nil {
			u.Identities = append(u.Identities, ref)
		}
	}
	for _, g := range st.Groups {
		eg := ExportGroup{ID: strconv.FormatInt(g.ID, 10), Source: g.Ref.Source, ExternalID: g.Ref.ExternalID, Name: g.Name, Members: []string{}}
		for _, pid := range st.Members[g.ID] {
			if u := users[pid]; u != nil {
				eg.Members = append(eg.Members, u.Email)
				u.Groups = append(u.Groups, g.Ref.Source+"/"+g.Name)
			}
		}
		slices.Sort(eg.Members)
		out.Groups = append(out.Groups, eg)
	}
	for pool, holders := range st.Assignments {
		for pid := range holders {
			if u := users[pid]; u != nil {
				u.Licenses = append(u.Licenses, pool)
			}
		}
	}
	for _, p := range st.Pools {
		out.Licenses = append(out.Licenses, ExportLicense{Name: p.Name, Seats: p.Seats, Assigned: len(st.Assignments[p.Name]), Waiting: p.Waiting})
	}
	for _, u := range users {
		slices.Sort(u.Groups)
		// Two groups of one source may share a name; the person is listed
		// in both (groups[]), but their own list names it once.
		u.Groups = slices.Compact(u.Groups)
		slices.Sort(u.Licenses)
		slices.SortFunc(u.Identities, func(a, b reconcile.IdentityRef) int {
			return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ExternalID, b.ExternalID))
		})
		out.Users = append(out.Users, *u)
	}
	slices.SortFunc(out.Users, func(a, b ExportUser) int {
		return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(len(a.ID), len(b.ID)), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(out.Groups, func(a, b ExportGroup) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ExternalID, b.ExternalID))
	})
	slices.SortFunc(out.Licenses, func(a, b ExportLicense) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
