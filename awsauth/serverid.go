package awsauth

import (
	"net"
	"net/url"
	"strings"
	"unicode"

	"github.com/latchdev/latch"
)

// ServerID returns a latch server's ID as proofs carry it, so that the
// client and the server spell one server alike. By default the ID is the
// server's URL (the client's --server, the server's --url), normalised:
// scheme and host lower-cased, the scheme's default port (443 for https,
// 80 for http) and any trailing slash dropped, the path otherwise kept. An
// ID without "://" is a name chosen for the server (such as "latch-prod",
// for a server reached by several URLs) and is kept as it is.
//
// It returns EINVALID for an empty ID, one with spaces or control
// characters, and a URL that is not http or https or has user info, a
// query or a fragment.
func ServerID(id string) (string, error) {
	if id == "" {
		return "", latch.Errorf(latch.EINVALID, "the server ID is empty; want the server's URL, e.g. https://latch.example.com")
	}
	if strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", latch.Errorf(latch.EINVALID, "%q is not a server ID: it has spaces or control characters", id)
	}
	if !strings.Contains(id, "://") {
		return id, nil
	}
	u, err := url.Parse(id)
	bad := func(why string) (string, error) {
		return "", latch.Errorf(latch.EINVALID, "%q is not a server URL latch can use: %s; want http(s)://HOST[:PORT][/PATH]", id, why)
	}
	switch {
	case err != nil:
		return bad("it does not parse")
	case !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http"):
		return bad("its scheme is not http or https")
	case u.Opaque != "" || u.Hostname() == "":
		return bad("it has no host")
	case u.User != nil:
		return bad("it has user info")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("it has a query")
	case u.Fragment != "" || strings.Contains(id, "#"):
		return bad("it has a fragment")
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"): // IPv6
		host = "[" + host + "]"
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}
