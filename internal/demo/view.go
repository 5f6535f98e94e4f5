package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lastgood/lastgood/internal/controller"
)

// show prints new events (plain mode) or redraws the live view.
func (s *story) show(ctx context.Context) error {
	evs, err := s.c.Events(ctx, "web", s.lastSeq)
	if err != nil {
		return err
	}
	for _, e := range evs {
		s.lastSeq = e.Seq
		line := fmt.Sprintf("  %s  %-20s %s", e.Time.Local().Format("15:04:05.000"), e.Type, e.Message)
		if !s.o.Live {
			fmt.Fprintln(s.o.Out, line)
			continue
		}
		s.events = append(s.events, line)
	}
	if !s.o.Live {
		return nil
	}
	if len(s.events) > 12 {
		s.events = s.events[len(s.events)-12:]
	}
	st, err := s.c.App(ctx, "web")
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&b, "lastgood demo — %s\n%s\n", s.act, strings.Repeat("─", 72))
	writeView(&b, st)
	served, failed, _ := s.clients.counts()
	fmt.Fprintf(&b, "\nclients   50 req/s: %s; failed %d\n\nevents\n", describeServed(served), failed)
	for _, e := range s.events {
		fmt.Fprintln(&b, e)
	}
	_, err = io.WriteString(s.o.Out, b.String())
	return err
}

func writeView(w io.Writer, st controller.AppStatus) {
	fmt.Fprintf(w, "app       %s on %s, stable revision %d\n", st.Name, st.Listen, st.Stable)
	if r := st.Rollout; r != nil {
		fmt.Fprintf(w, "rollout   #%d revision %d → %d (%s): %s\n", r.ID, r.From, r.To, r.Strategy, r.Phase)
	}
	total := 0
	for _, r := range st.Traffic {
		if len(r.Backends) > 0 {
			total += r.Weight
		}
	}
	fmt.Fprintln(w, "traffic")
	for _, r := range st.Traffic {
		pct := 0
		if total > 0 && len(r.Backends) > 0 {
			pct = r.Weight * 100 / total
		}
		fmt.Fprintf(w, "  revision %-3d %-40s %3d%%\n", r.Revision, strings.Repeat("█", pct*40/100), pct)
	}
	if r := st.Rollout; r != nil && len(r.Checks) > 0 {
		fmt.Fprintln(w, "checks")
		for _, c := range r.Checks {
			fmt.Fprintf(w, "  %-8s %-13s %s\n", c.Check, c.Verdict, c.Reason)
		}
	}
	byRev := map[int][]string{}
	for _, r := range st.Replicas {
		byRev[r.Revision] = append(byRev[r.Revision], fmt.Sprintf("%s %s", r.ID, r.State))
	}
	revs := make([]int, 0, len(byRev))
	for rev := range byRev {
		revs = append(revs, rev)
	}
	sort.Ints(revs)
	fmt.Fprintln(w, "replicas")
	for _, rev := range revs {
		fmt.Fprintf(w, "  %s\n", strings.Join(byRev[rev], "   "))
	}
}
