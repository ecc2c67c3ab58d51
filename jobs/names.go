package jobs

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"sync"
)

var (
	jobNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })
	envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`) })
)

// CheckJobName reports why name cannot name a job, or nil.
func CheckJobName(name string) error {
	if !jobNameRE().MatchString(name) {
		return errorf(ErrInvalid, "job name %q: use 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit", name)
	}
	return nil
}

// CheckEnvName reports why name cannot name an env variable, or nil.
func CheckEnvName(name string) error {
	if !envNameRE().MatchString(name) {
		return errorf(ErrInvalid, "env name %q: use lower case a-z 0-9 _, not starting with a digit, at most 64", name)
	}
	return nil
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// sortedKeys lists a map's keys in order: env names, image labels and
// follow-up names are listed and stored sorted.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
