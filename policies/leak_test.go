package policies

import (
	"strings"
	"testing"
)

// fakeLeak stands for a real value pasted where it does not belong. It is
// neither a name (it has '-') nor a host (it has '_'); fakeLabel is the same
// without '_', so it is a valid DNS label.
const (
	fakeLeak  = "sk-test-LEAK_0123456789abcdef"
	fakeLabel = "sk-test-LEAK-0123456789abcdef"
)

// showsLeak reports whether msg holds more of fake than the first
// shownKeyBytes bytes a key that cannot be a name may show.
func showsLeak(msg, fake string) bool {
	for i := 0; i+shownKeyBytes < len(fake); i++ {
		if strings.Contains(msg, fake[i:i+shownKeyBytes+1]) {
			return true
		}
	}
	return false
}

// Every string of a configuration that could hold a misplaced value, made
// wrong in every way that position can be wrong: each is rejected and no
// error shows the value.
func TestConfigErrorsNeverShowAValue(t *testing.T) {
	const ph = `"placeholder": "sgp_custom_000000000000000000008"`
	custom := func(fields string) string { return config(`"CUSTOM_API_KEY": {` + fields + `}`) }
	withHosts := func(hosts ...string) string {
		return custom(ph + `, "value": "custom-test-value-1", "hosts": ["` + strings.Join(hosts, `", "`) + `"]`)
	}
	configs := map[string]string{
		"host":                   withHosts(fakeLeak),
		"host after a good one":  withHosts("api.example.com", fakeLeak),
		"host url":               withHosts("https://api.example.com/?key=" + fakeLeak),
		"host path":              withHosts("api.example.com/" + fakeLeak),
		"host userinfo":          withHosts(fakeLeak + "@api.example.com"),
		"host port":              withHosts("api.example.com:" + fakeLeak),
		"host with a port":       withHosts(fakeLeak + ":8443"),
		"host wildcard":          withHosts("*." + fakeLeak),
		"host wildcard inside":   withHosts(fakeLeak + ".*.example.com"),
		"host label":             withHosts(fakeLeak + ".example.com"),
		"host ipv6":              withHosts("[" + fakeLeak + "]"),
		"host ipv6 without":      withHosts("2001:db8::" + fakeLeak),
		"host a label":           withHosts(fakeLabel),
		"host a label, second":   withHosts("api.example.com", fakeLabel),
		"host repeated":          withHosts(strings.ToLower(fakeLabel)+".example.com", fakeLabel+".example.com."),
		"host long label":        withHosts(fakeLabel + fakeLabel + fakeLabel + ".example.com"),
		"host hyphen":            withHosts(fakeLabel + "-.example.com"),
		"host empty label":       withHosts(fakeLabel + "..example.com"),
		"host non-ascii":         withHosts(fakeLabel + "é.example.com"),
		"name":                   config(`"` + fakeLeak + `": {` + ph + `, "value": "custom-test-value-1", "hosts": ["api.example.com"]}`),
		"secret field":           custom(ph + `, "value": "custom-test-value-1", "hosts": ["api.example.com"], "` + fakeLeak + `": 1`),
		"top-level field":        `{"session": "s", "` + fakeLeak + `": 1, "secrets": {}}`,
		"session control":        `{"session": "` + fakeLeak + `\n", "secrets": {}}`,
		"session non-ascii":      `{"session": "é` + fakeLeak + `", "secrets": {}}`,
		"session long":           `{"session": "` + strings.Repeat(fakeLeak, 5) + `", "secrets": {}}`,
		"on_disallowed":          `{"session": "s", "on_disallowed": "` + fakeLeak + `", "secrets": {}}`,
		"secret on_disallowed":   custom(ph + `, "value": "custom-test-value-1", "hosts": ["api.example.com"], "on_disallowed": "` + fakeLeak + `"`),
		"placeholder byte":       custom(`"placeholder": "` + fakeLeak + `/", "value": "custom-test-value-1", "hosts": ["api.example.com"]`),
		"placeholder short":      custom(`"placeholder": "` + fakeLeak[:15] + `", "value": "custom-test-value-1", "hosts": ["api.example.com"]`),
		"placeholder in a value": custom(`"placeholder": "` + fakeLeak + `", "value": "` + fakeLeak + `", "hosts": ["api.example.com"]`),
		"placeholder shared": config(`"A": {"placeholder": "`+fakeLeak+`", "value": "custom-test-value-1", "hosts": ["api.example.com"]}`,
			`"B": {"placeholder": "`+fakeLeak+`", "value": "custom-test-value-2", "hosts": ["api.example.com"]}`),
		"placeholder inside another": config(`"A": {"placeholder": "`+fakeLeak+`", "value": "custom-test-value-1", "hosts": ["api.example.com"]}`,
			`"B": {"placeholder": "`+fakeLeak+`x", "value": "custom-test-value-2", "hosts": ["api.example.com"]}`),
		"value crlf":              custom(ph + `, "value": "` + fakeLeak + `\r\nx", "hosts": ["api.example.com"]`),
		"value spaces":            custom(ph + `, "value": " ` + fakeLeak + `", "hosts": ["api.example.com"]`),
		"value non-ascii":         custom(ph + `, "value": "` + fakeLeak + `é", "hosts": ["api.example.com"]`),
		"unterminated json":       `{"session": "s", "secrets": {"CUSTOM_API_KEY": {"value": "` + fakeLeak,
		"json after a value":      custom(ph + `, "value": "` + fakeLeak + `" "hosts": ["api.example.com"]`),
		"invalid utf-8 in json":   `{"session": "s", "secrets": {"CUSTOM_API_KEY": {"value": "` + fakeLeak + "\xff" + `"}}}`,
		"value not quoted":        `{"session": "s", "secrets": {"CUSTOM_API_KEY": {"value": ` + fakeLeak + `}}}`,
		"value escaped and wrong": custom(ph + `, "value": "` + fakeLeak + `\u0000", "hosts": ["api.example.com"]`),
	}
	for name, c := range configs {
		s, err := ParseConfig([]byte(c))
		if err == nil {
			t.Errorf("%s: accepted %+v", name, s)
			continue
		}
		if showsLeak(err.Error(), fakeLeak) || showsLeak(err.Error(), fakeLabel) || showsLeak(strings.ToLower(err.Error()), strings.ToLower(fakeLeak)) {
			t.Errorf("%s: error shows the value: %v", name, err)
		}
	}

	clientForms := map[string]string{
		"tuple swapped":          `{"CUSTOM_API_KEY": ["api.example.com", ["` + fakeLeak + `"]]}`,
		"tuple swapped, a label": `{"CUSTOM_API_KEY": ["api.example.com", ["` + fakeLabel + `"]]}`,
		"tuple reversed":         `{"CUSTOM_API_KEY": [["api.example.com"], "` + fakeLeak + `"]}`,
		"tuple host url":         `{"CUSTOM_API_KEY": ["custom-test-value-1", ["https://api.example.com/?key=` + fakeLeak + `"]]}`,
		"tuple hosts a string":   `{"CUSTOM_API_KEY": ["custom-test-value-1", "` + fakeLeak + `"]}`,
		"tuple one element":      `{"CUSTOM_API_KEY": ["` + fakeLeak + `"]}`,
		"tuple value crlf":       `{"CUSTOM_API_KEY": ["` + fakeLeak + `\r\nx", ["api.example.com"]]}`,
		"plain without defaults": `{"CUSTOM_API_KEY": "` + fakeLeak + `"}`,
		"plain value bad":        `{"OPENAI_API_KEY": "` + fakeLeak + `\t"}`,
		"name":                   `{"` + fakeLeak + `": "custom-test-value-1"}`,
		"unterminated json":      `{"OPENAI_API_KEY": "` + fakeLeak,
		"invalid utf-8 in json":  `{"OPENAI_API_KEY": "` + fakeLeak + "\xc3" + `"}`,
	}
	for name, c := range clientForms {
		got, err := ParseClientSecrets([]byte(c))
		if err == nil {
			t.Errorf("client form %s: accepted %v", name, got)
			continue
		}
		if showsLeak(err.Error(), fakeLeak) {
			t.Errorf("client form %s: error shows the value: %v", name, err)
		}
	}

	for _, hosts := range [][]string{{fakeLeak}, {fakeLabel}, {"api.example.com", fakeLeak}, {"https://" + fakeLeak}} {
		_, _, err := NewSessionConfig("ep-2c9f", []ClientSecret{{Name: "CUSTOM_API_KEY", Value: NewValue([]byte("custom-test-value-1")), Hosts: hosts}}, Deny)
		if err == nil || showsLeak(err.Error(), fakeLeak) {
			t.Errorf("NewSessionConfig with hosts %q: error %v", hosts, err)
		}
	}
}
