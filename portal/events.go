package portal

import (
	"fmt"
	"net/http"
	"time"
)

// streamFor bounds one event stream, below the server's write timeout;
// the browser's EventSource reconnects, through the session check again.
const streamFor = 45 * time.Second

// events is a server-sent event stream that says "changed" whenever this
// server's store changes. It carries no data: a page that hears it
// re-fetches itself, through the same authorized handlers as any load, so
// the stream cannot show anyone what they may not see. Changes made by
// other replicas are not heard; pages also refresh on a slow timer.
func (p *Portal) events(w http.ResponseWriter, r *http.Request, _ session, _ string) {
	rc := http.NewResponseController(w)
	changed := p.cfg.Access.Changed()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 5000\n\n")
	if rc.Flush() != nil {
		return
	}
	end := p.cfg.Clock.Alarm(p.cfg.Clock.Now().Add(streamFor))
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-changed:
			changed = p.cfg.Access.Changed()
			fmt.Fprint(w, "event: changed\ndata: {}\n\n")
			if rc.Flush() != nil {
				return
			}
		}
	}
}
