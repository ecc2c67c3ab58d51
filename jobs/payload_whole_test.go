package jobs

import "testing"

// TestPayloadWhole: only a complete object or array is whole; a number, a
// blank line or a prefix may still grow.
func TestPayloadWhole(t *testing.T) {
	for p, want := range map[string]bool{
		`{}`: true, " {\"a\": 1}\n": true, `[1, 2]`: true,
		`1`: false, `"s"`: false, "\n": false, ``: false, `{"a":`: false, `{} {}`: false,
	} {
		if got := PayloadWhole([]byte(p)); got != want {
			t.Errorf("PayloadWhole(%q) = %v, want %v", p, got, want)
		}
	}
	if !OnlyJSONSpace([]byte(" \n\t\r")) || OnlyJSONSpace([]byte(" x")) || OnlyJSONSpace([]byte("\u00a0")) {
		t.Errorf("OnlyJSONSpace takes JSON's white space only")
	}
}
