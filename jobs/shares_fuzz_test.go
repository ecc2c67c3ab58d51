package jobs

import (
	"errors"
	"os/user"
	"strings"
	"testing"
)

// FuzzShareName: CheckShareName never panics; it refuses with ErrInvalid
// and a one-line reason; what it accepts is public, @<local user> or
// +<local group>, and a name a file can have.
func FuzzShareName(f *testing.F) {
	for _, s := range []string{
		"public", "@root", "+root", "+daemon", "@nobody", "@", "+", "", "Public", "public ", "@no-such-user-xyz",
		"+no-such-group-xyz", "alice~devs", "@root~x", "@../root", "@root/x", "+root\x00", "@0", "+0", "@root:x",
		"@" + strings.Repeat("r", 300), "..", ".", "@root\n", "@ root", "@ROOT",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckShareName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckShareName(%q) = %v: not ErrInvalid", name, err)
			}
			if !strings.HasPrefix(err.Error(), "shared/") {
				t.Fatalf("CheckShareName(%q) = %q: the reason does not name the share", name, err)
			}
			return
		}
		if name == "public" {
			return
		}
		if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			t.Fatalf("CheckShareName(%q) accepted a name no file can have", name)
		}
		switch rest := name[1:]; name[0] {
		case '@':
			if _, err := user.Lookup(rest); err != nil || rest == "" {
				t.Fatalf("CheckShareName(%q) accepted, but there is no local user %q: %v", name, rest, err)
			}
		case '+':
			if _, err := user.LookupGroup(rest); err != nil || rest == "" {
				t.Fatalf("CheckShareName(%q) accepted, but there is no local group %q: %v", name, rest, err)
			}
		default:
			t.Fatalf("CheckShareName(%q) accepted a name that is not public, @user or +group", name)
		}
	})
}
