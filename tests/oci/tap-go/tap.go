// Package tap writes the Test Anything Protocol (TAP version 13).
//
// The opencontainers runtime-tools validation tests import github.com/mndrix/tap-go, which
// Debian does not package. This is a small implementation of the part of its interface they
// use (New, Header, Ok, Fail, Skip, Todo, Diagnostic, Diagnosticf, YAML, AutoPlan), written for
// minibox's conformance tier (tests/oci/runtime-tools.sh), so the suite builds from Debian's
// packages alone.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is a TAP producer writing to Writer (standard output by default).
type T struct {
	Writer    io.Writer
	counter   *int   // shared with the T that Todo returns
	directive string // " # TODO" for a test expected to fail
}

// New starts a TAP stream on standard output.
func New() *T {
	n := 0
	return &T{Writer: os.Stdout, counter: &n}
}

// Todo returns a T whose next tests are marked TODO (known not to work yet).
func (t *T) Todo() *T {
	todo := *t
	todo.directive = " # TODO"
	return &todo
}

func (t *T) out() io.Writer {
	if t.Writer == nil {
		return os.Stdout
	}
	return t.Writer
}

// Header prints the version line and, when the number of tests is known, the plan.
func (t *T) Header(testCount int) {
	fmt.Fprintln(t.out(), "TAP version 13")
	if testCount > 0 {
		fmt.Fprintf(t.out(), "1..%d\n", testCount)
	}
}

// Ok records one test: "ok N - description" or "not ok N - description".
func (t *T) Ok(test bool, description string) {
	*t.counter++
	status := "ok"
	if !test {
		status = "not ok"
	}
	fmt.Fprintf(t.out(), "%s %d - %s%s\n", status, *t.counter, description, t.directive)
}

// Fail records a failed test.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Pass records a passed test.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Skip records count skipped tests.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		*t.counter++
		fmt.Fprintf(t.out(), "ok %d # SKIP %s\n", *t.counter, description)
	}
}

// Count is the number of tests recorded so far.
func (t *T) Count() int { return *t.counter }

// AutoPlan prints the plan after the fact (for a Header(0) stream).
func (t *T) AutoPlan() { fmt.Fprintf(t.out(), "1..%d\n", *t.counter) }

// Diagnostic prints a comment line per line of message.
func (t *T) Diagnostic(message string) {
	for _, line := range strings.Split(strings.TrimRight(message, "\n"), "\n") {
		fmt.Fprintf(t.out(), "# %s\n", line)
	}
}

// Diagnosticf is Diagnostic with formatting.
func (t *T) Diagnosticf(format string, a ...interface{}) { t.Diagnostic(fmt.Sprintf(format, a...)) }

// YAML prints a TAP 13 YAML block holding message (as indented JSON, which YAML reads).
func (t *T) YAML(message interface{}) error {
	data, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(t.out(), "  ---\n  %s\n  ...\n", data)
	return nil
}
