package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is a module's outcome, with the official suite's names.
type Result string

const (
	ResultPassed  Result = "PASSED"
	ResultWarning Result = "WARNING"
	ResultFailed  Result = "FAILED"
	ResultSkipped Result = "SKIPPED"
	ResultReview  Result = "REVIEW"
	// ResultInterrupted is the harness's own result, not the suite's: the
	// run was cancelled before the module started or while it ran.
	ResultInterrupted Result = "INTERRUPTED"
)

// ModuleReport is the outcome of one module in one plan and variant.
type ModuleReport struct {
	Plan    string `json:"plan"`
	Variant string `json:"variant"`
	Module  string `json:"module"`
	Result  Result `json:"result"`
	// Reason is the first failure, warning or skip that decided Result,
	// as "CheckID: message", or what a reviewer must look at for REVIEW.
	Reason string `json:"reason,omitempty"`
	// Findings lists every finding of the module, information included,
	// but not the EXTRA ones.
	Findings []Finding `json:"findings,omitempty"`
	// Extras lists the findings outside certification.
	Extras []Finding `json:"extras,omitempty"`
	// Screenshots are the files saved for a human to review.
	Screenshots []string      `json:"screenshots,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
}

// combineResult applies the official suite's rules: any failure gives
// FAILED; otherwise a skip gives SKIPPED; otherwise a warning gives
// WARNING; otherwise a screenshot placeholder gives REVIEW; otherwise
// PASSED. It returns the result and its reason.
func combineResult(findings []Finding, skipReason string, screenshots []string, reviewReason string) (Result, string) {
	for _, f := range findings {
		if f.Severity == Fatal || f.Severity == Failure {
			return ResultFailed, f.String()
		}
	}
	if skipReason != "" {
		return ResultSkipped, skipReason
	}
	for _, f := range findings {
		if f.Severity == Warning {
			return ResultWarning, f.String()
		}
	}
	if len(screenshots) > 0 || reviewReason != "" {
		return ResultReview, reviewReason
	}
	return ResultPassed, ""
}

// Report is the outcome of a conformance run.
type Report struct {
	Issuer   string          `json:"issuer"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Modules  []*ModuleReport `json:"modules"`
	Counts   Counts          `json:"counts"`
}

// Counts counts the modules of a report by result.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Warning int `json:"warning"`
	Skipped int `json:"skipped"`
	Review  int `json:"review"`
	// Interrupted counts the modules that the run's cancellation cut short
	// or kept from starting. They count neither as passed nor as failed.
	Interrupted int `json:"interrupted"`
	// Extras counts the EXTRA findings of all modules.
	Extras int `json:"extras"`
}

func (r *Report) count() {
	r.Counts = Counts{}
	for _, m := range r.Modules {
		switch m.Result {
		case ResultPassed:
			r.Counts.Passed++
		case ResultFailed:
			r.Counts.Failed++
		case ResultWarning:
			r.Counts.Warning++
		case ResultSkipped:
			r.Counts.Skipped++
		case ResultReview:
			r.Counts.Review++
		case ResultInterrupted:
			r.Counts.Interrupted++
		}
		r.Counts.Extras += len(m.Extras)
	}
}

// Failed reports whether any module FAILED.
func (r *Report) Failed() bool {
	for _, m := range r.Modules {
		if m.Result == ResultFailed {
			return true
		}
	}
	return false
}

// Module returns the report of the named module in plan and variant, or
// nil. An empty variant matches any.
func (r *Report) Module(plan, variant, module string) *ModuleReport {
	for _, m := range r.Modules {
		if m.Plan == plan && m.Module == module && (variant == "" || m.Variant == variant) {
			return m
		}
	}
	return nil
}

// WriteText writes the result table, the EXTRA findings and the counts.
// Its last line is exactly "N passed, N failed".
func (r *Report) WriteText(w io.Writer) error {
	table := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "PLAN\tVARIANT\tMODULE\tRESULT\tREASON")
	for _, m := range r.Modules {
		fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%s\n", m.Plan, m.Variant, m.Module, m.Result, oneLine(m.Reason))
	}
	if err := table.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Extra checks (not part of certification)")
	extras := 0
	for _, m := range r.Modules {
		for _, f := range m.Extras {
			fmt.Fprintf(w, "  %s %s %s: %s\n", m.Plan, m.Variant, m.Module, oneLine(f.String()))
			extras++
		}
	}
	if extras == 0 {
		fmt.Fprintln(w, "  none")
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d warnings, %d skipped, %d review, %d interrupted, %d extra findings\n",
		r.Counts.Warning, r.Counts.Skipped, r.Counts.Review, r.Counts.Interrupted, r.Counts.Extras)
	_, err := fmt.Fprintf(w, "%d passed, %d failed\n", r.Counts.Passed, r.Counts.Failed)
	return err
}

// WriteJSONFile writes the report as indented JSON to path.
func (r *Report) WriteJSONFile(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const maxLength = 200
	if len(s) > maxLength {
		return s[:maxLength] + "..."
	}
	return s
}
