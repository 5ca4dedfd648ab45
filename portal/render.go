package portal

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/reconcile"
)

//go:embed templates
var templateFS embed.FS

// pageNames are the templates in templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "request", "access", "approvals", "grant", "admin", "audit", "problem"}

// pages are the parsed templates, by name.
type pages struct{ byName map[string]*template.Template }

var funcs = template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"dur":   formatDuration,
	"ports": func(p latch.Protocol, r latch.PortRange) string { return string(p) + "/" + r.String() },
	// from says where access comes from: an address, or Session Manager,
	// which opens no port to any address.
	"from": func(a latch.Access, doc latch.SSMDocument, src netip.Prefix) string {
		if a == latch.AccessSSM {
			return "through Session Manager (" + string(doc) + "), no port opened"
		}
		return "from " + src.String()
	},
	"display": func(i latch.Identity) string { return i.String() },
	"side": func(label string, s *reconcile.ProofSide) struct {
		Label string
		Side  *reconcile.ProofSide
	} {
		return struct {
			Label string
			Side  *reconcile.ProofSide
		}{label, s}
	},
}

func parsePages() (*pages, error) {
	out := &pages{byName: map[string]*template.Template{}}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", n, err)
		}
		out.byName[n] = t
	}
	return out, nil
}

// view is what every page gets: the layout's fields and the page's Data.
type view struct {
	Title   string
	Nav     string // the navigation entry to mark as current
	Who     *latch.Identity
	Admin   bool
	CSRF    string
	AWSAuth bool
	Error   bool   // the sign-in failed
	Problem string // what went wrong with the last action, for people
	Data    any
}

// render writes page name; a template error is a 500 with nothing of the
// page, never half a page.
func (pg *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var b bytes.Buffer
	if err := pg.byName[name].Execute(&b, v); err != nil {
		http.Error(w, "latch: the page failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// formatDuration is d as people write it: 30m, 1h, 1h30m, 45s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
