package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/latchdev/latch"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printGrant writes one grant for a person.
func printGrant(w io.Writer, g latch.Grant, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "grant\t%s\n", g.ID)
	fmt.Fprintf(tw, "state\t%s\n", g.State)
	if g.RuleID != "" {
		fmt.Fprintf(tw, "rule\t%s in %s (%s)\n", g.RuleID, g.GroupID, g.Region)
	} else {
		fmt.Fprintf(tw, "group\t%s (%s)\n", g.GroupID, g.Region)
	}
	fmt.Fprintf(tw, "opens\t%s %s from %s\n", g.Protocol, g.Ports, g.Source)
	fmt.Fprintf(tw, "expires\t%s (%s)\n", latch.FormatExpiry(g.ExpiresAt), relative(g.ExpiresAt, now))
	if !g.EndedAt.IsZero() {
		fmt.Fprintf(tw, "ended\t%s\n", latch.FormatExpiry(g.EndedAt))
	}
	if g.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", g.LastError)
	}
	tw.Flush()
}

// relative says how far t is from now, for people: "in 29m59s", "3m ago".
func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}
