package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		line    string
		want    Options
		wantErr string // a part of the error; "" means none
	}{
		{line: "", want: Options{}},
		{line: "  \n", want: Options{}},
		{line: "partition=gpu gres=gpu:1 account=ml", want: Options{Partition: "gpu", Gres: "gpu:1", Account: "ml"}},
		{line: "qos=high constraint=a100 reservation=maint nodelist=node[1-4] exclude=node7",
			want: Options{QOS: "high", Constraint: "a100", Reservation: "maint", NodeList: "node[1-4]", Exclude: "node7"}},
		{line: "gres=gpu:a100:2,shard:1", want: Options{Gres: "gpu:a100:2,shard:1"}},
		{line: "partition=gpu\tgres=gpu:1\n", want: Options{Partition: "gpu", Gres: "gpu:1"}},
		{line: "mem=100", wantErr: `unknown key "mem"`},
		{line: "Partition=gpu", wantErr: `unknown key "Partition"`},
		{line: "partition", wantErr: `"partition" is not key=value`},
		{line: "partition=", wantErr: "partition: empty value"},
		{line: "partition=gpu partition=cpu", wantErr: `key "partition" given twice`},
		{line: "account=ml;rm", wantErr: "account: character ';'"},
		{line: "account=$(id)", wantErr: "account: character '$'"},
		{line: "account=`id`", wantErr: "account: character '`'"},
		{line: "account=a|b", wantErr: "account: character '|'"},
		{line: "account=a&b", wantErr: "account: character '&'"},
		{line: "account=a>b", wantErr: "account: character '>'"},
		{line: "account='ml'", wantErr: `account: character '\''`},
		{line: "account=a*", wantErr: "account: character '*'"},
		{line: "gres=--wrap", wantErr: "gres: value \"--wrap\" starts with '-'"},
		{line: "gres=gpu:1=2", wantErr: "gres: character '='"},
		{line: "account=" + strings.Repeat("a", 257), wantErr: "account: value longer than 256"},
		{line: strings.Repeat("partition=gpu ", 400), wantErr: "longer than 4096"},
	}
	for _, tt := range tests {
		got, err := ParseOptions(tt.line)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseOptions(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadOptions) {
			t.Errorf("ParseOptions(%q) error = %v; want one with %q", tt.line, err, tt.wantErr)
		}
	}
}

func TestOptionsRoundTrip(t *testing.T) {
	o := Options{Partition: "gpu", Gres: "gpu:1", Account: "ml", NodeList: "n[1-2]"}
	back, err := ParseOptions(o.String())
	if err != nil || back != o {
		t.Fatalf("ParseOptions(%q) = %+v, %v; want %+v", o.String(), back, err, o)
	}
}

// TestJobArgs checks the sbatch command line a Job makes, and what Submit
// refuses before running sbatch.
func TestJobArgs(t *testing.T) {
	j := Job{
		Options:     Options{Partition: "gpu", Gres: "gpu:1"},
		Name:        "train step",
		Script:      []byte("#!/bin/sh\ntrue\n"),
		MemMiB:      512,
		CPUsPerTask: 2,
		TimeLimit:   61 * time.Second,
		Output:      "/shared/run/%j.log",
		Workdir:     "/shared/run",
		AfterOK:     []string{"5", "6_1"},
		Array:       "0-9%2",
		Hold:        true,
	}
	got, err := j.args()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--parsable", "--no-requeue", "--export=PATH", "--gres=gpu:1", "--partition=gpu", "--job-name=train step",
		"--mem=512", "--cpus-per-task=2", "--time=2", "--output=/shared/run/%j.log", "--chdir=/shared/run",
		"--dependency=afterok:5:6_1", "--kill-on-invalid-dep=yes", "--array=0-9%2", "--hold"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("args:\n got %q\nwant %q", got, want)
	}
	bad := []Job{
		{Script: []byte("echo no shebang")},
		{Script: []byte("#!/bin/sh"), MemMiB: -1},
		{Script: []byte("#!/bin/sh"), AfterOK: []string{"5;rm"}},
		{Script: []byte("#!/bin/sh"), Array: "1-3 --wrap"},
		{Script: []byte("#!/bin/sh"), Output: "a\nb"},
		{Script: []byte("#!/bin/sh"), Options: Options{Account: "a b"}},
	}
	for _, b := range bad {
		if _, err := b.args(); !errors.Is(err, ErrBadJob) {
			t.Errorf("args(%+v) error = %v; want ErrBadJob", b, err)
		}
	}
}

func TestMinutes(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Second: 1, time.Minute: 1, 61 * time.Second: 2, 90 * time.Minute: 90} {
		if got := Minutes(d); got != want {
			t.Errorf("Minutes(%v) = %d; want %d", d, got, want)
		}
	}
}
