package migrate

import (
	"fmt"
	"slices"
	"strings"
)

// Applied is one migration a release ran, as the rollback policy sees it.
type Applied struct {
	Migration Migration `json:"migration"`
	// Class is the worst class of its statements.
	Class Class `json:"class"`
	// Change summarizes what it did, for the incident.
	Change string `json:"change,omitempty"`
	// Down is the worst class of its down file, "" when it has none.
	Down Class `json:"down,omitempty"`
}

// Decision is what the rollback policy does with a release's migrations
// once traffic is back on the stable revision.
type Decision struct {
	// Revert are the migrations to run down, last first, in one
	// transaction; empty when nothing is reverted.
	Revert []Migration `json:"revert,omitempty"`
	// To is the schema version after the decision.
	To uint64 `json:"to"`
	// Frozen is set when a backward-incompatible change stays because it
	// cannot be reverted safely: Manual says what must be done by hand.
	Frozen bool     `json:"frozen,omitempty"`
	Manual []string `json:"manual,omitempty"`
	// Message says what happens and why, in words.
	Message string `json:"message"`
}

// OnRollback is the written policy for a release's migrations when the
// release is rolled back. from is the schema version before the release,
// applied its migrations in order, stable the revision traffic is back on.
//
//   - Compatible migrations stay: the stable code runs on the new schema
//     and no data is lost.
//   - The backward-incompatible ones (all acknowledged, or they would not
//     have run) are reverted with their down files, in one transaction,
//     together with every later migration of the release — only if each of
//     those has a down file that is not itself destructive and none of
//     them destroyed data.
//   - Otherwise the schema is frozen as the release left it, and Manual
//     says what must be done by hand.
func OnRollback(from uint64, applied []Applied, stable int) Decision {
	if len(applied) == 0 {
		return Decision{To: from, Message: "no migration ran; the schema is as it was"}
	}
	to := applied[len(applied)-1].Migration.Version
	low := uint64(0)
	for _, a := range applied {
		if a.Class == Incompatible {
			low = a.Migration.Version
			break
		}
	}
	who := "the stable revision"
	if stable > 0 {
		who = fmt.Sprintf("revision %d", stable)
	}
	if low == 0 {
		d := Decision{To: to, Message: fmt.Sprintf("migrations %s are compatible and stay: %s runs on schema version %d", names(applied), who, to)}
		for _, a := range applied {
			if a.Class == Destructive {
				d.Message = fmt.Sprintf("migrations %s stay: %s runs on schema version %d; what %s dropped is gone (no rollback brings data back)", names(applied), who, to, a.Migration)
				break
			}
		}
		return d
	}
	var revert []Migration
	var blocked []string
	for i := len(applied) - 1; i >= 0; i-- {
		a := applied[i]
		if a.Migration.Version < low {
			break
		}
		switch {
		case a.Class == Destructive:
			blocked = append(blocked, fmt.Sprintf("%s is destructive: what it dropped cannot be brought back", a.Migration))
		case a.Migration.Down == nil:
			blocked = append(blocked, fmt.Sprintf("%s has no down file", a.Migration))
		case a.Down == Destructive:
			blocked = append(blocked, fmt.Sprintf("the down file of %s is destructive", a.Migration))
		}
		revert = append(revert, a.Migration)
	}
	if len(blocked) == 0 {
		return Decision{Revert: revert, To: low - 1,
			Message: fmt.Sprintf("reverting %s with their down files in one transaction, now that traffic is back on %s: schema version %d → %d",
				names(revertApplied(applied, low)), who, to, low-1)}
	}
	d := Decision{To: to, Frozen: true,
		Message: fmt.Sprintf("the schema is frozen at version %d: %s; %s runs on a schema it was not written for", to, strings.Join(blocked, "; "), who)}
	for _, a := range applied {
		if a.Class != Incompatible {
			continue
		}
		step := fmt.Sprintf("%s (%s) stays although %s expects the schema before it: ", a.Migration, a.Change, who)
		switch {
		case a.Migration.Down != nil && a.Down == Destructive:
			step += fmt.Sprintf("its down file %s is destructive (it would lose what was written since): write a reverse that keeps the data and run it by hand, or roll forward with a release that works on both", a.Migration.Down.Path)
		case a.Migration.Down != nil:
			step += fmt.Sprintf("run %s by hand once nothing uses the new shape (after reverting the migrations above it), or roll forward with a release that works on both", a.Migration.Down.Path)
		default:
			step += "write its reverse by hand, or roll forward with a release that works on both"
		}
		d.Manual = append(d.Manual, step)
	}
	return d
}

func revertApplied(applied []Applied, low uint64) []Applied {
	i := slices.IndexFunc(applied, func(a Applied) bool { return a.Migration.Version >= low })
	return applied[i:]
}

func names(applied []Applied) string {
	var out []string
	for _, a := range applied {
		out = append(out, a.Migration.String())
	}
	return strings.Join(out, ", ")
}

// Recovery is what a restart found of the migrations lastgood was running
// when it stopped (internal/database's Recover), and what it did.
type Recovery struct {
	// Version is the database's schema version once the restart has
	// settled it.
	Version uint64
	// Notes say, for people, what a statement that runs by itself (outside
	// a transaction) had left and what became of it.
	Notes []string
}
