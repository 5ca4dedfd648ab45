package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/latchdev/latch"
)

// Session Manager access: a grant that opens no rule. While it is active
// its requester may start sessions to its instance; when it ends, every
// session latch started for it is terminated. Each session's reason
// carries the grant and its expiry, so AWS keeps its own record and a
// sweep with no database still ends what is overdue.

// InstanceLookup finds an instance with its tags in one region. The group
// lookups given to [New] are asked for it by type assertion: a
// [latch.Inventory] is both.
type InstanceLookup interface {
	Instance(ctx context.Context, id latch.InstanceID) (latch.Instance, error)
}

func (b *Broker) sessions(region string) (latch.SessionManager, error) {
	sm, ok := b.opts.Sessions[region]
	if !ok {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "Session Manager access is not configured in %s on this server (start it with --ssm-session-role)", region)
	}
	return sm, nil
}

// CheckSessionTarget refuses an instance latch may not start sessions on:
// one not tagged latch:managed=true (the tag the session role's IAM
// policy is scoped to) or whose agent is not online. It changes nothing.
func (b *Broker) CheckSessionTarget(ctx context.Context, region string, id latch.InstanceID) error {
	if b.opts.SessionRole == "" {
		return latch.Errorf(latch.EUNAVAILABLE, "Session Manager access is off on this server (start it with --ssm-session-role)")
	}
	sm, err := b.sessions(region)
	if err != nil {
		return err
	}
	look, ok := b.groups[region].(InstanceLookup)
	if !ok {
		return latch.Errorf(latch.EINTERNAL, "no instance lookup for region %s; latch starts sessions only on instances it can see are tagged %s=true", region, latch.TagManaged)
	}
	in, err := look.Instance(ctx, id)
	if err != nil {
		return err
	}
	if in.Tags[latch.TagManaged] != "true" {
		return latch.Errorf(latch.EFORBIDDEN, "instance %s is not tagged %s=true; latch never starts sessions on it", id, latch.TagManaged)
	}
	agent, err := sm.Agent(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("check the SSM agent on %s: %w", id, err)
	case !agent.Registered:
		return latch.Errorf(latch.ECONFLICT, "instance %s has no SSM agent registered with Systems Manager; install the agent and give the instance a role with AmazonSSMManagedInstanceCore", id)
	case !agent.Online():
		return latch.Errorf(latch.ECONFLICT, "the SSM agent on instance %s is %s, not Online; sessions cannot start until it reconnects", id, agent.PingStatus)
	}
	return nil
}

// grantSSM records a Session Manager grant, active at once: there is
// nothing to open in AWS until the requester starts a session.
func (b *Broker) grantSSM(ctx context.Context, req latch.GrantRequest) (latch.Grant, error) {
	if err := b.CheckSessionTarget(ctx, req.Region, req.Target); err != nil {
		return latch.Grant{}, err
	}
	now := b.now()
	g, err := b.store.CreateGrant(ctx, latch.Grant{
		ID: latch.NewGrantID(), State: latch.StateRequested, Access: latch.AccessSSM, Target: req.Target, Document: req.Document,
		Region: req.Region, Protocol: req.Protocol, Ports: req.Ports,
		Requester: req.Requester, Owner: req.Owner, Reason: req.Reason, RequestID: req.RequestID, CreatedAt: now, ExpiresAt: now.Add(req.Duration),
	}, "requested: "+req.Reason)
	if err != nil {
		return latch.Grant{}, fmt.Errorf("record grant: %w", err)
	}
	g.State = latch.StateActive
	if g, err = b.store.UpdateGrant(ctx, g, "Session Manager access: no rule is opened"); err != nil {
		return g, fmt.Errorf("record grant active: %w", err)
	}
	b.evidence(ctx, "granted", g, "reason", g.Reason)
	b.audit(ctx, grantAudit(latch.AuditGranted, g.Requester, g, map[string]string{"reason": g.Reason}))
	b.opts.Observer.GrantOpened()
	return g, nil
}

