package jobs

import (
	"errors"
	"testing"
)

func TestCheckShareName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"public", true},
		{"@root", true},
		{"+root", true},
		{"@root~root", true},    // novem's @user~group: the local group root
		{"+someorg~root", true}, // novem's +org~group
		{"@nosuchuser~root", false},
		{"+someorg~nosuchgroup_xyz", false},
		{"root~root", false},
		{"@nosuchuser_xyz", false},
		{"+nosuchgroup_xyz", false},
		{"everyone", false},
		{"", false},
		{"@root/x", false},
		{"+root\x00", false},
	} {
		err := CheckShareName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckShareName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckShareName(%q) = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestShareAliasMatchesTheLocalGroup(t *testing.T) {
	inRoot := Caller{UID: 1000, GIDs: []uint32{0}}
	notInRoot := Caller{UID: 1000, GIDs: []uint32{1000}}
	for _, name := range []string{"+root", "@root~root", "+someorg~root"} {
		if !shareMatches(name, inRoot) {
			t.Errorf("%s does not match a member of group root", name)
		}
		if shareMatches(name, notInRoot) {
			t.Errorf("%s matches a caller outside group root", name)
		}
	}
}
