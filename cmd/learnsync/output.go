package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/service"
)

// planChange is one entry of the plan's JSON "changes" list.
type planChange struct {
	Kind   string                  `json:"kind"` // person, group, membership, license, pool
	Op     reconcile.Op            `json:"op"`
	Object string                  `json:"object"`
	ID     string                  `json:"id,omitempty"`
	Person string                  `json:"person,omitempty"`
	Group  string                  `json:"group,omitempty"`
	Pool   string                  `json:"pool,omitempty"`
	Fields []reconcile.FieldChange `json:"fields,omitempty"`
	Link   []reconcile.IdentityRef `json:"link,omitempty"`
	Unlink []reconcile.IdentityRef `json:"unlink,omitempty"`
	Reason string                  `json:"reason,omitempty"`
}

type planDoc struct {
	Changes    []planChange          `json:"changes"`
	Summary    reconcile.Summary     `json:"summary"`
	Shortfalls []reconcile.Shortfall `json:"shortfalls"`
	Blocked    string                `json:"blocked,omitempty"`
	Result     reconcile.RunResult   `json:"result"`
	Sources    []reconcile.SourceRun `json:"sources"`
	Problems   []reconcile.Problem   `json:"problems"`
}

func idString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func groupLabel(ref reconcile.GroupRef, name string) string { return ref.Source + "/" + name }

func planJSON(out *reconcile.Outcome) planDoc {
	p := out.Plan
	doc := planDoc{
		Changes: []planChange{}, Summary: out.Run.Summary, Shortfalls: p.Shortfalls, Blocked: out.Blocked,
		Result: out.Run.Result, Sources: out.Run.Sources, Problems: out.Run.Problems,
	}
	if doc.Shortfalls == nil {
		doc.Shortfalls = []reconcile.Shortfall{}
	}
	if doc.Problems == nil {
		doc.Problems = []reconcile.Problem{}
	}
	for _, c := range p.People {
		fields := c.Fields()
		if c.Op == reconcile.OpCreate {
			fields = c.CreatedFields()
		}
		doc.Changes = append(doc.Changes, planChange{Kind: "person", Op: c.Op, Object: c.Person.Key, ID: idString(c.Person.ID),
			Person: c.Person.Key, Fields: fields, Link: c.Link, Unlink: c.Unlink()})
	}
	for _, c := range p.Groups {
		g := groupLabel(c.Group, c.Name)
		doc.Changes = append(doc.Changes, planChange{Kind: "group", Op: c.Op, Object: g, ID: idString(c.ID), Group: g, Fields: c.Fields})
	}
	for _, c := range p.Members {
		g := groupLabel(c.Group.Ref, c.Group.Name)
		doc.Changes = append(doc.Changes, planChange{Kind: "membership", Op: c.Op(), Object: g + " " + c.Person.Key, Group: g, Person: c.Person.Key})
	}
	for _, c := range p.Licenses {
		doc.Changes = append(doc.Changes, planChange{Kind: "license", Op: c.Op, Object: c.Pool + " " + c.Person.Key, Pool: c.Pool, Person: c.Person.Key, Reason: c.Reason})
	}
	for _, c := range p.Pools {
		pc := planChange{Kind: "pool", Op: c.Op, Object: c.Pool, Pool: c.Pool}
		if c.Op != reconcile.OpDelete {
			pc.Fields = []reconcile.FieldChange{
				{Field: "seats", Old: strconv.Itoa(c.OldSeats), New: strconv.Itoa(c.Seats)},
				{Field: "waiting", Old: strconv.Itoa(c.OldWaiting), New: strconv.Itoa(c.Waiting)},
			}
		}
		doc.Changes = append(doc.Changes, pc)
	}
	return doc
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	return strconv.Quote(s)
}

// writePlanText prints a plan the way terraform plan does.
// writeReconcileMode says how the run planned: incremental, or full and why.
func writeReconcileMode(w io.Writer, r *reconcile.Run) {
	if r.Reconcile == reconcile.ModeFull && r.FullReason != "" {
		fmt.Fprintf(w, "  reconcile: full (%s)\n", r.FullReason)
	} else if r.Reconcile != "" {
		fmt.Fprintf(w, "  reconcile: %s\n", r.Reconcile)
	}
}

