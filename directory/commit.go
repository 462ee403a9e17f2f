package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// Commit applies a plan, the mirrors' changes and the run record in one
// transaction: after a crash the directory is as it was before, or as it is
// after, never in between.
func (s *Store) Commit(ctx context.Context, c *reconcile.Commit) (err error) {
	now := s.commitTime(c)
	var bulk *bulkLoad
	defer func() {
		if err == nil {
			s.afterBulk(ctx, bulk)
		}
	}()
	return s.apply(ctx, now, func(t *tx) error {
		w := &writer{tx: t}
		if isBulk(c) {
			if bulk, err = t.startBulk(); err != nil {
				return err
			}
		}
		// The mirrors first: once written, their rows (for a first import,
		// the whole parsed source) can go while the plan is written.
		if err := w.writeMirrors(c.Mirrors); err != nil {
			return err
		}
		w.bulk = bulk != nil
		if bulk != nil {
			// The mirror rows of a large commit (a first import's whole
			// parsed source) just became garbage, a third of the heap:
			// collect now rather than let the heap grow to twice what was
			// live with them (docs/PERFORMANCE.md, "Round four").
			runtime.GC()
		}
		return w.writeRest(c, bulk)
	})
}

// errNoCommit rolls back a CommitMirrorsFirst whose plan commits nothing.
var errNoCommit = errors.New("nothing to commit")

// CommitMirrorsFirst writes mirrors, then calls plan and applies the Commit
// it returns, in one transaction (reconcile.MirrorsFirst): a large first
// import's parsed sources can go before its plan is made. A nil Commit or
// an error from plan rolls everything back.
func (s *Store) CommitMirrorsFirst(ctx context.Context, now time.Time, mirrors []*reconcile.MirrorDelta,
	plan func() (*reconcile.Commit, error)) (err error) {
	var bulk *bulkLoad
	defer func() {
		if err == nil {
			s.afterBulk(ctx, bulk)
		}
	}()
	err = s.apply(ctx, s.commitTime(&reconcile.Commit{Now: now}), func(t *tx) error {
		w := &writer{tx: t}
		// The plan is not made yet: its mirrors decide (a first import's
		// are as large as its plan).
		if isBulk(&reconcile.Commit{Mirrors: mirrors}) {
			if bulk, err = t.startBulk(); err != nil {
				return err
			}
		}
		if err := w.writeMirrors(mirrors); err != nil {
			return err
		}
		w.bulk = bulk != nil
		c, err := plan()
		switch {
		case err != nil:
			return err
		case c == nil:
			return errNoCommit
		}
		return w.writeRest(c, bulk)
	})
	if errors.Is(err, errNoCommit) {
		bulk = nil
		return nil
	}
	return err
}

// commitTime is the time a commit stamps its changes with.
func (s *Store) commitTime(c *reconcile.Commit) time.Time {
	if c.Now.IsZero() {
		return s.Now().UTC()
	}
	return c.Now.UTC()
}

// writeMirrors writes the mirrors' changes and drops their rows once
// written (see reconcile.Commit).
func (w *writer) writeMirrors(mirrors []*reconcile.MirrorDelta) error {
	for _, d := range mirrors {
		if err := w.applyMirror(d); err != nil {
			return fmt.Errorf("write mirror of %s: %w", d.Source, err)
		}
		d.UpsertUsers, d.Members = nil, nil
	}
	return nil
}

// writeRest writes what a commit has besides its mirrors: the run record,
// the plan and its audit, the consumed change log, the rebuilt indexes of a
// bulk load and the marks.
func (w *writer) writeRest(c *reconcile.Commit, bulk *bulkLoad) error {
	runID, err := w.insertRun(c.Run)
	if err != nil {
		return err
	}
	w.runID = runID
	if c.Plan != nil {
		if err := w.applyPlan(c.Plan); err != nil {
			return err
		}
	}
	if err := w.flushAudit(); err != nil {
		return err
	}
	if err := w.consumeChanges(c.Changes); err != nil {
		return err
	}
	if bulk != nil {
		if err := bulk.finish(); err != nil {
			return err
		}
	}
	if c.Marks != nil {
		if err := w.writeMarks(c.Marks); err != nil {
			return err
		}
	}
	if c.End != nil {
		end := c.End()
		if _, err := w.exec(`UPDATE runs SET ended_at = ? WHERE id = ?`, end.UTC(), runID); err != nil {
			return fmt.Errorf("record run: %w", err)
		}
		c.Run.EndedAt = end
	}
	c.Run.ID = runID
	return nil
}

