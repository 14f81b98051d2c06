package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// Severity is how much a failed check weighs, with the codes of the
// official suite: a failure that stops the module (F!), a failure (F), a
// warning (W), information (I), and EXTRA for rules the specifications set
// but the suite does not test.
type Severity string

const (
	// Fatal marks a failure after which the module stops at once.
	Fatal Severity = "F!"
	// Failure marks a failure; the module goes on and ends FAILED.
	Failure Severity = "F"
	// Warning makes the module end WARNING unless something failed.
	Warning Severity = "W"
	// Info is recorded in the JSON report and changes nothing.
	Info Severity = "I"
	// Extra marks a finding outside certification. It never changes a
	// module's result, and changes the exit code only with --strict.
	Extra Severity = "EXTRA"
)

// Finding is one check that did not hold, or an informational note.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return f.Check + ": " + f.Message
}

// Check is a rule of the harness. Its ID is the name of the official
// suite's condition that makes the same check where one exists, so that
// reports line up with the suite's logs.
type Check struct {
	ID      string
	Summary string
}

// checkRegistry holds every check by ID. The tests fail when a registered
// check has no test that shows it failing.
var checkRegistry = map[string]*Check{}

func defineCheck(id, summary string) *Check {
	if _, exists := checkRegistry[id]; exists {
		panic("conformance: check defined twice: " + id)
	}
	c := &Check{ID: id, Summary: summary}
	checkRegistry[id] = c
	return c
}

// Checks returns every check of the harness, sorted by ID.
func Checks() []Check {
	all := make([]Check, 0, len(checkRegistry))
	for _, c := range checkRegistry {
		all = append(all, *c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all
}

// recorder receives findings. A module run stops at a Fatal finding; a
// findingList used by the check functions' callers and tests only collects.
type recorder interface {
	record(Finding)
}

// report records a finding of check c with severity s.
func report(r recorder, c *Check, s Severity, format string, args ...any) {
	r.record(Finding{Check: c.ID, Severity: s, Message: fmt.Sprintf(format, args...)})
}

// findingList collects findings without stopping at a fatal one.
type findingList []Finding

func (l *findingList) record(f Finding) { *l = append(*l, f) }

// bodyErrorMembers are the members of a JSON response whose values
// describeBody prints. Every other member may hold a secret, such as
// client_secret, registration_access_token, access_token or refresh_token.
var bodyErrorMembers = []string{"error", "error_description", "error_uri"}

// describeBody summarizes a response body for a message without its
// secrets: the Content-Type, and for a JSON object its member names and
// the values of its error members only. Other bodies are described by
// their length.
func describeBody(header http.Header, body []byte) string {
	summary := fmt.Sprintf("Content-Type %q", header.Get("Content-Type"))
	var object map[string]any
	if json.Unmarshal(body, &object) != nil || object == nil {
		return fmt.Sprintf("%s, a body of %d bytes that is not a JSON object", summary, len(body))
	}
	names := make([]string, 0, len(object))
	for name := range object {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		if slices.Contains(bodyErrorMembers, name) {
			names[i] = name + "=" + oneLine(compactJSON(object[name]))
		}
	}
	return fmt.Sprintf("%s, JSON members: %s", summary, strings.Join(names, ", "))
}
