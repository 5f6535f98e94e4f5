package cli

import (
	"context"
	"os"

	"github.com/lastgood/lastgood/internal/demo"
)

func init() {
	register(&command{name: "demo", nargs: [2]int{0, 0}, local: true, examples: []string{"lastgood demo"},
		summary: "build a sample app, start lastgood on a temporary directory, and watch a bad release come back",
		run: func(ctx context.Context, e *Env, o *options) error {
			return demo.Run(ctx, demo.Options{Out: e.Stdout, Live: isTerminal(e.Stdout), Version: Version})
		}})
}

// isTerminal reports whether w is a character device, where the demo can
// redraw its view in place.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