// RecordRun stores a run that applied nothing.
func (s *Store) RecordRun(ctx context.Context, r *reconcile.Run) error {
	return s.apply(ctx, s.Now().UTC(), func(t *tx) error {
		w := &writer{tx: t}
		id, err := w.insertRun(r)
		if err != nil {
			return err
		}
		r.ID = id
		return nil
	})
}

// writer writes a plan, mirror changes and a run record in one transaction.
type writer struct {
	*tx
	runID int64
	// bulk is set in a bulk load: the plan's people are dropped once
	// written.
	bulk bool
	// auditErr is the first failure to write an audit event.
	auditErr error
	// audit holds the audit events not yet written.
	audit   *rowBatch
	members map[string]*memberAudit
	seats   map[string]*seatAudit
	// memberChanges and licenseChanges are the plan's, which the audit
	// events list when they are written (memberAudit.at, seatAudit.at).
	memberChanges  []reconcile.MemberChange
	licenseChanges []reconcile.LicenseChange
	// newKeys are the keys of the people this transaction creates, in
	// the order they got their ids, one after the other from
	// touched.firstNew: a planned plan creates them in the order of their
	// keys, so that an id is found by binary search, without a map of a
	// million keys. newIndex maps them when they are not in order (a plan
	// made by hand).
	newKeys  []string
	newIndex map[string]int64
	// ids of groups created in this transaction.
	groupIDs map[reconcile.GroupRef]int64
	// touched are the rows whose read-view lastModified the plan moves.
	touched *touched
	// counts are what the plan changes in directory_counts (counts.go).
	counts map[string]int
}

// record writes an audit event, batchRows at a time (flushAudit writes the
// rest): a large first import must not hold hundreds of thousands of events
// in memory.
func (w *writer) record(action, objectType, objectID string, before, after any) {
	if w.auditErr != nil {
		return
	}
	if w.audit == nil {
		w.audit = newBatch(w.tx, `INSERT INTO audit_events (run_id, at, action, object_type, object_id, before, after) VALUES`,
			`(?, ?, ?, ?, ?, ?, ?)`, "")
	}
	if err := w.audit.add(w.runID, w.now, action, objectType, objectID, marshal(before), marshal(after)); err != nil {
		w.auditErr = fmt.Errorf("write audit event: %w", err)
	}
}

// memberAudit collects one group's membership changes into one event.
type memberAudit struct {
	Group   string   `json:"group"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	id      int64
	// at are the group's changes, by index in the plan: the keys are
	// listed when the event is written, one group at a time, instead of
	// all at once (a first import adds millions of memberships).
	at []int32
}

// seatAudit collects one pool's grants and revocations into one event; the
// assignments table keeps every seat's own history.
type seatAudit struct {
	Pool    string        `json:"pool"`
	Granted []string      `json:"granted,omitempty"`
	Revoked []revokeAudit `json:"revoked,omitempty"`
	// at are the pool's grants, by index in the plan (as memberAudit.at).
	at []int32
}

type revokeAudit struct {
	Person string `json:"person"`
	Reason string `json:"reason"`
}

func marshal(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(b)
}

func (w *writer) insertRun(r *reconcile.Run) (int64, error) {
	plan := ""
	if r.Plan != nil {
		plan = marshal(r.Plan)
	}
	problems := r.Problems
	if problems == nil {
		problems = []reconcile.Problem{}
	}
	sources := r.Sources
	if sources == nil {
		sources = []reconcile.SourceRun{}
	}
	id, err := w.insertID(`INSERT INTO runs (trigger, started_at, ended_at, result, sources, summary, problems, error, plan, reconcile, full_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(r.Trigger), r.StartedAt.UTC(), r.EndedAt.UTC(), string(r.Result), marshal(sources), marshal(r.Summary),
		marshal(problems), r.Error, plan, r.Reconcile, r.FullReason)
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return id, nil
}

