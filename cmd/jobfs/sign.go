package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jobfs/jobfs/crypt"
	"github.com/jobfs/jobfs/jobs"
)

// keygenCmd: jobfs keygen -o FILE writes a private key (0600, never over
// an existing file) and prints the public key line for a trusted-keys file.
func keygenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jobfs keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "`file` to write the private key to (required; mode 0600; never overwritten)")
	fs.Usage = func() {
		sayf(stderr, "Usage: jobfs keygen -o FILE\n\nMakes an ed25519 key pair for signing jobs and prints the public key line\nto add to the daemon's --trusted-keys file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFor(err)
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		sayln(stderr, "jobfs keygen:", err)
		return 1
	}
	pub, err := crypt.WriteNewKey(*out)
	if err != nil {
		sayln(stderr, "jobfs keygen:", err)
		return 1
	}
	sayln(stdout, crypt.PublicLine(pub))
	return 0
}

// signCmd: jobfs sign -k KEY MOUNT/job reads the job through the mount,
// signs its canonical form and writes the signature line to
// config/signatures (replacing an earlier one by the same key).
func signCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jobfs sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("k", "", "private key `file` made by jobfs keygen (required)")
	fs.Usage = func() {
		sayf(stderr, "Usage: jobfs sign -k KEY MOUNT/JOB\n\nSigns the job's type, chains or script, timeout, limits, retries,\non_failure, on_success, after and env names (not their values)\nand writes the signature to MOUNT/JOB/config/signatures.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFor(err)
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := sign(*keyPath, fs.Arg(0)); err != nil {
		sayln(stderr, "jobfs sign:", err)
		return 1
	}
	sayln(stdout, "signed", fs.Arg(0))
	return 0
}

func exitFor(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func sign(keyPath, jobDir string) error {
	priv, err := crypt.ReadKey(keyPath)
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, f := range jobs.SignedFields {
		b, err := os.ReadFile(filepath.Join(jobDir, f))
		if err != nil {
			return fmt.Errorf("read the job: %w", err)
		}
		s, _ := jobs.SettingFor(f)
		values[f] = s.Normalize(string(b))
	}
	ents, err := os.ReadDir(filepath.Join(jobDir, "config", "env"))
	if err != nil {
		return fmt.Errorf("read the job: %w", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	sig := crypt.Sign(priv, jobs.CanonicalForm(values, names))
	path := filepath.Join(jobDir, "config", "signatures")
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(string(old), "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, crypt.PublicLine(sig.Public)+" ") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, sig.Line())
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
