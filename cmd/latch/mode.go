package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

// One rule for every command that can work either way: with a server
// configured (--server or LATCH_SERVER), it uses the server; --direct is the
// explicit opt-out, using the caller's own AWS credentials and the local
// database. Nothing falls back silently from one to the other.

// serverOnlyFlags are the flags that only mean something to a server:
// the server group's.
var serverOnlyFlags = serverFlags.names

// useServer reports whether cmd talks to the server. --direct with a
// server flag given on the command line (not from the environment) is
// refused: the two contradict each other.
func (a *app) useServer(cmd *cobra.Command, direct bool) (bool, error) {
	if !direct {
		return a.server != "", nil
	}
	for _, name := range serverOnlyFlags {
		if v, ok := a.onCommandLine(cmd, name); ok {
			return false, latch.Invalidf("direct", "--direct and --%s %s contradict each other: --%s is for the latch server, --direct skips it and uses your own AWS credentials; drop one", name, v, name)
		}
	}
	return false, nil
}

// onCommandLine returns flag name's value if it was given on the command
// line, rather than left at its default or filled from its LATCH_ variable.
func (a *app) onCommandLine(cmd *cobra.Command, name string) (string, bool) {
	f := cmd.Flags().Lookup(name)
	if f == nil || !f.Changed || a.fromEnv[name] {
		return "", false
	}
	return f.Value.String(), true
}

// directDB is the database a direct command uses.
func (a *app) directDB() string {
	if a.dbPath != "" {
		return a.dbPath
	}
	return a.defaultDBPath()
}

// modeJSON says, in a command's JSON, where it looked: additive fields.
type modeJSON struct {
	Mode     string `json:"mode,omitempty"` // server or direct
	Server   string `json:"server,omitempty"`
	Database string `json:"database,omitempty"`
}

func (a *app) serverMode() modeJSON { return modeJSON{Mode: "server", Server: a.server} }
func (a *app) directMode() modeJSON { return modeJSON{Mode: "direct", Database: a.directDB()} }

// sayMode tells a person where a command looked, as the first line of its
// answer on stdout: a successful command is quiet on stderr.
func (a *app) sayMode(m modeJSON) {
	if m.Mode == "server" {
		fmt.Fprintf(a.stdout, "From server %s\n", esc(m.Server))
		return
	}
	fmt.Fprintf(a.stdout, "Direct, database %s\n", esc(m.Database))
}