// flushAudit writes the collected membership and seat events.
func (w *writer) flushAudit() error {
	for _, label := range slices.Sorted(maps.Keys(w.members)) {
		a := w.members[label]
		for _, i := range a.at {
			if c := &w.memberChanges[i]; c.Op() == reconcile.OpAdd {
				a.Added = append(a.Added, c.Person.Key)
			} else {
				a.Removed = append(a.Removed, c.Person.Key)
			}
		}
		w.record("group.members", "group", strconv.FormatInt(a.id, 10), nil, a)
		a.Added, a.Removed, a.at = nil, nil, nil
	}
	for _, pool := range slices.Sorted(maps.Keys(w.seats)) {
		a := w.seats[pool]
		for _, i := range a.at {
			a.Granted = append(a.Granted, w.licenseChanges[i].Person.Key)
		}
		w.record("pool.seats", "pool", pool, nil, a)
		a.Granted, a.at = nil, nil
	}
	if w.auditErr == nil && w.audit != nil {
		if err := w.audit.flush(); err != nil {
			w.auditErr = fmt.Errorf("write audit event: %w", err)
		}
	}
	return w.auditErr
}

// personAudit is how a person appears in audit events.
type personAudit struct {
	reconcile.Profile
	Key        string                  `json:"match_key"`
	Active     bool                    `json:"active"`
	Identities []reconcile.IdentityRef `json:"identities,omitempty"`
}

func (w *writer) personID(ref reconcile.PersonRef) (int64, error) {
	if ref.ID != 0 {
		return ref.ID, nil
	}
	if w.newIndex != nil {
		if id, ok := w.newIndex[ref.Key]; ok {
			return id, nil
		}
	} else if i, ok := slices.BinarySearch(w.newKeys, ref.Key); ok {
		return w.touched.firstNew + int64(i), nil
	}
	return 0, fmt.Errorf("plan refers to unknown new person %q", ref.Key)
}

func (w *writer) applyPlan(p *reconcile.Plan) error {
	creates := 0
	for i := range p.People {
		if p.People[i].Op == reconcile.OpCreate {
			creates++
		}
	}
	w.newKeys = make([]string, 0, creates)
	w.touched = newTouched()
	w.members = make(map[string]*memberAudit)
	w.seats = make(map[string]*seatAudit)
	if err := w.loadGroupIDs(); err != nil {
		return err
	}
	for _, c := range p.Pools {
		if c.Op == reconcile.OpDelete {
			continue
		}
		if _, err := w.exec(`INSERT INTO pools (name, seats, waiting, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET seats = excluded.seats, waiting = excluded.waiting, updated_at = excluded.updated_at`,
			c.Pool, c.Seats, c.Waiting, w.now); err != nil {
			return fmt.Errorf("write pool %s: %w", c.Pool, err)
		}
		w.record("pool."+c.Op.String(), "pool", c.Pool, map[string]int{"seats": c.OldSeats, "waiting": c.OldWaiting},
			map[string]int{"seats": c.Seats, "waiting": c.Waiting, "assigned": c.Assigned})
	}
	if err := w.applyPeople(p.People); err != nil {
		return err
	}
	if w.bulk {
		// Written, with their identities and audit events: a first
		// import's million people need not stay for its memberships and
		// seats (see reconcile.Commit).
		p.People = nil
	}
	if err := w.applyGroups(p.Groups); err != nil {
		return err
	}
	if err := w.applyMembers(p.Members); err != nil {
		return err
	}
	if err := w.applyLicenses(p.Licenses); err != nil {
		return err
	}
	for _, c := range p.Pools {
		if c.Op != reconcile.OpDelete {
			continue
		}
		if _, err := w.exec(`DELETE FROM pools WHERE name = ?`, c.Pool); err != nil {
			return fmt.Errorf("delete pool %s: %w", c.Pool, err)
		}
		w.record("pool.delete", "pool", c.Pool, map[string]int{"seats": c.OldSeats}, nil)
	}
	if err := w.writeCounts(); err != nil {
		return err
	}
	return w.stamp()
}

