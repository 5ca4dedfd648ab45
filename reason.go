package latch

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckReason checks a reason someone gives: for access, for an approval or
// for a denial, as the input named field. Reasons end up in tables, in
// terminals, in notifications and in the audit log, so a reason must be one
// line of text that says something: not empty, not only spaces, no control
// character (newline, carriage return, tab, escape, DEL, C1 controls) and no
// line or paragraph separator, valid UTF-8, and at most [MaxReasonLen]
// characters. Where a reason is optional, check it only when it is not
// empty.
func CheckReason(field, s string) error {
	if s == "" {
		return Invalidf(field, "a reason is required; say why, in one line of at most %d characters", MaxReasonLen)
	}
	// Length first, so that the messages below never echo a huge value.
	if n := utf8.RuneCountInString(s); n > MaxReasonLen {
		return Invalidf(field, "the reason is %d characters; at most %d are allowed", n, MaxReasonLen)
	}
	if !utf8.ValidString(s) {
		return Invalidf(field, "the reason %q is not valid UTF-8; give one line of text", s)
	}
	if i := strings.IndexFunc(s, breaksLine); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return Invalidf(field, "the reason %q holds %U, a control character or line break; give one line of text, without newlines, tabs or escape sequences", s, r)
	}
	if strings.TrimFunc(s, blank) == "" {
		return Invalidf(field, "the reason %q is only spaces; say why, in one line of at most %d characters", s, MaxReasonLen)
	}
	return nil
}

// breaksLine reports a rune that moves or controls the terminal or splits a
// line: a table row with one in it could be made to look like two.
func breaksLine(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// blank reports a rune that shows nothing: spaces and invisible formatting
// characters such as U+200B ZERO WIDTH SPACE.
func blank(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }
