package ec2sim

// Scheduler's operations on schedules and schedule groups. Each runs with
// s.mu held (see serveScheduler).

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

func scheduleNotFound(name string) *apiError {
	return errf(CodeResourceNotFoundException, "Schedule %s does not exist.", name)
}

func groupNotFound(name string) *apiError {
	return errf(CodeResourceNotFoundException, "Schedule group %s does not exist.", name)
}

// groupOf returns the schedule group a request names, "default" when it
// names none.
func groupOf(name *string) string {
	if name == nil || *name == "" {
		return DefaultScheduleGroup
	}
	return *name
}

// newSchedule validates a CreateSchedule or UpdateSchedule body and builds
// the schedule it describes, as of now.
func (s *Server) newSchedule(sr *schedRegion, req *schedRequest) (*schedule, *apiError) {
	var sp scheduleSpec
	if err := req.decodeBody(&sp); err != nil {
		return nil, err
	}
	when, err := validateSchedule(req.name, &sp)
	if err != nil {
		return nil, err
	}
	k := schedKey{groupOf(sp.GroupName), req.name}
	if _, ok := sr.groups[k.group]; !ok {
		return nil, groupNotFound(k.group)
	}
	now := s.now().UTC()
	sc := &schedule{
		key: k, arn: s.scheduleARN(req.region, k), spec: sp, created: now, modified: now,
		loc: when.loc, at: when.at, every: when.every, next: when.at,
	}
	if sp.ClientToken != nil {
		sc.token = *sp.ClientToken
	}
	if sc.every > 0 {
		// A rate schedule runs from its StartDate, or one period after it
		// is created or updated; it stops at its EndDate.
		sc.next = now.Add(sc.every)
		if sp.StartDate != nil {
			sc.next = sp.StartDate.Time
		}
		if sp.EndDate != nil {
			sc.end = sp.EndDate.Time
		}
	}
	return sc, nil
}

func (s *Server) createSchedule(sr *schedRegion, req *schedRequest) (any, *apiError) {
	sc, err := s.newSchedule(sr, req)
	if err != nil {
		return nil, err
	}
	if old, ok := sr.schedules[sc.key]; ok {
		// The same token is the SDK retrying a create whose answer it
		// lost: it gets the first answer again.
		if old.token == "" || old.token != sc.token {
			return nil, errf(CodeConflictException, "Schedule %s already exists.", sc.key.name)
		}
		return map[string]string{"ScheduleArn": old.arn}, nil
	}
	sr.schedules[sc.key] = sc
	delete(sr.deleted, sc.key)
	return map[string]string{"ScheduleArn": sc.arn}, nil
}

// updateSchedule replaces a schedule with the one in the request, as
// Scheduler does: members left out take their defaults. Failed runs
// awaiting a retry are dropped with the old schedule.
func (s *Server) updateSchedule(sr *schedRegion, req *schedRequest) (any, *apiError) {
	sc, err := s.newSchedule(sr, req)
	if err != nil {
		return nil, err
	}
	old, ok := sr.schedules[sc.key]
	if !ok {
		return nil, scheduleNotFound(sc.key.name)
	}
	sc.created, sc.token = old.created, old.token
	sr.schedules[sc.key] = sc
	return map[string]string{"ScheduleArn": sc.arn}, nil
}

func (s *Server) getSchedule(sr *schedRegion, req *schedRequest) (any, *apiError) {
	k, err := req.scheduleKey()
	if err != nil {
		return nil, err
	}
	sc, ok := sr.schedules[k]
	if !ok {
		return nil, scheduleNotFound(k.name)
	}
	return sc.output(), nil
}

func (s *Server) deleteSchedule(sr *schedRegion, req *schedRequest) (any, *apiError) {
	k, err := req.scheduleKey()
	if err != nil {
		return nil, err
	}
	token := req.query.Get("clientToken")
	if _, ok := sr.schedules[k]; !ok {
		if token != "" && sr.deleted[k] == token {
			return nil, nil // the SDK retrying a delete whose answer it lost
		}
		return nil, scheduleNotFound(k.name)
	}
	delete(sr.schedules, k)
	sr.deleted[k] = token
	return nil, nil
}

// scheduleKey reads the schedule a GetSchedule or DeleteSchedule names:
// its path and its groupName query parameter.
func (req *schedRequest) scheduleKey() (schedKey, *apiError) {
	var v violations
	group := req.optional("groupName")
	v.name(&req.name, "name")
	v.name(group, "groupName")
	return schedKey{groupOf(group), req.name}, v.err()
}

type listSchedulesOutput struct {
	NextToken *string           `json:"NextToken,omitempty"`
	Schedules []scheduleSummary `json:"Schedules"`
}