// applyMembers writes the membership changes, the additions a batch at a
// time (a removal writes the additions before it first).
func (w *writer) applyMembers(changes []reconcile.MemberChange) error {
	add := newBatch(w.tx, `INSERT INTO memberships (group_id, person_id) VALUES`, `(?, ?)`, "")
	w.memberChanges = changes
	for i, c := range changes {
		gid, ok := w.groupIDs[c.Group.Ref]
		if !ok {
			return fmt.Errorf("plan refers to unknown group %s/%s", c.Group.Ref.Source, c.Group.Ref.ExternalID)
		}
		pid, err := w.personID(*c.Person)
		if err != nil {
			return err
		}
		w.touched.person(pid)
		w.touched.group(gid)
		if c.Op() == reconcile.OpRemove {
			err = add.flush()
			if err == nil {
				_, err = w.exec(`DELETE FROM memberships WHERE group_id = ? AND person_id = ?`, gid, pid)
			}
		} else {
			err = add.add(gid, pid)
		}
		if err != nil {
			return fmt.Errorf("write membership: %w", err)
		}
		label := c.Group.Ref.Source + "/" + c.Group.Name + " " + c.Group.Ref.ExternalID
		a := w.members[label]
		if a == nil {
			a = &memberAudit{Group: c.Group.Ref.Source + "/" + c.Group.Name, id: gid}
			w.members[label] = a
		}
		a.at = append(a.at, int32(i))
	}
	if err := add.flush(); err != nil {
		return fmt.Errorf("write membership: %w", err)
	}
	return nil
}

// applyLicenses writes the seat changes, the grants a batch at a time (a
// revocation writes the grants before it first).
func (w *writer) applyLicenses(changes []reconcile.LicenseChange) error {
	grant := newBatch(w.tx, `INSERT INTO assignments (pool, person_id, granted_at) VALUES`, `(?, ?, ?)`, "")
	pool := "" // of the grants in grant
	w.licenseChanges = changes
	for i, c := range changes {
		pid, err := w.personID(*c.Person)
		if err != nil {
			return err
		}
		w.touched.person(pid)
		if c.Pool != pool || c.Op != reconcile.OpGrant {
			if err := grant.flush(); err != nil {
				return fmt.Errorf("write license %s: %w", pool, err)
			}
			pool = c.Pool
		}
		if c.Op == reconcile.OpGrant {
			err = grant.add(c.Pool, pid, w.now)
			w.count(countPool+c.Pool, 1)
		} else {
			var res sql.Result
			res, err = w.exec(`UPDATE assignments SET revoked_at = ?, revoke_reason = ? WHERE pool = ? AND person_id = ? AND revoked_at IS NULL`,
				w.now, c.Reason, c.Pool, pid)
			if err == nil {
				var n int64
				n, err = res.RowsAffected()
				w.count(countPool+c.Pool, -int(n))
			}
		}
		if err != nil {
			return fmt.Errorf("write license %s: %w", c.Pool, err)
		}
		a := w.seats[c.Pool]
		if a == nil {
			a = &seatAudit{Pool: c.Pool}
			w.seats[c.Pool] = a
		}
		if c.Op == reconcile.OpGrant {
			a.at = append(a.at, int32(i))
		} else {
			a.Revoked = append(a.Revoked, revokeAudit{Person: c.Person.Key, Reason: c.Reason})
		}
	}
	if err := grant.flush(); err != nil {
		return fmt.Errorf("write license %s: %w", pool, err)
	}
	return nil
}

func (w *writer) loadGroupIDs() error {
	w.groupIDs = make(map[reconcile.GroupRef]int64)
	var id int64
	var ref reconcile.GroupRef
	return eachRow(w.ctx, w.Tx, "load group ids", `SELECT id, source, external_id FROM groups`, nil,
		[]any{&id, &ref.Source, &ref.ExternalID}, func() error { w.groupIDs[ref] = id; return nil })
}

const profileColumns = `user_name = ?, email = ?, given_name = ?, family_name = ?, display_name = ?, title = ?,
	department = ?, employee_number = ?, manager = ?, cost_center = ?`

func profileArgs(p *reconcile.Profile) []any {
	return []any{p.UserName, p.Email, p.GivenName, p.FamilyName, p.DisplayName, p.Title, p.Department,
		p.EmployeeNumber, p.Manager, p.CostCenter}
}

