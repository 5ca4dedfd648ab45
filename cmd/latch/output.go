package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/latchdev/latch"
)

// writeJSON prints v as --json does: one compact JSON object on one line
// (docs/JSON.md). A command that reports over time prints one such line
// per event, each naming its "event".
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// esc returns a stored or received value as it may be shown to a person in
// a table or a line: as it is when it is printable text, otherwise quoted
// Go-style ("a\nb", "\x1b[2J"), so that a newline in it cannot forge a row
// and an escape sequence never reaches the terminal raw. A value that
// itself begins with a double quote is quoted too, so that a quoted value
// on screen always means an escaped one. JSON output needs none of this.
func esc[S ~string](v S) string {
	s := string(v)
	if utf8.ValidString(s) && !strings.HasPrefix(s, `"`) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// escJoin joins values escaped as [esc] does.
func escJoin(vs []string, sep string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = esc(v)
	}
	return strings.Join(out, sep)
}

// printGrant writes one grant for a person.
func printGrant(w io.Writer, g latch.Grant, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "grant\t%s\n", esc(g.ID))
	fmt.Fprintf(tw, "state\t%s\n", esc(g.State))
	if g.RuleID != "" {
		fmt.Fprintf(tw, "rule\t%s in %s (%s)\n", esc(g.RuleID), esc(g.GroupID), esc(g.Region))
	} else {
		fmt.Fprintf(tw, "group\t%s (%s)\n", esc(g.GroupID), esc(g.Region))
	}
	fmt.Fprintf(tw, "opens\t%s from %s\n", opens(g.Protocol, g.Ports), g.Source)
	if g.State.Open() {
		fmt.Fprintf(tw, "expires\t%s (%s)\n", latch.FormatExpiry(g.ExpiresAt), relative(g.ExpiresAt, now))
	} else { // its expiry is history: never "in …"
		fmt.Fprintf(tw, "expires\t%s\n", latch.FormatExpiry(g.ExpiresAt))
		if !g.EndedAt.IsZero() {
			fmt.Fprintf(tw, "ended\t%s (%s)\n", latch.FormatExpiry(g.EndedAt), relative(g.EndedAt, now))
		}
	}
	if g.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", esc(g.LastError))
	}
	tw.Flush()
}

// ends says when a grant ends, for a table: "in 29m59s" while it may
// be open, "ended 3m0s ago" once it has ended, never a future expiry.
func ends(state latch.GrantState, expiresAt, endedAt, now time.Time) string {
	switch {
	case state.Open():
		return relative(expiresAt, now)
	case endedAt.IsZero():
		return "ended"
	case endedAt.After(now): // another machine's clock
		return "ended " + latch.FormatExpiry(endedAt)
	}
	return "ended " + relative(endedAt, now)
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

// opens says what a protocol and range open, for people and escaped:
// "tcp 22", "icmp all types", "icmpv6 type 128 (echo request)".
func opens(proto latch.Protocol, ports latch.PortRange) string {
	return esc(latch.DescribePorts(proto, ports))
}
