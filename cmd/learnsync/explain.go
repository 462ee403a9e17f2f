package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// errNotFound: explain found nobody with the key.
var errNotFound = errors.New("not found")

func (a *app) explainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain <email or user name>",
		Short: "Explain one person: identities, where each attribute came from, each pool's rule",
		Long: `Explain how the rules treat one person, from the mirrors and the directory as
they stand (nothing is fetched or written): their identities in each source and
whether each is in scope (scope.groups, scope.when), each attribute with the
source it came from and the map rule that made it, and for each license pool the
rule that makes them eligible or not, whether they hold a seat and their place
in the waiting list. The person is found by identity.match_on (email by default).

Exit codes: 0 ok, 1 not found or failed, 2 bad usage or configuration.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
				return usageErr("explain needs one email or user name (see %s --help)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, store, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			e, err := a.engine(cfg, store, nil)
			if err != nil {
				return err
			}
			mirrors, err := store.LoadMirrors(ctx)
			if err != nil {
				return err
			}
			st, err := store.LoadState(ctx)
			if err != nil {
				return err
			}
			key := reconcile.MatchKey(cfg.Identity.MatchOn, &connectors.User{Email: args[0], UserName: args[0]})
			ex, found := reconcile.Explain(e.Rules, mirrors, st, key, store.Now())
			if !found {
				return &exitErr{code: exitError, err: fmt.Errorf("explain %s: %w in the directory or any source", args[0], errNotFound)}
			}
			return printExplanation(a.stdout, ex)
		},
	}
}

// printExplanation writes an explanation for people.
func printExplanation(out io.Writer, ex *reconcile.Explanation) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	state := "not in the directory"
	if p := ex.Person; p != nil {
		state = fmt.Sprintf("directory id %d, %s", p.ID, map[bool]string{true: "active", false: "inactive"}[p.Active])
	}
	fmt.Fprintf(w, "person %s (%s; after the plan: %s)\n", ex.Key, state, map[bool]string{true: "active", false: "inactive"}[ex.Active])
	fmt.Fprintln(w, "identities:")
	for _, i := range ex.Identities {
		fmt.Fprintf(w, "  %s/%s\t%s\t%s\n", i.Ref.Source, i.Ref.ExternalID, i.Status, i.Scope)
	}
	if len(ex.Identities) == 0 {
		fmt.Fprintln(w, "  (none in the mirrors)")
	}
	fmt.Fprintln(w, "attributes:")
	for _, at := range ex.Attributes {
		from := at.Source
		if at.Rule != "" {
			from += " (map: " + at.Rule + ")"
		}
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(w, "  %s\t%q\t%s\n", at.Name, at.Value, from)
	}
	fmt.Fprintln(w, "pools:")
	for _, p := range ex.Pools {
		standing := "no seat"
		switch {
		case p.Holds:
			standing = "holds a seat"
		case p.Place > 0:
			standing = fmt.Sprintf("waiting: place %d of %d", p.Place, p.Waiting)
		}
		why := "not eligible"
		switch {
		case p.Undecided:
			why = "undecided (the rule failed: a seat held stays)"
		case p.Eligible:
			why = "eligible"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s (%s)\n", p.Name, standing, why, p.Rule)
	}
	if len(ex.Problems) > 0 {
		fmt.Fprintln(w, "problems:")
		for _, pr := range ex.Problems {
			fmt.Fprintf(w, "  %s\n", pr)
		}
	}
	return w.Flush()
}
