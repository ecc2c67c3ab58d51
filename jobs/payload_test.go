package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckPayload(t *testing.T) {
	tooLarge := append([]byte(`"`), bytes.Repeat([]byte("x"), MaxPayload)...)
	tooLarge = append(tooLarge, '"')
	tests := []struct {
		name     string
		p        []byte
		prefixOK bool  // CheckPayloadPrefix accepts it
		full     error // CheckPayload's sentinel, nil when accepted
	}{
		{"object", []byte(`{"a": 1, "b": [true, null]}`), true, nil},
		{"array", []byte(`[1, 2, 3]`), true, nil},
		{"string", []byte(`"hello"`), true, nil},
		{"number", []byte(`42`), true, nil},
		{"negative float", []byte(`-1.5e3`), true, nil},
		{"true", []byte(`true`), true, nil},
		{"null", []byte(`null`), true, nil},
		{"surrounding white space", []byte(" \t{\"a\":1}\r\n\n"), true, nil},
		{"unicode", []byte(`{"name": "café ☕"}`), true, nil},
		{"empty", []byte(""), true, nil},
		{"white space only", []byte(" \n\t\r\n"), true, nil},
		{"newline only", []byte("\n"), true, nil},
		{"not json", []byte("not json"), false, ErrInvalid},
		{"bare word", []byte("hello"), false, ErrInvalid},
		{"single quotes", []byte(`{'a': 1}`), false, ErrInvalid},
		{"trailing comma", []byte(`[1, 2,]`), false, ErrInvalid},
		{"truncated object", []byte(`{"a": [1, 2`), true, ErrInvalid},
		{"truncated string", []byte(`"unterminated`), true, ErrInvalid},
		{"truncated literal", []byte(`tru`), true, ErrInvalid},
		{"truncated number", []byte(`-`), true, ErrInvalid},
		{"truncated exponent", []byte(`1e`), true, ErrInvalid},
		{"truncated key", []byte(`{"ke`), true, ErrInvalid},
		{"truncated mid rune", []byte("\"caf\xc3"), true, ErrInvalid},
		{"open brace", []byte(`{`), true, ErrInvalid},
		{"trailing garbage", []byte(`{"a":1} x`), false, ErrInvalid},
		{"trailing garbage no space", []byte(`{"a":1}x`), false, ErrInvalid},
		{"number then letter", []byte(`1x`), false, ErrInvalid},
		{"two values", []byte(`{} {}`), false, ErrInvalid},
		{"two numbers", []byte("1 2"), false, ErrInvalid},
		{"value then truncated value", []byte(`{}{`), false, ErrInvalid},
		// JSON white space is space, tab, CR and LF only: a step's JSON
		// parser refuses anything else after the value.
		{"trailing form feed", []byte("{}\f"), false, ErrInvalid},
		{"trailing no-break space", []byte("{}\u00a0"), false, ErrInvalid},
		{"leading vertical tab", []byte("\v{}"), false, ErrInvalid},
		{"too large", tooLarge, false, ErrTooLarge},
		// JSON text is UTF-8 (RFC 8259); encoding/json alone would take
		// these and hand the step U+FFFD.
		{"invalid UTF-8 in a string", []byte("{\"a\":\"\xff\"}"), false, ErrInvalid},
		{"overlong encoding", []byte("\"\xc0\xaf\""), false, ErrInvalid},
		{"surrogate encoded", []byte("\"\xed\xa0\x80\""), false, ErrInvalid},
		{"rune cut before the quote", []byte("\"caf\xc3\""), false, ErrInvalid},
		{"trailing NUL", []byte("{}\x00"), false, ErrInvalid},
		{"NUL in a string", []byte("\"a\x00b\""), false, ErrInvalid},
		{"NUL only", []byte("\x00"), false, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPayload(tt.p)
			if tt.full == nil && err != nil {
				t.Errorf("CheckPayload = %v, want nil", err)
			}
			if tt.full != nil && !errors.Is(err, tt.full) {
				t.Errorf("CheckPayload = %v, want %v", err, tt.full)
			}
			perr := CheckPayloadPrefix(tt.p)
			if (perr == nil) != tt.prefixOK {
				t.Errorf("CheckPayloadPrefix = %v, want ok=%v", perr, tt.prefixOK)
			}
			if perr != nil && !errors.Is(perr, tt.full) {
				t.Errorf("CheckPayloadPrefix = %v, want %v", perr, tt.full)
			}
		})
	}
}

