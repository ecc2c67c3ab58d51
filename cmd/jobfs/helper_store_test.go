package main

import (
	"slices"
	"strings"
	"testing"
)

// The helper form's -o cannot carry commas inside an option: store=
// separates etcd endpoints with +, and a comma between endpoints is
// refused saying so.
func TestHelperStoreEndpoints(t *testing.T) {
	h, err := parseHelper([]string{"jobfs", "/srv/jobs", "-o", "allow_other,store=etcd://e1:2379+e2:2379+e3:2379,data=/shared/jobfs,node=w1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.flags, "--store=etcd://e1:2379+e2:2379+e3:2379") {
		t.Fatalf("flags %q: no --store", h.flags)
	}
	for _, s := range []string{"e1:2379+e2:2379+e3:2379", "e1:2379,e2:2379,e3:2379", "e1:2379, e2:2379,+e3:2379,"} {
		if got := storeEndpoints(s); !slices.Equal(got, []string{"e1:2379", "e2:2379", "e3:2379"}) {
			t.Errorf("storeEndpoints(%q) = %q", s, got)
		}
	}
	_, err = parseHelper([]string{"jobfs", "/srv/jobs", "-o", "store=etcd://e1:2379,e2:2379,data=/d"})
	if err == nil || !strings.Contains(err.Error(), "store=etcd://h1:2379+h2:2379") {
		t.Errorf("commas between endpoints: %v, want the + form named", err)
	}
}