func (w *writer) applyPeople(changes []reconcile.PersonChange) error {
	// Unlinks first, so an identity can move from one person to another.
	for _, c := range changes {
		for _, ref := range c.Unlink() {
			if _, err := w.exec(`DELETE FROM identities WHERE source = ? AND external_id = ?`, ref.Source, ref.ExternalID); err != nil {
				return fmt.Errorf("unlink identity: %w", err)
			}
			w.record("identity.unlink", "identity", ref.Source+":"+ref.ExternalID, map[string]string{"person": c.Person.Key}, nil)
		}
	}
	// Deletes next, before anyone is linked: the identities, memberships and
	// seats of deleted people go with them, and an identity of a deleted
	// person may move to someone else in the same plan.
	for _, c := range changes {
		if c.Op != reconcile.OpDelete {
			continue
		}
		if err := w.countDeleted(c.Person.ID); err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM people WHERE id = ?`, c.Person.ID); err != nil {
			return fmt.Errorf("delete person %d: %w", c.Person.ID, err)
		}
		w.record("person.delete", "person", strconv.FormatInt(c.Person.ID, 10), personAudit{Profile: c.Profile, Key: c.Person.Key}, nil)
	}
	if err := w.writePeople(changes); err != nil {
		return err
	}
	return w.linkIdentities(changes)
}

// writePeople writes the creates, updates, reactivations and
// deactivations, in the plan's order. Creates are written a batch at a
// time with the ids AUTOINCREMENT would give them one at a time; any other
// statement on people writes the creates before it first.
func (w *writer) writePeople(changes []reconcile.PersonChange) error {
	create := newBatch(w.tx, `INSERT INTO people (id, match_key, user_name, email, given_name, family_name, display_name, title,
		department, employee_number, manager, cost_center, active, created_at, updated_at) VALUES`,
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, "")
	var next int64
	for _, c := range changes {
		if c.Op != reconcile.OpCreate {
			if err := w.flushPeople(create.flush()); err != nil {
				return err
			}
		}
		id := strconv.FormatInt(c.Person.ID, 10)
		var err error
		switch c.Op {
		case reconcile.OpCreate:
			if next == 0 {
				if next, err = w.nextID("people"); err != nil {
					return err
				}
			}
			pid := next
			next++
			args := append([]any{pid, c.Person.Key}, profileArgs(&c.Profile)...)
			if err := w.flushPeople(create.addLabeled(c.Person.Key, append(args, w.now, w.now)...)); err != nil {
				return err
			}
			w.newKeys = append(w.newKeys, c.Person.Key)
			w.touched.created(pid)
			w.count(countActive, 1)
			w.record("person.create", "person", strconv.FormatInt(pid, 10), nil,
				personAudit{Profile: c.Profile, Key: c.Person.Key, Active: true, Identities: c.Link})
		case reconcile.OpUpdate, reconcile.OpReactivate:
			if len(c.Fields()) > 0 || c.OldKey() != "" || c.Op == reconcile.OpReactivate {
				args := append([]any{c.Person.Key}, profileArgs(&c.Profile)...)
				args = append(args, w.now, c.Person.ID)
				q := `UPDATE people SET match_key = ?, ` + profileColumns + `, updated_at = ? WHERE id = ?`
				if c.Op == reconcile.OpReactivate {
					q = `UPDATE people SET match_key = ?, ` + profileColumns + `, updated_at = ?, active = 1, deactivated_at = NULL WHERE id = ?`
				}
				_, err = w.exec(q, args...)
			}
			if c.Op == reconcile.OpReactivate {
				w.count(countActive, 1)
			}
			w.record("person."+c.Op.String(), "person", id, fieldsBefore(c), fieldsAfter(c))
		case reconcile.OpDeactivate:
			err = w.deactivate(c)
		}
		if err != nil {
			return fmt.Errorf("%s person %s: %w", c.Op, c.Person.Key, err)
		}
	}
	if err := w.flushPeople(create.flush()); err != nil {
		return err
	}
	w.indexNewPeople()
	return w.advanceID("people", next-1)
}

// indexNewPeople maps the new people's keys to their ids when they were
// not created in the order of their keys (see newKeys).
func (w *writer) indexNewPeople() {
	for i := 1; i < len(w.newKeys); i++ {
		if w.newKeys[i-1] >= w.newKeys[i] {
			w.newIndex = make(map[string]int64, len(w.newKeys))
			for j, key := range w.newKeys {
				w.newIndex[key] = w.touched.firstNew + int64(j)
			}
			return
		}
	}
}

// flushPeople names the person whose create failed in err, as a failed
// create one at a time did.
func (w *writer) flushPeople(err error) error {
	var re *rowError
	if errors.As(err, &re) {
		return fmt.Errorf("%s person %s: %w", reconcile.OpCreate, re.Label, re.Err)
	}
	return err
}

// deactivate writes a deactivation.
func (w *writer) deactivate(c reconcile.PersonChange) error {
	_, err := w.exec(`UPDATE people SET active = 0, deactivated_at = ?, updated_at = ? WHERE id = ?`, w.now, w.now, c.Person.ID)
	w.count(countActive, -1)
	if err == nil && (len(c.Fields()) > 0 || c.OldKey() != "") {
		// The sources still describe the person: keep the profile current.
		args := append([]any{c.Person.Key}, profileArgs(&c.Profile)...)
		_, err = w.exec(`UPDATE people SET match_key = ?, `+profileColumns+` WHERE id = ?`, append(args, c.Person.ID)...)
	}
	before, after := fieldsBefore(c), fieldsAfter(c)
	before["active"], after["active"] = "true", "false"
	w.record("person.deactivate", "person", strconv.FormatInt(c.Person.ID, 10), before, after)
	return err
}

// linkIdentities writes the identities the plan links, a batch at a time.
func (w *writer) linkIdentities(changes []reconcile.PersonChange) error {
	link := newBatch(w.tx, `INSERT INTO identities (source, external_id, person_id) VALUES`, `(?, ?, ?)`, "")
	for _, c := range changes {
		if len(c.Link) == 0 {
			continue
		}
		pid, err := w.personID(c.Person)
		if err != nil {
			return err
		}
		for _, ref := range c.Link {
			if err := link.addLabeled(ref.Source+"/"+ref.ExternalID, ref.Source, ref.ExternalID, pid); err != nil {
				return linkError(err)
			}
			if c.Op != reconcile.OpCreate { // a create's event lists its identities
				w.record("identity.link", "identity", ref.Source+":"+ref.ExternalID, nil, map[string]string{"person": c.Person.Key})
			}
		}
	}
	return linkError(link.flush())
}

func linkError(err error) error {
	var re *rowError
	if errors.As(err, &re) {
		return fmt.Errorf("link identity %s: %w", re.Label, re.Err)
	}
	return err
}

func fieldsBefore(c reconcile.PersonChange) map[string]string {
	m := make(map[string]string, len(c.Fields()))
	for _, f := range c.Fields() {
		m[f.Field] = f.Old
	}
	return m
}

func fieldsAfter(c reconcile.PersonChange) map[string]string {
	m := make(map[string]string, len(c.Fields()))
	for _, f := range c.Fields() {
		m[f.Field] = f.New
	}
	return m
}

func (w *writer) applyGroups(changes []reconcile.GroupChange) error {
	for _, c := range changes {
		obj := c.Group.Source + "/" + c.Group.ExternalID
		switch c.Op {
		case reconcile.OpCreate:
			id, err := w.insertID(`INSERT INTO groups (source, external_id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				c.Group.Source, c.Group.ExternalID, c.Name, c.Description, w.now, w.now)
			if err != nil {
				return fmt.Errorf("create group %s: %w", obj, err)
			}
			w.groupIDs[c.Group] = id
			w.touched.newGroups[id] = true
			w.record("group.create", "group", strconv.FormatInt(id, 10), nil, map[string]string{"group": obj, "name": c.Name, "description": c.Description})
		case reconcile.OpUpdate:
			if _, err := w.exec(`UPDATE groups SET name = ?, description = ?, updated_at = ? WHERE id = ?`, c.Name, c.Description, w.now, c.ID); err != nil {
				return fmt.Errorf("update group %s: %w", obj, err)
			}
			before, after := map[string]string{}, map[string]string{}
			for _, f := range c.Fields {
				before[f.Field], after[f.Field] = f.Old, f.New
			}
			w.record("group.update", "group", strconv.FormatInt(c.ID, 10), before, after)
		case reconcile.OpDelete:
			if _, err := w.exec(`DELETE FROM groups WHERE id = ?`, c.ID); err != nil {
				return fmt.Errorf("delete group %s: %w", obj, err)
			}
			delete(w.groupIDs, c.Group)
			w.record("group.delete", "group", strconv.FormatInt(c.ID, 10), map[string]string{"group": obj, "name": c.Name}, nil)
		}
	}
	return nil
}