// TestCheckPayloadPrefixOfValid: every prefix of a valid payload may still
// become valid, while the full check refuses it as incomplete.
func TestCheckPayloadPrefixOfValid(t *testing.T) {
	for _, full := range []string{
		`{"a": [1, 2.5e-3, "x\"y", {"b": null}], "c": true}`,
		`["é", "\u00e9", false]`,
		`"just a string"`,
	} {
		for i := 1; i < len(full); i++ {
			p := []byte(full[:i])
			if err := CheckPayloadPrefix(p); err != nil {
				t.Errorf("CheckPayloadPrefix(%q) = %v, want nil", p, err)
			}
			if json.Valid(p) {
				continue // e.g. a complete inner number
			}
			if err := CheckPayload(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("CheckPayload(%q) = %v, want ErrInvalid", p, err)
			}
		}
	}
}

func TestCheckPayloadErrorNamesByte(t *testing.T) {
	err := CheckPayload([]byte(`{"a": 1} {"b": 2}`))
	if err == nil || !strings.Contains(err.Error(), "more than one value") {
		t.Fatalf("CheckPayload = %v, want `more than one value`", err)
	}
}

// TestCheckPayloadTextReasons: a NUL byte and bytes that are not UTF-8
// each get their own reason, naming the byte (counted from 1), from the
// full check and from the check of a payload still arriving.
func TestCheckPayloadTextReasons(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want string
	}{
		{"{}\x00", "invalid JSON at byte 3: NUL byte"},
		{"{}\x00\n", "invalid JSON at byte 3: NUL byte"},
		{"{\"a\":\"\x00\"}", "invalid JSON at byte 7: NUL byte"},
		{"{\"a\":\"\xff\"}", "invalid JSON at byte 7: not UTF-8 (0xff)"},
		{"[\"\xe2\x82\xac\", \"\xe2\x82\"]", "invalid JSON at byte 10: not UTF-8 (0xe2)"},
	} {
		for name, check := range map[string]func([]byte) error{"CheckPayload": CheckPayload, "CheckPayloadPrefix": CheckPayloadPrefix} {
			err := check([]byte(tc.p))
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s(%q) = %v, want an ErrInvalid starting %q", name, tc.p, err, tc.want)
			}
		}
	}
	// A rune cut by the end of a write may be finished by the next one.
	euro := "[\"\xe2\x82\xac\"]"
	for i := 1; i < len(euro); i++ {
		if err := CheckPayloadPrefix([]byte(euro[:i])); err != nil {
			t.Errorf("CheckPayloadPrefix(%q) = %v, want nil", euro[:i], err)
		}
	}
	if err := CheckPayload([]byte("\"\xe2\x82")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not UTF-8") {
		t.Errorf("CheckPayload of a cut rune = %v, want not UTF-8", err)
	}
}

// isJSONSpace reports whether p holds only JSON white space.
func isJSONSpace(p []byte) bool {
	for _, c := range p {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// FuzzCheckPayloadPrefix: CheckPayload accepts exactly one JSON value in
// UTF-8 or JSON white space, every prefix of an accepted payload passes the prefix
// check, and the prefix check never refuses what the full check accepts.
func FuzzCheckPayloadPrefix(f *testing.F) {
	for _, s := range []string{
		``, ` `, "\n", `{}`, `[]`, `{"a":1}`, `[1,"two",{"3":null}]`, `"x"`, `-0.5e+10`,
		`true`, `nul`, `{"a":`, `{} {}`, `1 2`, `{}x`, `not json`, "\"\xff\"", `"\ud800"`, "{}\x00", "\"\xe2\x82\xac\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		err := CheckPayload(p)
		want := (json.Valid(p) && utf8.Valid(p)) || isJSONSpace(p)
		if (err == nil) != want {
			t.Fatalf("CheckPayload(%q) = %v; valid UTF-8 JSON or white space: %v", p, err, want)
		}
		perr := CheckPayloadPrefix(p)
		if err == nil && perr != nil {
			t.Fatalf("CheckPayloadPrefix(%q) = %v but CheckPayload accepts it", p, perr)
		}
		if err != nil {
			return
		}
		for i := range len(p) {
			if perr := CheckPayloadPrefix(p[:i]); perr != nil {
				t.Fatalf("CheckPayload(%q) = nil but CheckPayloadPrefix of its prefix %q = %v", p, p[:i], perr)
			}
		}
	})
}
