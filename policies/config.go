package policies

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// ErrInvalidConfig is matched (errors.Is) by every error ParseConfig and
// ParseClientSecrets return.
var ErrInvalidConfig = errors.New("invalid configuration")

// FieldError is one problem in a configuration: the field's path, such as
// "secrets.OPENAI_API_KEY.hosts[1]", and why. It never holds a secret value.
//
// Any string of a configuration may be a value pasted into the wrong place,
// and errors reach logs, so every error follows one rule: it names the
// field by its path, where a key that cannot be a name shows at most its
// first shownKeyBytes bytes (childPath); it says what is wrong and, where
// a byte is at fault, the byte's offset; it quotes no other input, not
// even the offending byte.
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }

func (e *FieldError) Is(target error) bool { return target == ErrInvalidConfig }

const (
	maxNameLen      = 128
	maxSessionIDLen = 128
)

// problems collects the first problem of each field; err sorts them by path,
// indexes by number, so the same input always gives the same error.
type problems []*FieldError

func (p *problems) add(path, format string, args ...any) {
	if p.has(path) {
		return
	}
	*p = append(*p, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (p problems) has(path string) bool {
	return slices.ContainsFunc(p, func(e *FieldError) bool { return e.Path == path })
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.SortStableFunc(p, func(a, b *FieldError) int { return comparePaths(a.Path, b.Path) })
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// comparePaths orders field paths bytewise, except that two array indexes
// at the same place compare as numbers: hosts[2] before hosts[10].
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		if ia, ra, ok := cutIndex(a); ok {
			if ib, rb, ok := cutIndex(b); ok {
				if c := cmp.Or(cmp.Compare(len(ia), len(ib)), strings.Compare(ia, ib)); c != 0 {
					return c
				}
				a, b = ra, rb
				continue
			}
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// cutIndex splits "[12]rest" into "12" and "rest". Indexes are written
// without leading zeros, so a longer one is a greater one.
func cutIndex(s string) (index, rest string, ok bool) {
	if len(s) < 3 || s[0] != '[' {
		return "", "", false
	}
	n := 1
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 1 || n == len(s) || s[n] != ']' {
		return "", "", false
	}
	return s[1:n], s[n+1:], true
}

// parseDocument checks that data is one JSON object. A document that is not
// JSON is reported with the offset of its first problem (jsonProblem).
func parseDocument(data []byte, path string) (gjson.Result, error) {
	if !utf8.Valid(data) || !gjson.ValidBytes(data) {
		reason := jsonProblem(data)
		if reason == "" { // gjson and jsonProblem disagree, which FuzzJSONProblem rules out
			reason = "invalid json"
		}
		return gjson.Result{}, &FieldError{Path: path, Reason: reason}
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return gjson.Result{}, &FieldError{Path: path, Reason: "must be a json object"}
	}
	return root, nil
}

// eachField calls fn for each key of obj, reporting a repeated key instead.
// path is obj's own path ("" for the document).
func eachField(obj gjson.Result, path string, p *problems, fn func(key, path string, v gjson.Result)) {
	seen := map[string]bool{}
	obj.ForEach(func(k, v gjson.Result) bool {
		key, kpath := k.Str, childPath(path, k.Str)
		if seen[key] {
			p.add(kpath, "duplicate key")
			return true
		}
		seen[key] = true
		fn(key, kpath, v)
		return true
	})
}

// childPath is path.key when key could be a secret name, else path["key"].
// A key that cannot be a name may be a value pasted in the wrong place, and
// errors reach logs: beyond shownKeyBytes, only its start and length show,
// as in secrets["sk-ant…" (23 bytes)].
func childPath(path, key string) string {
	switch {
	case isIdentifier(key) && len(key) <= maxNameLen:
		if path == "" {
			return key
		}
		return path + "." + key
	case len(key) <= shownKeyBytes:
		return fmt.Sprintf("%s[%q]", path, key)
	}
	shown := shownKeyBytes
	for shown > 0 && !utf8.RuneStart(key[shown]) {
		shown-- // do not split a character
	}
	quoted := strconv.Quote(key[:shown])
	return fmt.Sprintf("%s[%s…\" (%d bytes)]", path, quoted[:len(quoted)-1], len(key))
}

// shownKeyBytes is how much of a key that cannot be a name an error shows.
const shownKeyBytes = 6

func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkName reports whether name can be a secret name, which also ends up in
// metric names.
func checkName(name, path string, p *problems) bool {
	if !isIdentifier(name) || len(name) > maxNameLen {
		p.add(path, "name must match [A-Za-z_][A-Za-z0-9_]* and be at most %d bytes", maxNameLen)
		return false
	}
	return true
}

func parseMode(v gjson.Result, path string, p *problems) (Mode, bool) {
	switch {
	case v.Type == gjson.String && v.Str == "passthrough":
		return Passthrough, true
	case v.Type == gjson.String && v.Str == "deny":
		return Deny, true
	}
	p.add(path, `must be "passthrough" or "deny"`)
	return Passthrough, false
}

// checkValue trims one trailing line break (values read from files end in
// one) and rejects what cannot go into a header: HTTP strips the spaces and
// tabs around a header value, so a value with them would arrive corrupted.
// Reasons name offsets only.
func checkValue(raw []byte) ([]byte, string) {
	v := raw
	if b, ok := bytes.CutSuffix(v, []byte("\r\n")); ok {
		v = b
	} else if b, ok := bytes.CutSuffix(v, []byte("\n")); ok {
		v = b
	}
	if len(v) == 0 {
		if len(raw) > 0 {
			return nil, "empty after trimming the trailing line break"
		}
		return nil, "must not be empty"
	}
	if isSpaceOrTab(v[0]) || isSpaceOrTab(v[len(v)-1]) {
		return nil, "leading or trailing whitespace"
	}
	for i, c := range v {
		if c < 0x20 || c == 0x7f {
			return nil, fmt.Sprintf("contains a control byte at offset %d", i)
		}
		if c >= 0x80 {
			return nil, fmt.Sprintf("contains a non-ascii byte at offset %d; values must be printable ascii to go into headers", i)
		}
	}
	return v, ""
}

func isSpaceOrTab(c byte) bool { return c == ' ' || c == '\t' }

// parseValue reads a secret value from v; nil when it is not valid.
func parseValue(v gjson.Result, path string, p *problems) []byte {
	if v.Type != gjson.String {
		p.add(path, "must be a string")
		return nil
	}
	b, reason := checkValue([]byte(v.Str))
	if reason != "" {
		p.add(path, "%s", reason)
	}
	return b
}

// parseHostList reads a non-empty array of host entries, canonicalised and
// without duplicates. Problems go to p; the rules are then incomplete.
func parseHostList(v gjson.Result, path string, p *problems) []HostRule {
	if !v.IsArray() {
		p.add(path, "must be an array of strings")
		return nil
	}
	elems := v.Array()
	if len(elems) == 0 {
		p.add(path, "must not be empty")
		return nil
	}
	rules := make([]HostRule, 0, len(elems))
	firstAt := make(map[HostRule]int, len(elems))
	for i, e := range elems {
		epath := fmt.Sprintf("%s[%d]", path, i)
		if e.Type != gjson.String {
			p.add(epath, "must be a string")
			continue
		}
		r, err := ParseHostRule(e.Str)
		if err != nil {
			p.add(epath, "%v", err)
			continue
		}
		if j, seen := firstAt[r]; seen {
			p.add(epath, "same host as %s[%d] once canonicalised", path, j)
			continue
		}
		firstAt[r] = i
		rules = append(rules, r)
	}
	return rules
}

// defaultHostRules gives the parsed default hosts for name.
func defaultHostRules(name string) ([]HostRule, bool) {
	hosts, ok := defaultHosts[name]
	if !ok {
		return nil, false
	}
	rules := make([]HostRule, len(hosts))
	for i, h := range hosts {
		r, err := ParseHostRule(h)
		if err != nil {
			panic("policies: default host " + h + ": " + err.Error())
		}
		rules[i] = r
	}
	return rules, true
}

// parsedSecret is a secret while its placeholder is checked against the others.
type parsedSecret struct {
	Secret
	path    string
	value   []byte // nil when invalid
	phValid bool
	modeSet bool
}

func parseConfig(data []byte) (*Session, error) {
	root, err := parseDocument(data, "config")
	if err != nil {
		return nil, err
	}
	var p problems
	s := &Session{}
	var sawSession, sawSecrets bool
	var secretsField gjson.Result
	eachField(root, "", &p, func(key, path string, v gjson.Result) {
		switch key {
		case "session":
			sawSession = true
			s.ID = parseSessionID(v, path, &p)
		case "on_disallowed":
			s.OnDisallowed, _ = parseMode(v, path, &p)
		case "secrets":
			sawSecrets = true
			secretsField = v
		default:
			p.add(path, "unknown field")
		}
	})
	if !sawSession {
		p.add("session", "required")
	}
	var secrets []*parsedSecret
	switch {
	case !sawSecrets:
		p.add("secrets", "required")
	case !secretsField.IsObject():
		p.add("secrets", "must be an object")
	default:
		n := 0
		eachField(secretsField, "secrets", &p, func(name, path string, v gjson.Result) {
			n++
			if !checkName(name, path, &p) {
				return
			}
			if ps := parseSecret(name, path, v, &p); ps != nil {
				secrets = append(secrets, ps)
			}
		})
		if n == 0 {
			p.add("secrets", "must hold at least one secret")
		}
	}
	slices.SortFunc(secrets, func(a, b *parsedSecret) int { return strings.Compare(a.Name, b.Name) })
	checkPlaceholdersApart(secrets, &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	s.Secrets = make([]Secret, len(secrets))
	for i, ps := range secrets {
		if !ps.modeSet {
			ps.OnDisallowed = s.OnDisallowed
		}
		ps.Value = NewValue(ps.value)
		s.Secrets[i] = ps.Secret
	}
	return s, nil
}

func parseSessionID(v gjson.Result, path string, p *problems) string {
	if v.Type != gjson.String {
		p.add(path, "must be a string")
		return ""
	}
	id := v.Str
	if id == "" {
		p.add(path, "must not be empty")
	}
	if len(id) > maxSessionIDLen {
		p.add(path, "longer than %d bytes", maxSessionIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] >= 0x7f {
			p.add(path, "byte at offset %d is not printable ascii", i)
			break
		}
	}
	return id
}

// parseSecret reads one secret object; it returns nil when the secret cannot
// take part in the cross-secret checks at all.
func parseSecret(name, path string, v gjson.Result, p *problems) *parsedSecret {
	if !v.IsObject() {
		p.add(path, "must be an object")
		return nil
	}
	ps := &parsedSecret{Secret: Secret{Name: name}, path: path}
	var sawPlaceholder, sawValue, sawHosts bool
	eachField(v, path, p, func(key, fpath string, fv gjson.Result) {
		switch key {
		case "placeholder":
			sawPlaceholder = true
			if fv.Type != gjson.String {
				p.add(fpath, "must be a string")
			} else if err := checkPlaceholder(fv.Str); err != nil {
				p.add(fpath, "%v", err)
			} else {
				ps.Placeholder, ps.phValid = fv.Str, true
			}
		case "value":
			sawValue = true
			ps.value = parseValue(fv, fpath, p)
		case "hosts":
			sawHosts = true
			ps.Hosts = parseHostList(fv, fpath, p)
		case "on_disallowed":
			ps.OnDisallowed, ps.modeSet = parseMode(fv, fpath, p)
		default:
			p.add(fpath, "unknown field")
		}
	})
	if !sawPlaceholder {
		p.add(path+".placeholder", "required")
	}
	if !sawValue {
		p.add(path+".value", "required")
	}
	if !sawHosts {
		if rules, ok := defaultHostRules(name); ok {
			ps.Hosts = rules
		} else {
			p.add(path+".hosts", "required: no default hosts for this name")
		}
	}
	return ps
}

// checkPlaceholdersApart makes every placeholder findable on its own: none
// equals or sits inside another placeholder, and none sits inside a value,
// where an injected value would otherwise look like a placeholder. Messages
// name the other secret, never the placeholder (it may share bytes with a
// value) or the value. A placeholder shared by several secrets is reported
// once per later secret, naming the first: one mistake, one line per copy.
func checkPlaceholdersApart(secrets []*parsedSecret, p *problems) {
	for i, a := range secrets {
		if !a.phValid {
			continue
		}
		path := a.path + ".placeholder"
		for j, b := range secrets {
			switch {
			case a == b || !b.phValid:
			case a.Placeholder == b.Placeholder:
				if j < i {
					p.add(path, "same as %s.placeholder", b.path)
				}
			case strings.Contains(b.Placeholder, a.Placeholder):
				p.add(path, "appears inside %s.placeholder", b.path)
			}
		}
		for _, b := range secrets {
			if b.value != nil && bytes.Contains(b.value, []byte(a.Placeholder)) {
				p.add(path, "appears inside the value of %s", b.path)
			}
		}
	}
}
