package conformance

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// expectedSkips are the modules that may be SKIPPED against Latchkey,
// because Latchkey deliberately lacks the feature they test.
var expectedSkips = map[string]string{
	"oidcc-registration-sector-uri": "pairwise subjects",
	"oidcc-registration-sector-bad": "pairwise subjects",
	"oidcc-idtoken-unsigned":        "unsigned ID tokens (alg none)",
}

// TestPlansAgainstLatchkey runs every plan against an in-process Latchkey
// and expects no module to fail. LATCHKEY_CONFORMANCE_PLANS and
// LATCHKEY_CONFORMANCE_MODULES (comma-separated) narrow the run, and
// LATCHKEY_CONFORMANCE_RESPONSE_TYPE sets the dynamic plan's response type.
func TestPlansAgainstLatchkey(t *testing.T) {
	op := newTestProvider(t, nil)
	plans := []string{"all"}
	if selected := os.Getenv("LATCHKEY_CONFORMANCE_PLANS"); selected != "" {
		plans = strings.Split(selected, ",")
	}
	opts := op.options(t, true, plans...)
	if selected := os.Getenv("LATCHKEY_CONFORMANCE_MODULES"); selected != "" {
		opts.Modules = strings.Split(selected, ",")
	}
	opts.ResponseType = os.Getenv("LATCHKEY_CONFORMANCE_RESPONSE_TYPE")
	report := run(t, opts)

	var text bytes.Buffer
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("conformance report:\n%s", text.String())
	if len(report.Modules) == 0 {
		t.Fatal("the run had no modules")
	}
	for _, m := range report.Modules {
		switch m.Result {
		case ResultFailed:
			t.Errorf("%s %s %s FAILED: %s", m.Plan, m.Variant, m.Module, m.Reason)
		case ResultSkipped:
			if _, expected := expectedSkips[m.Module]; !expected && os.Getenv("LATCHKEY_SKIP_BROWSER") != "1" {
				t.Errorf("%s %s %s SKIPPED unexpectedly: %s", m.Plan, m.Variant, m.Module, m.Reason)
			}
		}
	}
}
