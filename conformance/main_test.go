package conformance

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

// provedChecks records every check that a test has shown failing on a
// response that breaks its rule.
var provedChecks sync.Map

// TestMain runs the tests and then, when the whole package ran and
// passed, fails if a registered check has no test that shows it failing.
func TestMain(m *testing.M) {
	code := m.Run()
	if code != 0 || flag.Lookup("test.run").Value.String() != "" || testing.Short() {
		os.Exit(code)
	}
	var missing []string
	for id := range checkRegistry {
		if _, proved := provedChecks.Load(id); !proved {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		fmt.Fprintf(os.Stderr, "FAIL: %d registered checks have no test that shows them failing:\n  %s\n", len(missing), strings.Join(missing, "\n  "))
		os.Exit(1)
	}
	os.Exit(code)
}

// expectFinding fails the test unless findings hold check c with
// severity s, and records c as proved.
func expectFinding(t testing.TB, findings []Finding, c *Check, s Severity) {
	t.Helper()
	for _, f := range findings {
		if f.Check == c.ID && f.Severity == s {
			provedChecks.Store(c.ID, true)
			return
		}
	}
	t.Errorf("expected a %s finding of %s, got:\n%s", s, c.ID, formatFindings(findings))
}

// expectNoFailure fails the test if findings hold a failure or warning.
func expectNoFailure(t testing.TB, findings []Finding) {
	t.Helper()
	for _, f := range findings {
		if f.Severity == Fatal || f.Severity == Failure || f.Severity == Warning {
			t.Errorf("unexpected finding: %s %s", f.Severity, f)
		}
	}
}

func formatFindings(findings []Finding) string {
	if len(findings) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, f := range findings {
		fmt.Fprintf(&b, "  %s %s\n", f.Severity, oneLine(f.String()))
	}
	return b.String()
}

// expectModule fails the test unless the named module of the report ended
// with result and holds a finding of check c with severity s. The report
// must hold the module in one variant only.
func expectModule(t testing.TB, report *Report, module string, result Result, c *Check, s Severity) {
	t.Helper()
	expectModuleVariant(t, report, "", module, result, c, s)
}

// expectModuleVariant is expectModule for the module in one variant; an
// empty variant matches the only one.
func expectModuleVariant(t testing.TB, report *Report, variant, module string, result Result, c *Check, s Severity) {
	t.Helper()
	var m *ModuleReport
	for _, candidate := range report.Modules {
		if candidate.Module != module || (variant != "" && candidate.Variant != variant) {
			continue
		}
		if m != nil {
			t.Fatalf("the report has %s in more than one variant", module)
		}
		m = candidate
	}
	if m == nil {
		t.Fatalf("the report has no module %s", module)
	}
	if m.Result != result {
		t.Errorf("%s ended %s, expected %s (reason: %s)\n%s", module, m.Result, result, m.Reason, formatFindings(m.Findings))
	}
	findings := m.Findings
	if s == Extra {
		findings = m.Extras
	}
	expectFinding(t, findings, c, s)
}
