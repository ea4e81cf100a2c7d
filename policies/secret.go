// Package policies holds every decision secretgate makes, as pure Go with no
// proxy-wasm calls: parsing and validating a session's secrets, canonicalising
// and matching hosts, and finding and replacing placeholders in a request.
package policies

import (
	"fmt"
	"log/slog"
)

// Mode says what happens to a placeholder sent to a host its secret does not allow.
type Mode uint8

const (
	// Passthrough forwards the placeholder unchanged and reports the violation.
	Passthrough Mode = iota
	// Deny answers the request locally with 403; nothing goes upstream.
	Deny
)

func (m Mode) String() string {
	if m == Deny {
		return "deny"
	}
	return "passthrough"
}

const redacted = "[redacted]"

// Value is a secret's real value. It never prints: String, Format, GoString,
// JSON, text and slog forms are all redacted, and the bytes sit behind a
// pointer so that even fmt's raw struct printing shows only an address.
type Value struct{ b *[]byte }

// NewValue copies b into a Value.
func NewValue(b []byte) Value {
	c := append([]byte(nil), b...)
	return Value{b: &c}
}

// bytes gives the real value; only the rewriter in this package calls it.
func (v Value) bytes() []byte {
	if v.b == nil {
		return nil
	}
	return *v.b
}

// Len is the value's length in bytes, which is not secret enough to hide and
// lets callers size buffers.
func (v Value) Len() int { return len(v.bytes()) }

func (Value) String() string               { return redacted }
func (Value) GoString() string             { return redacted }
func (Value) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Value) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Secret is one configured secret, validated and canonicalised.
type Secret struct {
	Name         string
	Placeholder  string
	Value        Value
	Hosts        []HostRule
	OnDisallowed Mode
}
