package portal

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/reconcile"
)

// grantData is a grant's page: the grant, its timeline and its proof.
type grantData struct {
	Grant    latch.Grant
	Open     bool
	Rule     string // the rule that decided the request, "" for a grant opened directly
	Timeline []moment
	Proof    proofView
}

// moment is one line of a grant's timeline.
type moment struct {
	At         time.Time
	What, Note string
	Flag       bool // break-glass
}

// proofView is the CloudTrail proof as the page says it.
type proofView struct {
	Status         string // "not configured", "unavailable", or the sides'
	Note           string
	Opened, Closed *reconcile.ProofSide
}

func (p *Portal) grantPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	// GrantTimeline is GetGrant's visibility: the requester and admins.
	// Nothing below runs for anyone else.
	tl, err := p.cfg.Access.GrantTimeline(r.Context(), s.who, id)
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	d := grantData{Grant: tl.Grant, Open: openState(tl.Grant.State), Proof: p.proof(r.Context(), tl.Grant, tl.History)}
	if q := tl.Request; q != nil {
		d.Rule = q.Rule
		d.Timeline = append(d.Timeline, moment{At: q.CreatedAt, Flag: q.BreakGlass,
			What: fmt.Sprintf("requested by %s under rule %s", q.Requester, q.Rule), Note: q.Reason})
		for _, rv := range q.Reviews {
			verb := "denied"
			if rv.Approve {
				verb = "approved"
			}
			d.Timeline = append(d.Timeline, moment{At: rv.At, What: verb + " by " + rv.By.String(), Note: rv.Reason})
		}
		if q.BreakGlass && !q.DecidedAt.IsZero() {
			d.Timeline = append(d.Timeline, moment{At: q.DecidedAt, Flag: true, What: "opened without approval: break-glass"})
		} else if q.ApprovalsNeeded == 0 && !q.DecidedAt.IsZero() && len(q.Reviews) == 0 {
			d.Timeline = append(d.Timeline, moment{At: q.DecidedAt, What: "auto-approved by rule " + q.Rule})
		}
	}
	for _, e := range tl.History {
		d.Timeline = append(d.Timeline, moment{At: e.At, What: "grant " + strings.ReplaceAll(string(e.State), "_", " "), Note: e.Note})
	}
	slices.SortStableFunc(d.Timeline, func(a, b moment) int { return cmp.Compare(a.At.UnixNano(), b.At.UnixNano()) })
	v := p.base(s, "Grant "+string(tl.Grant.ID), "")
	v.Data = d
	p.pages.render(w, r, http.StatusOK, "grant", v)
}

// proof asks CloudTrail for g's rule, saying honestly when it cannot. A
// proof is kept for proofTTL (see proofCache): reloading a page does not
// ask CloudTrail again.
func (p *Portal) proof(ctx context.Context, g latch.Grant, history []latch.GrantEvent) proofView {
	if g.Access == latch.AccessSSM {
		return proofView{Status: "not shown here", Note: "a Session Manager grant opens no rule; latch audit proof " + string(g.ID) + " shows its sessions' StartSession and TerminateSession in CloudTrail"}
	}
	if p.cfg.Prove == nil {
		return proofView{Status: "not configured", Note: "this server has no CloudTrail client; run latch audit proof " + string(g.ID) + " where AWS credentials can read CloudTrail"}
	}
	return p.proofs.get(ctx, g, func() proofView {
		// Others may be waiting for this lookup: it outlives this page's
		// request, within bounds.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return p.lookProof(ctx, g, history)
	})
}

func (p *Portal) lookProof(ctx context.Context, g latch.Grant, history []latch.GrantEvent) proofView {
	pr, err := p.cfg.Prove(ctx, g, history)
	if err != nil {
		if latch.ErrorCode(err) == latch.EINTERNAL {
			p.log.ErrorContext(ctx, "cloudtrail proof", "grant_id", g.ID, "err", err)
			return proofView{Status: "unavailable", Note: "CloudTrail could not be read just now"}
		}
		return proofView{Status: "unavailable", Note: latch.ErrorMessage(err)}
	}
	return proofView{Status: "checked", Opened: &pr.Opened, Closed: &pr.Closed}
}
