package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/learnsync/learnsync/directory"
)

// directoryCommand groups the commands that manage the directory itself.
func (a *app) directoryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "directory",
		Short: "Manage the directory's database",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.copyCommand())
	return cmd
}

func (a *app) copyCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from <sqlite file or dsn> --to <dsn>",
		Short: "Copy the whole directory into a new, empty PostgreSQL database",
		Long: `Copy everything the directory holds — people with their ids, identities,
groups, memberships, license assignments with their history, the mirrors and
their cursors, runs, audit events, SCIM resources and change logs — from a
SQLite file or a PostgreSQL database into an empty PostgreSQL database, in one
transaction on the target. The target's schema is created; a target that
already holds any row is refused; the row counts of every table are compared
before the commit. Stop learnsync while it copies.

Exit codes: 0 copied, 1 the copy failed (the target is left as it was),
2 bad arguments, a missing source or a target that is not empty.`,
		Example: `  learnsync directory copy --from /var/lib/learnsync/learnsync.db \
      --to 'postgres://learnsync@db.internal:5432/learnsync?sslmode=verify-full'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageErr("directory copy: --from and --to are required (see learnsync directory copy --help)")
			}
			if !directory.IsDSN(to) {
				return usageErr("directory copy: --to must be a PostgreSQL DSN (postgres://…), got a file name")
			}
			ctx := cmd.Context()
			fromDriver := directory.DriverSQLite
			if directory.IsDSN(from) {
				fromDriver = directory.DriverPostgres
			} else if err := directory.CheckFile(from); err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("directory copy: --from: %w", err)}
			} else if _, err := os.Stat(from); err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("directory copy: --from: %w", err)}
			}
			src, err := directory.OpenDriver(ctx, fromDriver, from, directory.Options{ReadOnly: true})
			if err != nil {
				return fmt.Errorf("directory copy: open source: %w", err)
			}
			defer src.Close()
			dst, err := directory.OpenPostgres(ctx, to, directory.Options{})
			if err != nil {
				return fmt.Errorf("directory copy: open target: %w", err)
			}
			defer dst.Close()
			counts, err := directory.Copy(ctx, src, dst)
			if errors.Is(err, directory.ErrTargetNotEmpty) {
				return &exitErr{code: exitUsage, err: fmt.Errorf("directory copy: %w", err)}
			}
			if err != nil {
				return fmt.Errorf("directory copy: %w", err)
			}
			var parts []string
			for _, t := range slices.Sorted(maps.Keys(counts)) {
				parts = append(parts, fmt.Sprintf("%s %d", t, counts[t]))
			}
			fmt.Fprintf(a.stdout, "copied %s to %s: %s\n", src.Path(), dst.Path(), strings.Join(parts, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the source: a SQLite file or a PostgreSQL DSN")
	cmd.Flags().StringVar(&to, "to", "", "the target: a PostgreSQL DSN (an empty database)")
	return cmd
}