func (w *writer) applyMirror(d *reconcile.MirrorDelta) error {
	if _, err := w.exec(`INSERT INTO mirrors (source, cursor, full_at, fetched_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor, fetched_at = excluded.fetched_at,
		full_at = COALESCE(excluded.full_at, mirrors.full_at)`,
		d.Source, d.Cursor, fullAt(d), d.FetchedAt.UTC()); err != nil {
		return err
	}
	// Upserts before deletes, as Mirror.Update applies a delta fetch: a
	// user or group that a delta both changes and deletes is gone.
	users := newBatch(w.tx, mirrorUserInsert, mirrorUserRow, mirrorUserConflict)
	for _, u := range d.UpsertUsers {
		users.args = appendMirrorUserArgs(users.args, d.Source, u)
		if err := users.queued(""); err != nil {
			return err
		}
	}
	if err := users.flush(); err != nil {
		return err
	}
	for _, g := range d.UpsertGroups {
		if _, err := w.exec(`INSERT INTO mirror_groups (source, external_id, name, description, hash) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(source, external_id) DO UPDATE SET name = excluded.name, description = excluded.description, hash = excluded.hash`,
			d.Source, g.ExternalID, g.Name, g.Description, d.GroupHashes[g.ExternalID]); err != nil {
			return err
		}
	}
	for _, gid := range d.DeleteGroups {
		if _, err := w.exec(`DELETE FROM mirror_groups WHERE source = ? AND external_id = ?`, d.Source, gid); err != nil {
			return err
		}
	}
	for _, uid := range d.DeleteUsers {
		if _, err := w.exec(`DELETE FROM mirror_users WHERE source = ? AND external_id = ?`, d.Source, uid); err != nil {
			return err
		}
	}
	for gid, members := range d.Members {
		if _, err := w.exec(`UPDATE mirror_groups SET members = ?, hash = ? WHERE source = ? AND external_id = ?`,
			encodeMembers(members), d.GroupHashes[gid], d.Source, gid); err != nil {
			return err
		}
	}
	return nil
}

