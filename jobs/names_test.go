package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckJobName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"7", true},
		{"report-2024.v1_final", true},
		{"A.b-C_d", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"-dash", false},
		{"_under", false},
		{"has space", false},
		{" lead", false},
		{"trail ", false},
		{"a/b", false},
		{"café", false},
		{"日本", false},
		{"tab\tname", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"@owner", false},
	}
	for _, tt := range tests {
		err := CheckJobName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckJobName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckJobName(%q) = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestCheckEnvName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"_private", true},
		{"api_key", true},
		{"key2", true},
		{strings.Repeat("k", 64), true},
		{strings.Repeat("k", 65), false},
		{"", false},
		{"API_KEY", false},
		{"Key", false},
		{"2key", false},
		{".key", false},
		{"-key", false},
		{"a-b", false},
		{"a.b", false},
		{"a b", false},
		{"a/b", false},
		{"clé", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		err := CheckEnvName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckEnvName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckEnvName(%q) = %v, want ErrInvalid", tt.name, err)
		}
	}
}
