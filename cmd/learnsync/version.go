package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/learnsync/learnsync/internal/version"
)

// versionCommand prints the version, the commit and the Go version, as
// `learnsync --version` does.
func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print learnsync's version, commit and Go version",
		Long: `Print the version of this learnsync binary, the commit it was built from (with
", modified" when the tree had uncommitted changes) and the Go version, from the
build information Go embeds. The same line as learnsync --version; --output json
prints {"version", "commit", "modified", "go"}. Each instance's version is also
in /status (service.version, and ha.instances during a rolling upgrade).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := version.Get()
			switch output {
			case "text", "":
				fmt.Fprintln(a.stdout, in)
				return nil
			case "json":
				return writeJSON(a.stdout, in)
			}
			return usageErr("--output must be text or json, got %q", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
