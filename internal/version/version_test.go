package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/learnsync/learnsync", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     Info
		line     string
		short    string
	}{
		{"release", bi, "", Info{"v1.4.0", "1a2b3c4d5e6f7a8b9c0d", true, "go1.26.8"},
			"learnsync v1.4.0 (commit 1a2b3c4d5e6f, modified) go1.26.8", "v1.4.0"},
		{"override", bi, "v2.0.0-rc1", Info{"v2.0.0-rc1", "1a2b3c4d5e6f7a8b9c0d", true, "go1.26.8"},
			"learnsync v2.0.0-rc1 (commit 1a2b3c4d5e6f, modified) go1.26.8", "v2.0.0-rc1"},
		{"devel", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef"}, {Key: "vcs.modified", Value: "false"}}}, "",
			Info{"(devel)", "abcdef", false, "go1.26.8"}, "learnsync (devel) (commit abcdef) go1.26.8", "(devel)+abcdef"},
		{"none", nil, "", Info{"(devel)", "unknown", false, runtime.Version()},
			"learnsync (devel) (commit unknown) " + runtime.Version(), "(devel)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromBuildInfo(tc.bi, tc.override)
			if got != tc.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.line {
				t.Errorf("String = %q, want %q", s, tc.line)
			}
			if s := got.Short(); s != tc.short {
				t.Errorf("Short = %q, want %q", s, tc.short)
			}
		})
	}
}

// TestGet: a test binary has build information; its Go version is the
// running one.
func TestGet(t *testing.T) {
	if got := Get(); got.Go != runtime.Version() || got.Version == "" {
		t.Errorf("Get = %+v", got)
	}
}
