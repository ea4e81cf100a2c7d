package policies

// Session is a validated plugin configuration, ready to decide requests.
// It is immutable after ParseConfig and safe to share.
type Session struct {
	ID           string
	OnDisallowed Mode
	// Secrets sorted by Name.
	Secrets []Secret
}

// ParseConfig reads the plugin configuration JSON strictly. Each problem is a
// *FieldError naming the field path and the reason, never a value; all of
// them, one per field, are joined in path order and match ErrInvalidConfig.
func ParseConfig(data []byte) (*Session, error) { return parseConfig(data) }
