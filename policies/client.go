package policies

import (
	"crypto/rand"
	"encoding/base32"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// ClientSecret is one secret as a client hands it to the platform.
type ClientSecret struct {
	Name  string
	Value Value
	// Hosts are canonical host entries; nil means the name's default hosts.
	Hosts []string
}

const tupleForm = `["value", ["host", ...]]`

// ParseClientSecrets reads the client form, as strictly as ParseConfig:
//
//	{"OPENAI_API_KEY": "sk-...", "CUSTOM_API_KEY": ["value", ["api.example.com"]]}
//
// A plain string is only accepted for names with default hosts. Errors are
// *FieldError with paths such as "CUSTOM_API_KEY[1][0]" and never hold a
// value. The result is sorted by Name.
func ParseClientSecrets(data []byte) ([]ClientSecret, error) {
	root, err := parseDocument(data, "secrets")
	if err != nil {
		return nil, err
	}
	var p problems
	var out []ClientSecret
	eachField(root, "", &p, func(name, path string, v gjson.Result) {
		if !checkName(name, path, &p) {
			return
		}
		cs := ClientSecret{Name: name}
		var value []byte
		switch {
		case v.Type == gjson.String:
			if _, ok := defaultHosts[name]; !ok {
				p.add(path, "a plain value needs default hosts; pass %s", tupleForm)
				return
			}
			value = parseValue(v, path, &p)
		case v.IsArray() && len(v.Array()) == 2:
			pair := v.Array()
			value = parseValue(pair[0], path+"[0]", &p)
			rules := parseHostList(pair[1], path+"[1]", &p)
			cs.Hosts = make([]string, len(rules))
			for i, r := range rules {
				cs.Hosts[i] = r.String()
			}
		default:
			p.add(path, "must be a string or %s", tupleForm)
			return
		}
		if value != nil {
			cs.Value = NewValue(value)
			out = append(out, cs)
		}
	})
	if len(out) == 0 && len(p) == 0 {
		p.add("secrets", "must hold at least one secret")
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ClientSecret) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// placeholderEncoding spells placeholders in lowercase base32 (a-z, 2-7).
var placeholderEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newPlaceholder returns "sgp_" and 32 lowercase base32 characters: 160
// random bits, so placeholders never collide or guess each other, and only
// bytes that need no escaping in headers, URLs or JSON.
func newPlaceholder() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return "sgp_" + placeholderEncoding.EncodeToString(b[:])
}

// NewSessionConfig gives each secret a fresh placeholder and returns the
// plugin configuration (which holds the real values: that is its purpose,
// and it must go only to the plugin) and the name-to-placeholder map a
// platform hands to the sandbox (which holds no value). The configuration
// is checked with ParseConfig before it is returned.
func NewSessionConfig(sessionID string, secrets []ClientSecret, onDisallowed Mode) (config []byte, placeholders map[string]string, err error) {
	placeholders = make(map[string]string, len(secrets))
	b := append([]byte(nil), `{"session":`...)
	b = appendJSONString(b, sessionID)
	b = append(b, `,"on_disallowed":`...)
	b = appendJSONString(b, onDisallowed.String())
	b = append(b, `,"secrets":{`...)
	for i, s := range secrets {
		ph := newPlaceholder()
		placeholders[s.Name] = ph
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s.Name)
		b = append(b, `:{"placeholder":`...)
		b = appendJSONString(b, ph)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, string(s.Value.bytes()))
		if s.Hosts != nil {
			b = append(b, `,"hosts":[`...)
			for j, h := range s.Hosts {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, h)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, "}}"...)
	if _, err := ParseConfig(b); err != nil {
		clear(b)
		return nil, nil, err
	}
	return b, placeholders, nil
}