// StartSession starts a Session Manager session for an active Session
// Manager grant and returns what the requester's plugin needs. Callers
// authorize first (Access.StartSession). localPort is the plugin's local
// port for port forwarding; 0 lets it choose.
func (b *Broker) StartSession(ctx context.Context, id latch.GrantID, localPort int) (latch.SessionHandle, error) {
	g, err := b.store.Grant(ctx, id)
	if err != nil {
		return latch.SessionHandle{}, err
	}
	switch {
	case g.Access != latch.AccessSSM:
		return latch.SessionHandle{}, latch.Errorf(latch.ECONFLICT, "grant %s opens a security-group rule, not Session Manager sessions", id)
	case g.State != latch.StateActive || !b.now().Before(g.ExpiresAt):
		return latch.SessionHandle{}, latch.Errorf(latch.ECONFLICT, "grant %s is %s; a session needs an active grant", id, g.State)
	case localPort < 0 || localPort > 65535:
		return latch.SessionHandle{}, latch.Invalidf("local_port", "%d is not a port; want 1 to 65535, or 0 to let the plugin choose", localPort)
	case localPort != 0 && g.Document != latch.DocPortForward:
		return latch.SessionHandle{}, latch.Invalidf("local_port", "a %s session has no local port; only port-forward takes one", g.Document)
	}
	sm, err := b.sessions(g.Region)
	if err != nil {
		return latch.SessionHandle{}, err
	}
	// The tag and the agent are read afresh for every session, as a
	// group's tag is for every rule.
	if err := b.CheckSessionTarget(ctx, g.Region, g.Target); err != nil {
		return latch.SessionHandle{}, err
	}
	b.checkpoint("before-start-session")
	h, err := sm.Start(ctx, latch.SessionStart{Grant: g.ID, Target: g.Target, Document: g.Document, Port: g.Ports.From,
		LocalPort: localPort, Requester: g.Requester, Expires: g.ExpiresAt})
	if err != nil {
		return latch.SessionHandle{}, err
	}
	b.checkpoint("after-start-session")
	// From here the step runs to its end even if the caller gives up: the
	// session exists, and its record, audit and backstop must follow.
	ctx = context.WithoutCancel(ctx)
	now := b.now()
	rec := latch.SSMSession{ID: h.SessionID, GrantID: g.ID, Region: g.Region, Target: g.Target, Document: g.Document, Owner: h.Owner,
		Reason: latch.SessionReason(g.ID, g.ExpiresAt), StartedAt: now, Expires: g.ExpiresAt}
	if ss, ok := b.store.(latch.SessionStore); ok {
		if err := ss.AddSession(ctx, rec); err != nil {
			// The session's reason names the grant, so ending the grant
			// still finds it in AWS.
			b.log.WarnContext(ctx, "record session", "session_id", h.SessionID, "grant_id", g.ID, "err", err)
		}
	}
	b.sessionEvidence(ctx, "session started", g, h.SessionID)
	b.audit(ctx, sessionAudit(latch.AuditSessionStarted, g.Requester, g, h.SessionID, nil))
	// The session's end in AWS, for when no latch process is left to end it.
	b.backstopSession(ctx, g.Region, h.SessionID, g.ExpiresAt)

	// The grant may have ended while the session was starting; its end
	// may have listed the sessions before this one existed.
	if now, err := b.store.Grant(ctx, id); err == nil && now.State != latch.StateActive {
		if err := sm.Terminate(ctx, h.SessionID); err != nil {
			b.log.WarnContext(ctx, "terminate a session started as its grant ended; a sweep will", "session_id", h.SessionID, "err", err)
		} else {
			b.unbackstopSession(ctx, g.Region, h.SessionID)
		}
		return latch.SessionHandle{}, latch.Errorf(latch.ECONFLICT, "grant %s ended while the session started; it was terminated", id)
	}
	return h, nil
}

// closeSSM ends a Session Manager grant: it terminates every session
// latch started for it, the store's and any AWS lists under the grant's
// name, and records the end.
func (b *Broker) closeSSM(ctx context.Context, g latch.Grant, by string, now time.Time) (Ended, error) {
	failed := func(err error) (Ended, error) {
		g, err := b.revokeFailed(ctx, g, now, err)
		return Ended{Grant: g}, err
	}
	sm, err := b.sessions(g.Region)
	if err != nil {
		return failed(err)
	}
	ids := map[latch.SSMSessionID]bool{}
	store, _ := b.store.(latch.SessionStore)
	if store != nil {
		recorded, err := store.GrantSessions(ctx, g.ID)
		if err != nil {
			return failed(fmt.Errorf("list the grant's sessions: %w", err))
		}
		for _, s := range recorded {
			if s.EndedAt.IsZero() {
				ids[s.ID] = true
			}
		}
	}
	live, err := sm.Sessions(ctx)
	if err != nil {
		return failed(err)
	}
	for _, s := range live {
		if s.GrantID == g.ID {
			ids[s.ID] = true
		}
	}
	b.checkpoint("before-revoke")
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if err := sm.Terminate(ctx, id); err != nil {
			return failed(err)
		}
		b.unbackstopSession(ctx, g.Region, id)
		if store != nil {
			if err := store.EndSession(ctx, id, now); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
				b.log.WarnContext(ctx, "record session end", "session_id", id, "err", err)
			}
		}
		b.sessionEvidence(ctx, "session terminated", g, id)
		b.audit(ctx, sessionAudit(latch.AuditSessionTerminated, Actor, g, id, map[string]string{"via": "grant end"}))
	}
	b.checkpoint("after-revoke")
	note := fmt.Sprintf("%d Session Manager session(s) terminated", len(ids))
	if len(ids) == 0 {
		note = "no Session Manager session was running"
	}
	g.State, g.EndedAt, g.LastError, g.NextAttempt = g.EndAs, now, "", time.Time{}
	if g, err = b.store.UpdateGrant(ctx, g, note); err != nil {
		return Ended{Grant: g}, fmt.Errorf("record %s: %w", note, err)
	}
	b.evidence(ctx, string(g.State), g, "outcome", note, "attempts", g.Attempts+1)
	b.ended(ctx, g, by, note, now)
	return Ended{Grant: g}, nil
}

