package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

var (
	capturedMu sync.Mutex
	captured   []string
)

// capture records log lines and metric names for the leak scan in TestMain.
func capture(lines []string) {
	capturedMu.Lock()
	defer capturedMu.Unlock()
	captured = append(captured, lines...)
}

// TestMain fails the run if any real test value reached any log line or
// metric name captured by any test of this package.
func TestMain(m *testing.M) {
	code := m.Run()
	capturedMu.Lock()
	defer capturedMu.Unlock()
	for i, line := range captured {
		for j, v := range testValues {
			if strings.Contains(line, v) {
				// Name the line and the value by number: printing either would leak it.
				fmt.Fprintf(os.Stderr, "FAIL: captured line %d holds testValues[%d]\n", i, j)
				code = 1
			}
		}
	}
	os.Exit(code)
}