func writePlanText(w io.Writer, out *reconcile.Outcome) {
	p := out.Plan
	for _, src := range out.Run.Sources {
		switch src.Result {
		case reconcile.SourceFailed:
			fmt.Fprintf(w, "! source %s: fetch failed, frozen for this run (nobody loses anything because of it): %s\n", src.Name, src.Error)
		case reconcile.SourceOK:
			fmt.Fprintf(w, "  source %s: %s fetch, %d users, %d groups\n", src.Name, src.Mode, src.Users, src.Groups)
		}
	}
	writeReconcileMode(w, out.Run)
	fmt.Fprintln(w)
	if p.Empty() {
		if out.Run.Result == reconcile.ResultOK {
			fmt.Fprintln(w, "No changes. The directory is in step with the sources.")
		} else {
			fmt.Fprintln(w, "No changes from the sources that answered; the failed ones were left as they were.")
		}
	}
	for _, c := range p.People {
		switch c.Op {
		case reconcile.OpCreate:
			fmt.Fprintf(w, "+ person %s\n", c.Person.Key)
			for _, f := range c.CreatedFields() {
				fmt.Fprintf(w, "      %s: %s\n", f.Field, quote(f.New))
			}
		case reconcile.OpUpdate, reconcile.OpReactivate:
			label := "~ person"
			if c.Op == reconcile.OpReactivate {
				label = "~ reactivate person"
			}
			fmt.Fprintf(w, "%s %s (id %d)\n", label, c.Person.Key, c.Person.ID)
			writeFields(w, c)
		case reconcile.OpDeactivate:
			fmt.Fprintf(w, "- deactivate person %s (id %d)\n", c.Person.Key, c.Person.ID)
			writeFields(w, c)
		case reconcile.OpDelete:
			fmt.Fprintf(w, "- delete person %s (id %d)\n", c.Person.Key, c.Person.ID)
		}
	}
	for _, c := range p.Groups {
		g := groupLabel(c.Group, c.Name)
		switch c.Op {
		case reconcile.OpCreate:
			fmt.Fprintf(w, "+ group %s\n", g)
		case reconcile.OpUpdate:
			fmt.Fprintf(w, "~ group %s\n", g)
			for _, f := range c.Fields {
				fmt.Fprintf(w, "      %s: %s → %s\n", f.Field, quote(f.Old), quote(f.New))
			}
		case reconcile.OpDelete:
			fmt.Fprintf(w, "- group %s\n", g)
		}
	}
	for _, c := range p.Members {
		sign := "+"
		if c.Op() == reconcile.OpRemove {
			sign = "-"
		}
		fmt.Fprintf(w, "%s member %s ∈ %s\n", sign, c.Person.Key, groupLabel(c.Group.Ref, c.Group.Name))
	}
	writePlanSeats(w, p)
	for _, sf := range p.Shortfalls {
		fmt.Fprintf(w, "! shortfall: pool %s has %d seats, %d assigned, %d waiting (next: %s)\n",
			sf.Pool, sf.Seats, sf.Assigned, sf.Waiting, strings.Join(sf.Next, ", "))
	}
	if n := len(out.Run.Problems); n > 0 {
		fmt.Fprintf(w, "\n%d records skipped:\n", n)
		for _, pr := range out.Run.Problems {
			fmt.Fprintf(w, "  ? %s\n", pr)
		}
	}
	s := out.Run.Summary
	fmt.Fprintf(w, "\nPlan: %d to create, %d to update, %d to deactivate, %d to reactivate, %d to delete; "+
		"groups %d to create, %d to update, %d to delete; memberships %d to add, %d to remove; "+
		"licenses %d to grant, %d to revoke; %d waiting for a seat.\n",
		s.Create, s.Update, s.Deactivate, s.Reactivate, s.Delete, s.GroupsCreate, s.GroupsUpdate, s.GroupsDelete,
		s.MembersAdd, s.MembersDel, s.Grant, s.Revoke, s.Waiting)
	if out.Blocked != "" {
		fmt.Fprintf(w, "\nBLOCKED: %s.\nA run would apply nothing. Apply it once with: learnsync run --once --allow-mass-deactivation\n", out.Blocked)
	}
}

// writePlanSeats prints the plan's license and pool changes.
func writePlanSeats(w io.Writer, p *reconcile.Plan) {
	for _, c := range p.Licenses {
		switch {
		case c.Op == reconcile.OpGrant && c.Reason != "":
			fmt.Fprintf(w, "+ license %s → %s: granted (%s)\n", c.Pool, c.Person.Key, c.Reason)
		case c.Op == reconcile.OpGrant:
			fmt.Fprintf(w, "+ license %s → %s\n", c.Pool, c.Person.Key)
		default:
			fmt.Fprintf(w, "- license %s ✗ %s (%s)\n", c.Pool, c.Person.Key, c.Reason)
		}
	}
	for _, c := range p.Pools {
		switch c.Op {
		case reconcile.OpCreate:
			fmt.Fprintf(w, "+ pool %s: %s, %d waiting\n", c.Pool, seats(c.Seats), c.Waiting)
		case reconcile.OpUpdate:
			fmt.Fprintf(w, "~ pool %s: seats %s → %s, waiting %d → %d\n", c.Pool, seats(c.OldSeats), seats(c.Seats), c.OldWaiting, c.Waiting)
		case reconcile.OpDelete:
			fmt.Fprintf(w, "- pool %s\n", c.Pool)
		}
	}
}