// SessionSwept is one overdue session a sweep found.
type SessionSwept struct {
	Session    latch.SSMSession
	Terminated bool // false on a dry run or on error
	Err        error
}

// SessionSweepReport says what a sweep of one region's sessions found
// and did.
type SessionSweepReport struct {
	Region   string
	Sessions int // active sessions latch started
	Swept    []SessionSwept
}

// SweepSessions terminates every active session latch started whose
// grant's expiry (from the session's reason) has passed, or whose reason
// cannot be read, from AWS alone: it needs no store. ended, if not nil,
// says whether a grant has ended early (a store's knowledge), so that its
// sessions end too. sms are Session Manager by region, swept in region
// order. With dryRun it only reports.
func SweepSessions(ctx context.Context, sms map[string]latch.SessionManager, now time.Time, dryRun bool, ended func(latch.GrantID) bool, log *slog.Logger) ([]SessionSweepReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var reports []SessionSweepReport
	var errs []error
	for _, region := range slices.Sorted(maps.Keys(sms)) {
		sm := sms[region]
		rep := SessionSweepReport{Region: region}
		live, err := sm.Sessions(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep sessions in %s: %w", region, err))
			reports = append(reports, rep)
			continue
		}
		rep.Sessions = len(live)
		for _, s := range live {
			overdue := s.Expires.IsZero() || !s.Expires.After(now) || (ended != nil && s.GrantID != "" && ended(s.GrantID))
			if !overdue {
				continue
			}
			sw := SessionSwept{Session: s}
			if !dryRun {
				if sw.Err = sm.Terminate(ctx, s.ID); sw.Err == nil {
					sw.Terminated = true
					log.InfoContext(ctx, "session terminated", "session_id", s.ID, "grant_id", s.GrantID, "region", s.Region,
						"instance_id", s.Target, "owner", s.Owner, "expires_at", latch.FormatExpiry(s.Expires), "via", "sweep")
				} else {
					errs = append(errs, fmt.Errorf("terminate session %s: %w", s.ID, sw.Err))
				}
			}
			rep.Swept = append(rep.Swept, sw)
		}
		reports = append(reports, rep)
	}
	return reports, errors.Join(errs...)
}

// SweepSessions is the daemon's session sweep: [SweepSessions] over the
// configured regions, with the store saying which grants have ended, and
// each termination recorded against the grant.
func (b *Broker) SweepSessions(ctx context.Context) ([]SessionSweepReport, error) {
	ended := func(id latch.GrantID) bool {
		g, err := b.store.Grant(ctx, id)
		return err == nil && !g.State.Open()
	}
	reports, err := SweepSessions(ctx, b.opts.Sessions, b.now(), false, ended, b.log)
	for _, rep := range reports {
		for _, s := range rep.Swept {
			if !s.Terminated {
				continue
			}
			if ss, ok := b.store.(latch.SessionStore); ok {
				_ = ss.EndSession(ctx, s.Session.ID, b.now()) // ENOTFOUND: a session the store never knew
			}
			b.unbackstopSession(ctx, rep.Region, s.Session.ID)
			b.audit(ctx, latch.AuditEntry{Actor: Actor, Action: latch.AuditSessionTerminated, Target: string(s.Session.Target), GrantID: s.Session.GrantID,
				Details: map[string]string{"session_id": string(s.Session.ID), "region": s.Session.Region, "owner": s.Session.Owner,
					"document": string(s.Session.Document), "expires_at": latch.FormatExpiry(s.Session.Expires), "via": "sweep"}})
		}
	}
	return reports, err
}

func (b *Broker) sessionEvidence(ctx context.Context, msg string, g latch.Grant, id latch.SSMSessionID) {
	b.log.InfoContext(ctx, msg, "session_id", id, "grant_id", g.ID, "region", g.Region, "instance_id", g.Target,
		"document", g.Document, "port", g.Ports.From, "requester", g.Requester, "expires_at", latch.FormatExpiry(g.ExpiresAt))
}

func sessionAudit(action latch.AuditAction, actor string, g latch.Grant, id latch.SSMSessionID, extra map[string]string) latch.AuditEntry {
	e := grantAudit(action, actor, g, extra)
	e.Details["session_id"] = string(id)
	e.Details["document_name"] = g.Document.AWSName()
	if !g.Document.TakesPort() {
		delete(e.Details, "ports")
	}
	return e
}