// listSchedules lists schedules by group, then name.
func (s *Server) listSchedules(sr *schedRegion, req *schedRequest) (any, *apiError) {
	var v violations
	prefix, group, state := req.optional("NamePrefix"), req.optional("ScheduleGroup"), req.optional("State")
	v.name(prefix, "namePrefix")
	v.name(group, "groupName")
	v.enum(state, "state", "ENABLED", "DISABLED")
	pg, err := req.paging(&v)
	if err != nil {
		return nil, err
	}
	if group != nil {
		if _, ok := sr.groups[*group]; !ok {
			return nil, groupNotFound(*group)
		}
	}
	var items []*schedule
	for k, sc := range sr.schedules {
		if (prefix == nil || strings.HasPrefix(k.name, *prefix)) && (group == nil || k.group == *group) &&
			(state == nil || sc.state() == *state) {
			items = append(items, sc)
		}
	}
	key := func(sc *schedule) string { return sc.key.group + "/" + sc.key.name }
	slices.SortFunc(items, func(a, b *schedule) int { return strings.Compare(key(a), key(b)) })
	items, next := paginate(items, key, pg)
	out := listSchedulesOutput{Schedules: []scheduleSummary{}}
	for _, sc := range items {
		out.Schedules = append(out.Schedules, sc.summary())
	}
	if next != "" {
		out.NextToken = &next
	}
	return out, nil
}

// paging reads MaxResults (1 to 100; none means all) and NextToken,
// adding to v; it answers v's violations, or a bad token.
func (req *schedRequest) paging(v *violations) (page, *apiError) {
	var pg page
	if raw := req.optional("MaxResults"); raw != nil {
		n, err := strconv.Atoi(*raw)
		if err != nil {
			return pg, errf(CodeValidationException, "Value '%s' at 'maxResults' is not an integer.", *raw)
		}
		v.between(&n, "maxResults", 1, 100)
		pg.max = n
	}
	if err := v.err(); err != nil {
		return pg, err
	}
	if tok := req.query.Get("NextToken"); tok != "" {
		after, ok := decodeToken(tok)
		if !ok {
			return pg, errf(CodeValidationException, "Invalid NextToken %s.", tok)
		}
		pg.after = after
	}
	return pg, nil
}

type createGroupInput struct {
	ClientToken *string `json:"ClientToken"`
}

func (s *Server) createScheduleGroup(sr *schedRegion, req *schedRequest) (any, *apiError) {
	var in createGroupInput
	if err := req.decodeBody(&in); err != nil {
		return nil, err
	}
	var v violations
	v.name(&req.name, "name")
	v.length(in.ClientToken, "clientToken", 1, 64)
	v.pattern(in.ClientToken, "clientToken", clientTokenPattern)
	if err := v.err(); err != nil {
		return nil, err
	}
	token := ""
	if in.ClientToken != nil {
		token = *in.ClientToken
	}
	if g, ok := sr.groups[req.name]; ok {
		if token == "" || g.token != token {
			return nil, errf(CodeConflictException, "Schedule group %s already exists.", req.name)
		}
		return map[string]string{"ScheduleGroupArn": g.arn}, nil
	}
	now := s.now().UTC()
	g := &schedGroup{name: req.name, arn: s.groupARN(req.region, req.name), token: token, created: now, modified: now}
	sr.groups[g.name] = g
	return map[string]string{"ScheduleGroupArn": g.arn}, nil
}

func (s *Server) getScheduleGroup(sr *schedRegion, req *schedRequest) (any, *apiError) {
	var v violations
	v.name(&req.name, "name")
	if err := v.err(); err != nil {
		return nil, err
	}
	g, ok := sr.groups[req.name]
	if !ok {
		return nil, groupNotFound(req.name)
	}
	return g.output(), nil
}

// deleteScheduleGroup deletes a group and its schedules at once (Scheduler
// takes a while, showing the group as DELETING meanwhile).
func (s *Server) deleteScheduleGroup(sr *schedRegion, req *schedRequest) (any, *apiError) {
	var v violations
	v.name(&req.name, "name")
	if err := v.err(); err != nil {
		return nil, err
	}
	if req.name == DefaultScheduleGroup {
		return nil, errf(CodeValidationException, "The default schedule group cannot be deleted.")
	}
	if _, ok := sr.groups[req.name]; !ok {
		return nil, groupNotFound(req.name)
	}
	delete(sr.groups, req.name)
	maps.DeleteFunc(sr.schedules, func(k schedKey, _ *schedule) bool { return k.group == req.name })
	return nil, nil
}

type listGroupsOutput struct {
	NextToken      *string       `json:"NextToken,omitempty"`
	ScheduleGroups []groupOutput `json:"ScheduleGroups"`
}

func (s *Server) listScheduleGroups(sr *schedRegion, req *schedRequest) (any, *apiError) {
	var v violations
	prefix := req.optional("NamePrefix")
	v.name(prefix, "namePrefix")
	pg, err := req.paging(&v)
	if err != nil {
		return nil, err
	}
	var items []*schedGroup
	for name, g := range sr.groups {
		if prefix == nil || strings.HasPrefix(name, *prefix) {
			items = append(items, g)
		}
	}
	key := func(g *schedGroup) string { return g.name }
	slices.SortFunc(items, func(a, b *schedGroup) int { return strings.Compare(a.name, b.name) })
	items, next := paginate(items, key, pg)
	out := listGroupsOutput{ScheduleGroups: []groupOutput{}}
	for _, g := range items {
		out.ScheduleGroups = append(out.ScheduleGroups, g.output())
	}
	if next != "" {
		out.NextToken = &next
	}
	return out, nil
}