func seats(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func writeFields(w io.Writer, c reconcile.PersonChange) {
	if c.OldKey() != "" {
		fmt.Fprintf(w, "      match key: %s → %s\n", quote(c.OldKey()), quote(c.Person.Key))
	}
	for _, f := range c.Fields() {
		fmt.Fprintf(w, "      %s: %s → %s\n", f.Field, quote(f.Old), quote(f.New))
	}
	for _, l := range c.Link {
		fmt.Fprintf(w, "      + identity %s:%s\n", l.Source, l.ExternalID)
	}
	for _, l := range c.Unlink() {
		fmt.Fprintf(w, "      - identity %s:%s\n", l.Source, l.ExternalID)
	}
}

func (a *app) statusCommand() *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the sources, the last runs and the license pools",
		Long: `Show what the directory knows: each source with its last fetch, cursor age and
whether it is frozen (its fetches fail); the last runs — when, what started them,
how they ended, what they changed and what they skipped; the people and the
license pools. --output json prints the document a running service serves on
/status (without the "service" part, which only the service knows).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output must be text or json, got %q", output)
			}
			cfg, store, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := service.ReadStatus(cmd.Context(), serviceStore{store}, cfg, time.Now(), limit)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a.stdout, st)
			}
			writeStatusText(a.stdout, st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVarP(&limit, "limit", "n", 10, "how many runs to show")
	return cmd
}

func writeStatusText(w io.Writer, st *service.StatusReport) {
	if len(st.Runs) == 0 {
		fmt.Fprintln(w, "No runs yet. Start one with: learnsync run --once")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tTYPE\tLAST FETCH\tMODE\tRESULT\tCURSOR AGE\tUSERS\tGROUPS\tFROZEN SINCE")
	for _, s := range st.Sources {
		last, mode, result := "never", "-", "-"
		if f := s.LastFetch; f != nil {
			last = fmt.Sprintf("%s (run %d)", f.At.Local().Format(time.DateTime), f.Run)
			mode, result = f.Mode, f.Result
		}
		age := "-"
		if s.CursorAgeSeconds != nil {
			age = (time.Duration(*s.CursorAgeSeconds) * time.Second).Round(time.Second).String()
		}
		frozen := "-"
		if s.FrozenSince != nil {
			frozen = s.FrozenSince.Local().Format(time.DateTime)
			if s.Stale {
				frozen += " (stale)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Type, last, mode, result, age, s.Users, s.Groups, frozen)
	}
	tw.Flush()
	for _, s := range st.Sources {
		if f := s.LastFetch; f != nil && f.Error != "" {
			fmt.Fprintf(w, "source %s: last fetch failed: %s\n", s.Name, f.Error)
		}
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tTRIGGER\tRECONCILE\tRESULT\tCREATED\tUPDATED\tDEACTIVATED\tDELETED\tMEMBERSHIPS\tGRANTED\tREVOKED\tWAITING\tPROBLEMS\tTOOK")
	for _, r := range st.Runs {
		s := r.Summary
		mode := r.Reconcile
		if mode == "" {
			mode = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.StartedAt.Local().Format(time.DateTime),
			r.Trigger, mode, r.Result, s.Create, s.Update+s.Reactivate, s.Deactivate, s.Delete, s.MembersAdd+s.MembersDel,
			s.Grant, s.Revoke, s.Waiting, len(r.Problems), r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond))
	}
	tw.Flush()
	last := st.Runs[0]
	for _, src := range last.Sources {
		if src.Error != "" {
			fmt.Fprintf(w, "\nrun %d: source %s failed: %s", last.ID, src.Name, src.Error)
		}
	}
	if last.Error != "" {
		fmt.Fprintf(w, "\nrun %d: %s\n", last.ID, last.Error)
	}
	if len(last.Problems) > 0 {
		fmt.Fprintf(w, "\nrun %d skipped %d records:\n", last.ID, len(last.Problems))
		for i, p := range last.Problems {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more (learnsync status --output json)\n", len(last.Problems)-20)
				break
			}
			fmt.Fprintf(w, "  ? %s\n", p)
		}
	}

	fmt.Fprintf(w, "\nPeople: %d active, %d inactive.\n", st.People.Active, st.People.Inactive)
	if len(st.Pools) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POOL\tSEATS\tASSIGNED\tWAITING")
		for _, l := range st.Pools {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", l.Name, seats(l.Seats), l.Assigned, l.Waiting)
		}
		tw.Flush()
	}
}
