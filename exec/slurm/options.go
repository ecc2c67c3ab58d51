package slurm

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Options are the sbatch options a user may pass through config/slurm. Each
// field is one key of that file; empty fields are left to Slurm's defaults.
type Options struct {
	Partition   string // partition=gpu        -> --partition
	Account     string // account=ml           -> --account
	QOS         string // qos=high             -> --qos
	Gres        string // gres=gpu:1           -> --gres
	Constraint  string // constraint=a100      -> --constraint
	Reservation string // reservation=maint    -> --reservation
	NodeList    string // nodelist=node[1-4]   -> --nodelist
	Exclude     string // exclude=node7        -> --exclude
}

// ErrBadOptions is wrapped by every error of ParseOptions.
var ErrBadOptions = errors.New("bad slurm options")

// maxOptionsLen bounds a config/slurm line; maxValueLen one value.
const (
	maxOptionsLen = 4096
	maxValueLen   = 256
)

// optionKeys is the allow-list: config/slurm key -> sbatch flag and field.
var optionKeys = map[string]struct {
	flag  string
	field func(*Options) *string
}{
	"partition":   {"--partition", func(o *Options) *string { return &o.Partition }},
	"account":     {"--account", func(o *Options) *string { return &o.Account }},
	"qos":         {"--qos", func(o *Options) *string { return &o.QOS }},
	"gres":        {"--gres", func(o *Options) *string { return &o.Gres }},
	"constraint":  {"--constraint", func(o *Options) *string { return &o.Constraint }},
	"reservation": {"--reservation", func(o *Options) *string { return &o.Reservation }},
	"nodelist":    {"--nodelist", func(o *Options) *string { return &o.NodeList }},
	"exclude":     {"--exclude", func(o *Options) *string { return &o.Exclude }},
}

// ParseOptions reads a config/slurm line: space-separated key=value pairs
// whose keys are in the allow-list, each at most once, whose values hold
// only letters, digits and _ - . : , + @ / % [ ] (no shell metacharacters,
// no spaces, no option of their own). An empty line is no options.
func ParseOptions(line string) (Options, error) {
	var o Options
	if len(line) > maxOptionsLen {
		return o, fmt.Errorf("%w: longer than %d bytes", ErrBadOptions, maxOptionsLen)
	}
	seen := map[string]bool{}
	for _, pair := range strings.Fields(line) {
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return Options{}, fmt.Errorf("%w: %q is not key=value (keys: %s)", ErrBadOptions, pair, allowedKeys())
		}
		k, ok := optionKeys[key]
		if !ok {
			return Options{}, fmt.Errorf("%w: unknown key %q (allowed: %s)", ErrBadOptions, key, allowedKeys())
		}
		if seen[key] {
			return Options{}, fmt.Errorf("%w: key %q given twice", ErrBadOptions, key)
		}
		seen[key] = true
		if err := checkValue(value); err != nil {
			return Options{}, fmt.Errorf("%w: %s: %v", ErrBadOptions, key, err)
		}
		*k.field(&o) = value
	}
	return o, nil
}

// checkValue allows the characters Slurm's names, counts and node lists use.
func checkValue(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	if len(v) > maxValueLen {
		return fmt.Errorf("value longer than %d bytes", maxValueLen)
	}
	if v[0] == '-' {
		return fmt.Errorf("value %q starts with '-'", v)
	}
	for _, r := range v {
		if !valueRune(r) {
			return fmt.Errorf("character %q not allowed in %q (letters, digits and _-.:,+@/%%[] only)", r, v)
		}
	}
	return nil
}

func valueRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("_-.:,+@/%[]", r)
}

// allowedKeys lists the allow-list for error messages.
func allowedKeys() string {
	keys := make([]string, 0, len(optionKeys))
	for k := range optionKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// args turns the options into sbatch flags, in the allow-list's key order.
func (o Options) args() []string {
	keys := make([]string, 0, len(optionKeys))
	for k := range optionKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		spec := optionKeys[k]
		if v := *spec.field(&o); v != "" {
			args = append(args, spec.flag+"="+v)
		}
	}
	return args
}

// String renders the options as a config/slurm line, keys sorted.
func (o Options) String() string {
	var pairs []string
	for _, a := range o.args() {
		flag, value, _ := strings.Cut(a, "=")
		for k, spec := range optionKeys {
			if spec.flag == flag {
				pairs = append(pairs, k+"="+value)
			}
		}
	}
	return strings.Join(pairs, " ")
}
