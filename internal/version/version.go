// Package version says which learnsync this is: the version, the commit
// and the Go version, read from the build information Go embeds.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version overrides the module version: go build -ldflags
// "-X github.com/learnsync/learnsync/internal/version.version=v1.4.0".
var version string

// Info is what the build says of itself.
type Info struct {
	// Version is the module's version ("v1.4.0", a pseudo-version, or
	// "(devel)" for a build from a checkout without VCS information).
	Version string `json:"version"`
	// Commit is the VCS revision; Modified says the tree had changes.
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
	// Go is the Go version learnsync was built with.
	Go string `json:"go"`
}

// Get reads the running binary's build information.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return FromBuildInfo(bi, version)
}

// FromBuildInfo reads bi (nil: none was embedded); override, if not empty,
// replaces the module's version.
func FromBuildInfo(bi *debug.BuildInfo, override string) Info {
	in := Info{Version: "(devel)", Commit: "unknown", Go: runtime.Version()}
	if bi != nil {
		if bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			in.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		in.Version = override
	}
	return in
}

// String is the one line `learnsync version` prints:
// "learnsync v1.4.0 (commit 1a2b3c4d5e6f, modified) go1.26.8".
func (in Info) String() string {
	commit := in.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if in.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("learnsync %s (commit %s) %s", in.Version, commit, in.Go)
}

// Short is the version with the commit, for /status and the election:
// "v1.4.0" or "(devel)+1a2b3c4d5e6f".
func (in Info) Short() string {
	if in.Version != "(devel)" || in.Commit == "unknown" {
		return in.Version
	}
	c := in.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if in.Modified {
		c += "-modified"
	}
	return in.Version + "+" + c
}