// encodeMembers packs a group's member ids into one column: one id a line,
// with backslash and newline escaped.
func encodeMembers(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.ContainsAny(id, "\\\n") {
			id = strings.ReplaceAll(id, "\\", "\\\\")
			id = strings.ReplaceAll(id, "\n", "\\n")
		}
		b.WriteString(id)
	}
	return b.String()
}

// decodeMembers calls fn with every id packed by encodeMembers. The ids are
// substrings of s unless they had to be unescaped.
func decodeMembers(s string, fn func(id string)) {
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		if strings.IndexByte(line, '\\') >= 0 {
			var b strings.Builder
			for i := 0; i < len(line); i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
					if line[i] == 'n' {
						b.WriteByte('\n')
						continue
					}
				}
				b.WriteByte(line[i])
			}
			line = b.String()
		}
		fn(line)
	}
}

func fullAt(d *reconcile.MirrorDelta) any {
	if d.Full {
		return d.FetchedAt.UTC()
	}
	return nil
}

const (
	mirrorUserInsert = `INSERT INTO mirror_users (source, external_id, user_name, email, given_name, family_name, display_name,
		title, department, employee_number, manager, cost_center, status, email_key, name_key, hash, attrs) VALUES`
	mirrorUserRow      = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	mirrorUserConflict = `ON CONFLICT(source, external_id) DO UPDATE SET user_name = excluded.user_name, email = excluded.email,
		given_name = excluded.given_name, family_name = excluded.family_name, display_name = excluded.display_name,
		title = excluded.title, department = excluded.department, employee_number = excluded.employee_number,
		manager = excluded.manager, cost_center = excluded.cost_center, status = excluded.status,
		email_key = excluded.email_key, name_key = excluded.name_key, hash = excluded.hash, attrs = excluded.attrs`
)

// appendMirrorUserArgs appends the values of a mirror_users row.
func appendMirrorUserArgs(args []any, source string, u *connectors.User) []any {
	return append(args, source, u.ExternalID, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName, u.Title, u.Department,
		u.EmployeeNumber, u.Manager, u.CostCenter, string(u.Status),
		reconcile.MatchKey("email", u), reconcile.MatchKey("user_name", u), reconcile.UserHash(u), u.Attrs)
}

func (w *writer) upsertMirrorUser(source string, u *connectors.User) error {
	_, err := w.exec(mirrorUserInsert+" "+mirrorUserRow+" "+mirrorUserConflict, appendMirrorUserArgs(nil, source, u)...)
	return err
}
