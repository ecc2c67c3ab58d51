//go:build linux

package integration

import (
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestChains: pipelines of repo images (README "Pipelines"), one job per
// case on one daemon. Every image is a /bin/sh entrypoint the test writes
// into <repos>/<user>/<name>; a step sees /input, /output and /app.
func TestChains(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{maxActive: 8})
	owner := chainsOwner(t)

	// Images for the README's three-step pipeline.
	chainsImage(t, d, "data_fetcher", `#!/bin/sh
echo "fetch args $1 $2 in $(pwd) step $JOBFS_STEP"
ls "$1" > "$2/listing.txt"
cp "$1/sales.csv" "$1/notes.txt" "$1/input.json" "$2/"
echo "fetched $(wc -l < "$1/sales.csv") lines"
`)
	chainsImage(t, d, "transformer", `#!/bin/sh
echo "transform sees $(ls "$1" | tr '\n' ' ')"
tr a-z A-Z < "$1/sales.csv" > "$2/table.csv"
cp "$1/input.json" "$2/payload.json"
if touch "$1/tampered" 2>/dev/null; then echo "input writable"; else echo "input read-only"; fi
echo transformed
`)
	chainsImage(t, d, "chart_builder", `#!/bin/sh
echo rendering
{ printf '%%PDF-1.4\n'; cat "$1/table.csv"; printf '\000\001\377\n'; } > "$2/report.pdf"
if grep -q appendix "$1/payload.json"; then echo "see page 2" > "$2/appendix.txt"; fi
echo rendered
`)
	// Fan-out and fan-in.
	chainsImage(t, d, "splitter", `#!/bin/sh
for i in 1 2 3 4 5; do echo "part $i" > "$2/part$i.txt"; done
echo "split into 5"
`)
	chainsImage(t, d, "page_renderer", `#!/bin/sh
ls "$1" > "$2/seen.txt"
cat "$1"/* > "$2/content.txt"
echo "instance $JOBFS_STEP saw $(ls "$1" | wc -l) file(s)"
`)
	chainsImage(t, d, "empty_splitter", "#!/bin/sh\necho nothing to split\n")
	chainsImage(t, d, "merger", `#!/bin/sh
echo "merge sees $(ls "$1" | tr '\n' ' ')"
cd "$1" && find . -type f | sort > "$2/tree.txt"
`)
	chainsImage(t, d, "maker_a", `#!/bin/sh
echo "from a" > "$2/a.txt"
echo made a
`)
	chainsImage(t, d, "maker_b", `#!/bin/sh
echo "b one" > "$2/b1.txt"
echo "b two" > "$2/b2.txt"
mkdir "$2/sub" && echo "b three" > "$2/sub/b3.txt"
echo made b
`)
	chainsImage(t, d, "joiner", `#!/bin/sh
echo "join sees $(ls "$1" | tr '\n' ' ')"
cd "$1" && find . -type f | sort | while read -r f; do echo "$f: $(cat "$f")"; done > "$2/joined.txt"
`)
	// A failing branch.
	chainsImage(t, d, "failer", "#!/bin/sh\necho \"about to fail\"\nexit 7\n")
	chainsImage(t, d, "slow_ok", "#!/bin/sh\nsleep 1\necho ok > \"$2/ok.txt\"\necho \"ok branch done\"\n")
	// One image, several labels; a bare reference.
	chainsImage(t, d, "stamper", `#!/bin/sh
n=$(cat "$1/count" 2>/dev/null || echo 0)
echo "$JOBFS_STEP counts $((n+1))"
echo $((n+1)) > "$2/count"
`)
	chainsImage(t, d, "report_builder", "#!/bin/sh\necho \"building report in $(pwd)\"\ncp \"$1/input.json\" \"$2/report.json\"\n")

	// Every case starts its job's runs first, so that the daemon runs them
	// side by side; each then checks what it sees in a parallel subtest.
	sales := "day,region,amount\n2026-11-22,north,12\n2026-11-22,south,30\n"
	report := "%PDF-1.4\n" + strings.ToUpper(sales) + "\x00\x01\xff\n"
	gitRepo := filepath.Join("repos", owner, "gitimg")
	var gitV1 string // the commit tagged v1
	cases := []struct {
		name  string
		start func(t *testing.T)
		check func(t *testing.T)
	}{{
		name: "three steps",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/report && cat > mnt/report/config/chains <<'EOF'
# daily report
fetch     <- data_fetcher
transform <- transformer
render    <- chart_builder

fetch -> transform -> render
EOF`)
			chainsWrite(t, d, "sales.csv", sales)
			chainsWrite(t, d, "notes.txt", "remember the south\n")
			d.ok(t, `cp sales.csv notes.txt mnt/report/input/`)
			d.ok(t, `echo '{"day": "2026-11-22"}' > mnt/report/data`)
			// Run 2: the last step leaves two files, so result is a zip.
			d.ok(t, `cp sales.csv notes.txt mnt/report/input/`)
			d.ok(t, `echo '{"day": "2026-11-23", "appendix": true}' > mnt/report/data`)
		},
		check: func(t *testing.T) {
			d.wantFile(t, "mnt/report/config/type", "chains\n")
			if got := d.waitRun(t, "report", 1); got != "COMPLETED" {
				t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/report/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/report/runs/1/steps`); got != "fetch\nrender\ntransform\n" {
				t.Errorf("ls runs/1/steps = %q, want fetch render transform", got)
			}
			for _, l := range []string{"fetch", "transform", "render"} {
				d.wantFile(t, "mnt/report/runs/1/steps/"+l+"/status", "COMPLETED\n")
				d.wantFile(t, "mnt/report/runs/1/steps/"+l+"/exit_code", "0\n")
				for _, f := range []string{"started_at", "ended_at"} {
					if got := d.cat(t, "mnt/report/runs/1/steps/"+l+"/"+f); !chainsStampRE.MatchString(got) {
						t.Errorf("steps/%s/%s = %q, want an RFC 3339 time", l, f, got)
					}
				}
			}
			d.wantFile(t, "mnt/report/runs/1/exit_code", "0\n")
			// The first step saw the payload and both uploads in /input.
			d.wantFile(t, "mnt/report/runs/1/steps/fetch/output/listing.txt", "input.json\nnotes.txt\nsales.csv\n")
			if got := d.ok(t, `ls mnt/report/runs/1/input`); got != "input.json\nnotes.txt\nsales.csv\n" {
				t.Errorf("ls runs/1/input = %q, want input.json notes.txt sales.csv", got)
			}
			d.ok(t, `cmp sales.csv mnt/report/runs/1/steps/fetch/output/sales.csv`)
			// The result is the last step's single file, byte for byte.
			d.ok(t, `cat mnt/report/runs/1/result > report.pdf`)
			if got := chainsRead(t, d, "report.pdf"); got != report {
				t.Errorf("runs/1/result = %q, want %q", got, report)
			}
			if got := d.ok(t, `ls mnt/report/runs/1/output`); got != "report.pdf\n" {
				t.Errorf("ls runs/1/output = %q, want report.pdf", got)
			}
			// The run's log: every step's lines with [label], in order.
			runLog := d.cat(t, "mnt/report/runs/1/log")
			at := 0
			for _, l := range []string{
				"[fetch] fetch args /input /output in /app step fetch\n",
				"[fetch] fetched 3 lines\n",
				"[transform] transform sees input.json listing.txt notes.txt sales.csv \n",
				"[transform] input read-only\n",
				"[transform] transformed\n",
				"[render] rendering\n",
				"[render] rendered\n",
			} {
				i := strings.Index(runLog[at:], l)
				if i < 0 {
					t.Errorf("runs/1/log lacks %q after byte %d:\n%s", l, at, runLog)
					continue
				}
				at += i + len(l)
			}
			for _, l := range strings.SplitAfter(runLog, "\n") {
				if l != "" && !regexp.MustCompile(`^\[(fetch|transform|render)\] `).MatchString(l) {
					t.Errorf("runs/1/log line %q has no [label] prefix", l)
				}
			}
			// A step's own log: its lines only, without the prefix.
			d.wantFile(t, "mnt/report/runs/1/steps/fetch/log", "fetch args /input /output in /app step fetch\nfetched 3 lines\n")
			d.wantFile(t, "mnt/report/runs/1/steps/transform/log",
				"transform sees input.json listing.txt notes.txt sales.csv \ninput read-only\ntransformed\n")
			d.wantFile(t, "mnt/report/runs/1/steps/render/log", "rendering\nrendered\n")

			if got := d.waitRun(t, "report", 2); got != "COMPLETED" {
				t.Fatalf("run 2 ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/report/runs/2/log"))
			}
			if got := d.ok(t, `ls mnt/report/runs/latest/steps`); got != "fetch\nrender\ntransform\n" {
				t.Errorf("ls runs/latest/steps = %q, want fetch render transform", got)
			}
			d.wantFile(t, "mnt/report/runs/latest/steps/render/status", "COMPLETED\n")
			if got := d.ok(t, `ls mnt/report/runs/2/output`); got != "appendix.txt\nreport.pdf\n" {
				t.Errorf("ls runs/2/output = %q, want appendix.txt report.pdf", got)
			}
			d.ok(t, `cp mnt/report/runs/latest/result report2.zip`)
			wantZip := map[string]string{"report.pdf": report, "appendix.txt": "see page 2\n"}
			if got := unzipAll(t, filepath.Join(d.dir, "report2.zip")); !maps.Equal(got, wantZip) {
				t.Errorf("runs/2/result unzips to %q, want %q", got, wantZip)
			}
			if got := d.ok(t, `unzip -Z1 report2.zip | sort`); got != "appendix.txt\nreport.pdf\n" {
				t.Errorf("unzip -Z1 = %q, want appendix.txt report.pdf", got)
			}
		},
	}, {
		name: "fan-out then merge",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/fan && cat > mnt/fan/config/chains <<'EOF'
split  <- splitter
render <- page_renderer
merge  <- merger
split -> .render -> merge
EOF`)
			d.trigger(t, "fan", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "fan", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/fan/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/fan/runs/1/steps`); got != "merge\nrender.1\nrender.2\nrender.3\nrender.4\nrender.5\nsplit\n" {
				t.Errorf("ls runs/1/steps = %q, want merge render.1 .. render.5 split", got)
			}
			chainsFanInstances(t, d, "fan")
			var tree []string
			for i := 1; i <= 5; i++ {
				tree = append(tree, fmt.Sprintf("./render.%d/content.txt", i), fmt.Sprintf("./render.%d/seen.txt", i))
			}
			d.wantFile(t, "mnt/fan/runs/1/steps/merge/output/tree.txt", strings.Join(tree, "\n")+"\n")
			d.wantFile(t, "mnt/fan/runs/1/result", strings.Join(tree, "\n")+"\n")
			d.wantFile(t, "mnt/fan/runs/1/steps/merge/log", "merge sees render.1 render.2 render.3 render.4 render.5 \n")
		},
	}, {
		name: "fan-out final",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/fanout && cat > mnt/fanout/config/chains <<'EOF'
split <- splitter
render <- page_renderer
split -> .render
EOF`)
			d.trigger(t, "fanout", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "fanout", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/fanout/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/fanout/runs/1/steps`); got != "render.1\nrender.2\nrender.3\nrender.4\nrender.5\nsplit\n" {
				t.Errorf("ls runs/1/steps = %q, want render.1 .. render.5 split", got)
			}
			contents := chainsFanInstances(t, d, "fanout")
			// The run's output: one folder per instance; result: their zip.
			if got := d.ok(t, `ls mnt/fanout/runs/1/output`); got != "render.1\nrender.2\nrender.3\nrender.4\nrender.5\n" {
				t.Errorf("ls runs/1/output = %q, want render.1 .. render.5", got)
			}
			d.ok(t, `cp mnt/fanout/runs/1/result fan.zip`)
			want := map[string]string{}
			for i, c := range contents {
				want[fmt.Sprintf("render.%d/content.txt", i+1)] = c
				want[fmt.Sprintf("render.%d/seen.txt", i+1)] = d.cat(t, fmt.Sprintf("mnt/fanout/runs/1/steps/render.%d/output/seen.txt", i+1))
			}
			if got := unzipAll(t, filepath.Join(d.dir, "fan.zip")); !maps.Equal(got, want) {
				t.Errorf("runs/1/result unzips to %q, want %q", got, want)
			}
			runLog := d.cat(t, "mnt/fanout/runs/1/log")
			for i := 1; i <= 5; i++ {
				if l := fmt.Sprintf("[render.%d] instance render.%d saw 1 file(s)\n", i, i); !strings.Contains(runLog, l) {
					t.Errorf("runs/1/log lacks %q:\n%s", l, runLog)
				}
			}
		},
	}, {
		// A fan-out over an output with no files has no instances; the step
		// after it runs on an empty /input.
		name: "fan-out over no files",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/fanempty && cat > mnt/fanempty/config/chains <<'EOF'
split  <- empty_splitter
render <- page_renderer
merge  <- merger
split -> .render -> merge
EOF`)
			d.trigger(t, "fanempty", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "fanempty", 1); got != "COMPLETED" {
				t.Errorf("run ended %s, want COMPLETED; error: %s", got, d.cat(t, "mnt/fanempty/runs/1/error"))
			}
			d.wantFile(t, "mnt/fanempty/runs/1/steps/merge/status", "COMPLETED\n")
			d.wantFile(t, "mnt/fanempty/runs/1/steps/merge/log", "merge sees \n")
		},
	}, {
		name: "fan-in",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/fanin && cat > mnt/fanin/config/chains <<'EOF'
a <- maker_a
b <- maker_b
c <- joiner
a, b -> c
EOF`)
			d.trigger(t, "fanin", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "fanin", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/fanin/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/fanin/runs/1/steps`); got != "a\nb\nc\n" {
				t.Errorf("ls runs/1/steps = %q, want a b c", got)
			}
			for _, l := range []string{"a", "b", "c"} {
				d.wantFile(t, "mnt/fanin/runs/1/steps/"+l+"/status", "COMPLETED\n")
			}
			d.wantFile(t, "mnt/fanin/runs/1/steps/c/log", "join sees a b \n")
			want := "./a/a.txt: from a\n./b/b1.txt: b one\n./b/b2.txt: b two\n./b/sub/b3.txt: b three\n"
			d.wantFile(t, "mnt/fanin/runs/1/steps/c/output/joined.txt", want)
			d.wantFile(t, "mnt/fanin/runs/1/result", want)
			// Hard links, not copies: c's input/a/a.txt is a's output file
			// (jobs/doc.go: the run folders are state/jobs/<shortname>/runs/<id>/).
			runDir := filepath.Join(d.state, "jobs", strings.TrimSpace(d.cat(t, "mnt/fanin/shortname")), "runs", "1")
			in, err1 := os.Stat(filepath.Join(runDir, "steps", "c", "input", "a", "a.txt"))
			out, err2 := os.Stat(filepath.Join(runDir, "steps", "a", "output", "a.txt"))
			if err1 != nil || err2 != nil || !os.SameFile(in, out) {
				t.Errorf("c's input/a/a.txt is not a hard link of a's output/a.txt (%v, %v)", err1, err2)
			}
			// c started only after both a and b ended (RFC 3339 UTC sorts as text).
			cStart := d.cat(t, "mnt/fanin/runs/1/steps/c/started_at")
			for _, l := range []string{"a", "b"} {
				if end := d.cat(t, "mnt/fanin/runs/1/steps/"+l+"/ended_at"); end == "" || end > cStart {
					t.Errorf("steps/%s/ended_at = %q, after steps/c/started_at = %q", l, end, cStart)
				}
			}
		},
	}, {
		name: "failing middle step",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/broken && cat > mnt/broken/config/chains <<'EOF'
a     <- maker_a
bad   <- failer
after <- stamper
ok    <- slow_ok
a -> bad -> after
a -> ok
EOF`)
			d.trigger(t, "broken", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "broken", 1); got != "FAILED" {
				t.Fatalf("run ended %s, want FAILED; log:\n%s", got, d.cat(t, "mnt/broken/runs/1/log"))
			}
			for _, s := range [][2]string{{"a", "COMPLETED"}, {"bad", "FAILED"}, {"after", "SKIPPED"}, {"ok", "COMPLETED"}} {
				d.wantFile(t, "mnt/broken/runs/1/steps/"+s[0]+"/status", s[1]+"\n")
			}
			d.wantFile(t, "mnt/broken/runs/1/steps/bad/exit_code", "7\n")
			d.wantFile(t, "mnt/broken/runs/1/steps/bad/error", "step bad exited with code 7\n")
			d.wantFile(t, "mnt/broken/runs/1/steps/after/exit_code", "")
			d.wantFile(t, "mnt/broken/runs/1/steps/after/started_at", "")
			d.wantFile(t, "mnt/broken/runs/1/steps/ok/output/ok.txt", "ok\n")
			d.wantFile(t, "mnt/broken/runs/1/error", "step bad exited with code 7\n")
			d.wantFile(t, "mnt/broken/runs/1/exit_code", "7\n")
			runLog := d.cat(t, "mnt/broken/runs/1/log")
			for _, l := range []string{"[bad] about to fail\n", "[ok] ok branch done\n"} {
				if !strings.Contains(runLog, l) {
					t.Errorf("runs/1/log lacks %q:\n%s", l, runLog)
				}
			}
			if strings.Contains(runLog, "[after]") {
				t.Errorf("runs/1/log has lines of the skipped step:\n%s", runLog)
			}
			// Every name a folder lists can be reached: tools that walk the
			// whole tree of a failed pipeline exit 0 (grep 1: no match).
			// (rsync where installed: installTools)
			d.ok(t, `ls -la mnt/broken/runs/1/steps/after >/dev/null && find mnt/broken >/dev/null && du -s mnt/broken >/dev/null &&
tar -cf /dev/null mnt/broken/runs && cp -r mnt/broken/runs "$PWD/walk-cp" &&
{ ! command -v rsync >/dev/null || rsync -a mnt/broken/runs/ "$PWD/walk-rsync/"; } &&
{ grep -r no-such-text mnt/broken/runs; [ $? = 1 ]; }`)
		},
	}, {
		name: "one image two labels",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/twice && cat > mnt/twice/config/chains <<EOF
first  <- stamper
second <- stamper
third  <- @$O/stamper:latest
first -> second -> third
EOF`, "O="+owner)
			d.trigger(t, "twice", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "twice", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/twice/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/twice/runs/1/steps`); got != "first\nsecond\nthird\n" {
				t.Errorf("ls runs/1/steps = %q, want first second third", got)
			}
			d.wantFile(t, "mnt/twice/runs/1/result", "3\n")
			d.wantFile(t, "mnt/twice/runs/1/steps/first/log", "first counts 1\n")
			d.wantFile(t, "mnt/twice/runs/1/steps/second/log", "second counts 2\n")
			d.wantFile(t, "mnt/twice/runs/1/steps/third/log", "third counts 3\n")
		},
	}, {
		name: "bare reference",
		start: func(t *testing.T) {
			d.ok(t, `mkdir mnt/bare && cat > mnt/bare/config/chains <<'EOF'
# one image, one step
report_builder   # the whole pipeline
EOF`)
			d.trigger(t, "bare", `{"bare": true}`)
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "bare", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/bare/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/bare/runs/1/steps`); got != "report_builder\n" {
				t.Errorf("ls runs/1/steps = %q, want report_builder", got)
			}
			d.wantFile(t, "mnt/bare/runs/1/steps/report_builder/status", "COMPLETED\n")
			d.wantFile(t, "mnt/bare/runs/1/result", "{\"bare\": true}\n")
			d.wantFile(t, "mnt/bare/runs/1/log", "building report in /app\n")
		},
	}, {
		// config/chains is checked at every write(): a valid file written by
		// a tool that writes a line at a time (bash's printf and echo
		// builtins do) must be accepted like the same bytes written at once
		// by cat, also when its first line is a comment.
		name: "written line by line",
		check: func(t *testing.T) {
			d.ok(t, `mkdir mnt/lines`)
			for _, w := range []struct{ what, value, script string }{
				{"comment first, printf", "# one image, one step\nreport_builder\n",
					`printf '# one image, one step\nreport_builder\n' > mnt/lines/config/chains`},
				{"edges before bindings, printf", "a -> b\na <- maker_a\nb <- stamper\n",
					`printf 'a -> b\na <- maker_a\nb <- stamper\n' > mnt/lines/config/chains`},
				{"comment first, one echo a line", "# daily report\nfetch <- data_fetcher\n",
					`{ echo '# daily report'; echo 'fetch <- data_fetcher'; } > mnt/lines/config/chains`},
			} {
				// The same bytes in one write are a valid value.
				chainsWrite(t, d, "lines.txt", w.value)
				d.ok(t, `cat lines.txt > mnt/lines/config/chains`)
				d.wantFile(t, "mnt/lines/config/chains", w.value)
				d.ok(t, `echo maker_a > mnt/lines/config/chains`)
				if r := d.sh(t, w.script); r.code != 0 {
					t.Errorf("%s: a valid chains file was refused:\n%s\njob log: %s", w.what, r, d.ok(t, `tail -n 1 mnt/lines/log`))
				}
			}
		},
	}, {
		name: "refused writes",
		check: func(t *testing.T) {
			chainsImage(t, d, "not_exec", "#!/bin/sh\necho never\n")
			if err := os.Chmod(filepath.Join(d.repos, owner, "not_exec", "entrypoint"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(d.repos, owner, "no_entrypoint"), 0o755); err != nil {
				t.Fatal(err)
			}
			d.ok(t, `mkdir mnt/strict && cat > mnt/strict/config/chains <<'EOF'
# keep me
report_builder
EOF`)
			old := d.cat(t, "mnt/strict/config/chains")
			if old != "# keep me\nreport_builder\n" {
				t.Errorf("config/chains reads %q, want what was written", old)
			}
			for _, tc := range []struct {
				name, value, tool, want string
			}{
				{"unknown image", "fetch <- data_fetcher\nghost <- no_such_image\nfetch -> ghost\n", "printf",
					`line 2: unknown image @` + owner + `/no_such_image:latest`},
				{"entrypoint not executable", "a <- maker_a\nx <- not_exec\n", "echo",
					`line 2: unknown image @` + owner + `/not_exec:latest: no executable`},
				{"no entrypoint", "no_entrypoint\n", "printf",
					`line 1: unknown image @` + owner + `/no_entrypoint:latest: no executable`},
				{"unbound label", "fetch <- data_fetcher\nfetch -> render\n", "cat", `line 2: unbound label "render"`},
				{"label bound twice", "a <- data_fetcher\nb <- transformer\na <- chart_builder\n", "printf",
					`line 3: label "a" is bound twice (first on line 1)`},
				{"cycle", "a <- data_fetcher\nb <- transformer\nc <- chart_builder\na -> b -> c\nc -> a\n", "echo", `cycle: `},
				{"fan-out on a first step", "a <- splitter\nb <- page_renderer\n.a -> b\n", "printf", `line 3: fan-out .a needs a step before it`},
				{"OR", "a <- maker_a\nb <- maker_b\nc <- joiner\na | b -> c\n", "echo", `line 4: OR dependencies (|) are reserved`},
				{"only comments", "# nothing here\n\n   # still nothing\n", "cat", `empty`},
				{"garbage", "this is not a chain\n", "echo", `line 1: cannot read "this is not a chain"`},
				{"image path escape", "a <- ../../etc\n", "printf", `line 1: bad image reference "../../etc"`},
				{"owner path escape", "@root/../x\n", "echo", `line 1: cannot read`},
			} {
				// Errors later lines could cure (an empty file, an edge to a
				// label bound further down) are found when the file is
				// closed: cat reports a failed close, bash's builtins do not.
				var script string
				if tc.tool == "echo" {
					script = `echo "${V%?}" > mnt/strict/config/chains` // echo puts the newline back
				} else if tc.tool == "cat" {
					script = `printf '%s' "$V" > value.txt && cat value.txt > mnt/strict/config/chains`
				} else {
					script = `printf '%s' "$V" > mnt/strict/config/chains`
				}
				r := d.sh(t, script, "V="+tc.value)
				if r.code != 1 || !strings.Contains(r.err, tc.tool+": write error: Invalid argument") {
					t.Errorf("%s: want exit 1 and %s: write error: Invalid argument:\n%s", tc.name, tc.tool, r)
				}
				d.wantFile(t, "mnt/strict/config/chains", old)
				last := d.ok(t, `tail -n 1 mnt/strict/log`)
				if !strings.Contains(last, " config/chains rejected: ") || !strings.Contains(last, tc.want) {
					t.Errorf("%s: tail -n 1 log = %q, want config/chains rejected: ...%s...", tc.name, last, tc.want)
				}
				if tc.name != "only comments" && !regexp.MustCompile(` config/chains rejected: line \d+: `).MatchString(last) {
					t.Errorf("%s: tail -n 1 log = %q, want config/chains rejected: line N: ...", tc.name, last)
				}
			}
			// bash's echo ignores an error found at close, but the value is
			// kept and the log says why.
			d.sh(t, `echo 'a -> b' > mnt/strict/config/chains`)
			d.wantFile(t, "mnt/strict/config/chains", old)
			if last := d.ok(t, `tail -n 1 mnt/strict/log`); !strings.Contains(last, `config/chains rejected: line 1: unbound label "a"`) {
				t.Errorf("after echo 'a -> b': tail -n 1 log = %q, want the unbound label", last)
			}
			if got := d.ok(t, `ls mnt/strict/runs`); got != "latest\n" && got != "" {
				t.Errorf("refused writes started runs: ls runs = %q", got)
			}
			// A good value is still accepted afterwards.
			d.ok(t, `echo 'a <- maker_a' > mnt/strict/config/chains`)
			d.wantFile(t, "mnt/strict/config/chains", "a <- maker_a\n")
		},
	}, {
		name: "hostile uploads",
		check: func(t *testing.T) {
			d.ok(t, `mkdir mnt/up && echo report_builder > mnt/up/config/chains`)
			chainsWrite(t, d, "x", "hostile\n")
			chainsWrite(t, d, "fine.txt", "fine\n")
			d.ok(t, `cp fine.txt mnt/up/input/`)
			short := strings.TrimSpace(d.cat(t, "mnt/up/shortname"))
			jobDisk := filepath.Join(d.state, "jobs", short)
			before := chainsTree(t, d.state)
			beforeJob := d.ok(t, `ls -A mnt/up`)

			// input.json belongs to the payload.
			d.fails(t, `cp x mnt/up/input/input.json`, "Invalid argument")
			if got := d.ok(t, `tail -n 1 mnt/up/log`); !strings.Contains(got, "input/input.json rejected: ") {
				t.Errorf("tail -n 1 log = %q, want input/input.json rejected: ...", got)
			}
			d.fails(t, `echo evil > mnt/up/input/input.json`, "Invalid argument")
			d.fails(t, `mv mnt/up/input/fine.txt mnt/up/input/input.json`, "Invalid argument")

			// The kernel resolves `..` before jobfs sees a name: the target is
			// the job folder, where cp may not create a file either.
			d.fails(t, `cp x 'mnt/up/input/..'`, "Invalid argument")
			d.fails(t, `cp x 'mnt/up/input/../x'`, "Invalid argument")
			if got := d.ok(t, `tail -n 1 mnt/up/log`); !strings.Contains(got, "x rejected: ") {
				t.Errorf("tail -n 1 log = %q, want x rejected: ...", got)
			}
			// os.open with .. components that resolve into the job folder or
			// the mount's root, or through a folder that is not there.
			out := d.ok(t, `python3 -c '
import os, sys
for name in sys.argv[1:]:
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        print(name, "CREATED")
    except OSError as e:
        print(name, e.strerror)
' mnt/up/input/../escape1 mnt/up/input/../../escape2 mnt/up/input/../input/../../up/escape3 mnt/up/input/nodir/../../escape4`)
			t.Logf("os.open of names with ..:\n%s", out)
			if strings.Contains(out, "CREATED") || strings.Count(out, "\n") != 4 {
				t.Errorf("want 4 refused opens, got:\n%s", out)
			}
			// An absurdly long name.
			long := strings.Repeat("y", 300)
			r := d.sh(t, `cp x "mnt/up/input/$N"`, "N="+long)
			if r.code == 0 || !(strings.Contains(r.err, "File name too long") || strings.Contains(r.err, "Invalid argument")) {
				t.Errorf("a 300-character name: want File name too long or Invalid argument:\n%s", r)
			}

			// Nothing was created: not in the mount, not on disk.
			if got := d.ok(t, `ls -A mnt/up/input`); got != "fine.txt\n" {
				t.Errorf("ls -A input = %q, want only fine.txt", got)
			}
			if got := d.ok(t, `ls -A mnt/up`); got != beforeJob {
				t.Errorf("ls -A mnt/up = %q, was %q", got, beforeJob)
			}
			if got := d.ok(t, `ls -A mnt | grep -c escape || true`); got != "0\n" {
				t.Errorf("ls mnt has escape files: %q", got)
			}
			for p := range chainsTree(t, d.state) {
				if !before[p] && (strings.Contains(p, "escape") || strings.HasSuffix(p, "/x") || strings.Contains(p, "yyyy") ||
					(strings.HasPrefix(p, jobDisk) && strings.HasSuffix(p, "input.json"))) {
					t.Errorf("on disk, %s appeared", p)
				}
			}
			// The run gets the payload as input.json and the one good upload.
			d.trigger(t, "up", `{"up": 1}`)
			if got := d.waitRun(t, "up", 1); got != "COMPLETED" {
				t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/up/runs/1/log"))
			}
			if got := d.ok(t, `ls mnt/up/runs/1/input`); got != "fine.txt\ninput.json\n" {
				t.Errorf("ls runs/1/input = %q, want fine.txt input.json", got)
			}
			d.wantFile(t, "mnt/up/runs/1/input/input.json", "{\"up\": 1}\n")
		},
	}, {
		name: "git label",
		start: func(t *testing.T) {
			d.ok(t, `set -e
g() { git -C "$R" -c user.name=jobfs-test -c user.email=test@jobfs.invalid -c init.defaultBranch=main "$@"; }
mkdir -p "$R"
g init -q
printf '#!/bin/sh\necho "running v1"\necho v1 > "$2/version"\nif touch /app/probe 2>/dev/null; then echo app writable; else echo app read-only; fi\n' > "$R/entrypoint"
chmod 755 "$R/entrypoint"
g add entrypoint
g commit -q -m v1
g tag v1
printf '#!/bin/sh\necho "running v2"\necho v2 > "$2/version"\n' > "$R/entrypoint"
g commit -q -a -m v2
# an uncommitted change: latest is HEAD, not the working tree
printf '#!/bin/sh\necho "running dirty"\necho dirty > "$2/version"\n' > "$R/entrypoint"`, "R="+gitRepo)
			gitV1 = strings.TrimSpace(d.ok(t, `git -C "$R" rev-parse v1`, "R="+gitRepo))
			d.ok(t, `mkdir mnt/pinned mnt/head mnt/both
echo "@$O/gitimg:v1" > mnt/pinned/config/chains
echo gitimg > mnt/head/config/chains
printf 'old <- @%s/gitimg:%s\nnew <- @%s/gitimg:main\nold -> new\n' "$O" "$C" "$O" > mnt/both/config/chains`,
				"O="+owner, "C="+gitV1[:12])
			for _, j := range []string{"pinned", "head", "both"} {
				d.trigger(t, j, "{}")
			}
		},
		check: func(t *testing.T) {
			for _, j := range []string{"pinned", "head", "both"} {
				if got := d.waitRun(t, j, 1); got != "COMPLETED" {
					t.Fatalf("%s: run ended %s, want COMPLETED; log:\n%s", j, got, d.cat(t, "mnt/"+j+"/runs/1/log"))
				}
			}
			// A tag: the old commit, from a read-only snapshot.
			d.wantFile(t, "mnt/pinned/runs/1/result", "v1\n")
			d.wantFile(t, "mnt/pinned/runs/1/log", "running v1\napp read-only\n")
			if probes, _ := filepath.Glob(filepath.Join(d.state, "images", "*", gitV1, "probe")); len(probes) > 0 {
				t.Errorf("a step wrote into the snapshot of %s", gitV1)
			}
			// latest (a bare name) is HEAD: v2, not the uncommitted change.
			d.wantFile(t, "mnt/head/runs/1/result", "v2\n")
			// A commit id and a branch in one chain.
			d.wantFile(t, "mnt/both/runs/1/steps/old/output/version", "v1\n")
			d.wantFile(t, "mnt/both/runs/1/result", "v2\n")

			// An unknown label is refused at write.
			old := d.cat(t, "mnt/pinned/config/chains")
			d.fails(t, `echo "@$O/gitimg:v9" > mnt/pinned/config/chains`, "echo: write error: Invalid argument", "O="+owner)
			d.wantFile(t, "mnt/pinned/config/chains", old)
			if got := d.ok(t, `tail -n 1 mnt/pinned/log`); !strings.Contains(got, `config/chains rejected: line 1: image @`+owner+`/gitimg:v9: "v9" is not a branch, tag or commit`) {
				t.Errorf("tail -n 1 log = %q, want the unknown label v9 named", got)
			}
			// A plain folder has only latest.
			d.fails(t, `echo "@$O/report_builder:v1" > mnt/pinned/config/chains`, "echo: write error: Invalid argument", "O="+owner)
			d.wantFile(t, "mnt/pinned/config/chains", old)
		},
	}}
	for _, c := range cases {
		if c.start != nil {
			c.start(t)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.check(t)
		})
	}
}

// chainsFanInstances checks that render.1 .. render.5 of the job's run 1
// completed and each saw exactly one file, together every part once; it
// returns their content.txt in instance order.
func chainsFanInstances(t *testing.T, d *daemon, job string) []string {
	t.Helper()
	var contents []string
	for i := 1; i <= 5; i++ {
		step := fmt.Sprintf("mnt/%s/runs/1/steps/render.%d/", job, i)
		d.wantFile(t, step+"status", "COMPLETED\n")
		seen := d.cat(t, step+"output/seen.txt")
		content := d.cat(t, step+"output/content.txt")
		if !regexp.MustCompile(`^part[1-5]\.txt\n$`).MatchString(seen) {
			t.Errorf("render.%d saw %q, want exactly one part file", i, seen)
		} else if want := "part " + seen[4:5] + "\n"; content != want {
			t.Errorf("render.%d: content %q, want %q", i, content, want)
		}
		contents = append(contents, content)
	}
	sorted := slices.Clone(contents)
	sort.Strings(sorted)
	if want := []string{"part 1\n", "part 2\n", "part 3\n", "part 4\n", "part 5\n"}; !slices.Equal(sorted, want) {
		t.Errorf("the instances got %q, want each part once", sorted)
	}
	return contents
}

// TestChainResultCap: over --max-result the run fails with novem's message
// and keeps no output, for a single step and for a pipeline.
func TestChainResultCap(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{args: []string{"--max-result", "1"}})
	const size = 2_100_000 // bytes: 2.1 MB against 1 MB
	chainsImage(t, d, "big", fmt.Sprintf("#!/bin/sh\nhead -c %d /dev/zero > \"$2/big.bin\"\necho wrote\n", size))
	chainsImage(t, d, "pass", "#!/bin/sh\ncp \"$1\"/* \"$2\"/\necho passed\n")
	chainsImage(t, d, "small", "#!/bin/sh\nhead -c 900000 /dev/zero > \"$2/small.bin\"\n")
	want := fmt.Sprintf("Job result is too large: %.1f MB exceeds the 1 MB limit.", float64(size)/1e6)
	if want != "Job result is too large: 2.1 MB exceeds the 1 MB limit." {
		t.Fatalf("test arithmetic: %q", want)
	}
	// Every run starts first; the subtests then check them.
	cases := []struct{ job, chains string }{
		{"single", "big\n"},
		{"pipeline", "make <- big\ncopy <- pass\nmake -> copy\n"},
	}
	for _, tc := range cases {
		d.ok(t, `mkdir "mnt/$J" && printf '%s' "$C" > "mnt/$J/config/chains"`, "J="+tc.job, "C="+tc.chains)
		d.trigger(t, tc.job, "{}")
	}
	d.ok(t, `mkdir mnt/small && echo small > mnt/small/config/chains`)
	d.trigger(t, "small", "{}")
	for _, tc := range cases {
		t.Run(tc.job, func(t *testing.T) {
			t.Parallel()
			if got := d.waitRun(t, tc.job, 1); got != "FAILED" {
				t.Fatalf("run ended %s, want FAILED; log:\n%s", got, d.cat(t, "mnt/"+tc.job+"/runs/1/log"))
			}
			run := "mnt/" + tc.job + "/runs/1/"
			d.wantFile(t, run+"error", want+"\n")
			if got := d.cat(t, run+"log"); !strings.Contains(got, want) {
				t.Errorf("runs/1/log = %q, want %q", got, want)
			}
			if got := d.ok(t, `ls -A "$R/output"`, "R="+run); got != "" {
				t.Errorf("ls -A runs/1/output = %q, want it empty", got)
			}
			d.fails(t, `cat "$R/result"`, "No such file or directory", "R="+run)
			// No output is kept: not in the final steps' output/ either.
			if left := d.ok(t, `ls -R "$R/steps" | grep -c '\.bin$' || true`, "R="+run); left != "0\n" {
				t.Errorf("%s: %s .bin files left in steps/*/output, want none", tc.job, strings.TrimSpace(left))
			}
		})
	}
	t.Run("under the cap", func(t *testing.T) {
		t.Parallel()
		if got := d.waitRun(t, "small", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/small/runs/1/log"))
		}
		if got := d.ok(t, `wc -c < mnt/small/runs/1/result`); got != "900000\n" {
			t.Errorf("wc -c result = %q, want 900000", got)
		}
	})
}

// TestChainStepOverhead measures, without asserting, what a step costs:
// the wall time from the trigger to the run's end for a chain of ten steps
// that do nothing against a chain of one. It does not call t.Parallel, so
// that the package's other tests do not run beside it. With a -race build
// every step pays about 1 s more: the step's init is the daemon's binary,
// and the race runtime sleeps 1 s (GORACE atexit_sleep_ms) before it exits.
func TestChainStepOverhead(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	chainsImage(t, d, "noop", "#!/bin/sh\ntrue\n")
	var ten strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&ten, "s%d <- noop\n", i)
	}
	for i := 1; i <= 10; i++ {
		if i > 1 {
			ten.WriteString(" -> ")
		}
		fmt.Fprintf(&ten, "s%d", i)
	}
	ten.WriteString("\n")
	d.ok(t, `mkdir mnt/one mnt/ten && echo noop > mnt/one/config/chains && cat > mnt/ten/config/chains <<EOF
$C
EOF`, "C="+strings.TrimSuffix(ten.String(), "\n"))

	// measure triggers a run and polls its status until it has ended: on a
	// loaded machine a run of ten steps can outlast the harness's waits.
	measure := func(job string, id int) time.Duration {
		start := time.Now()
		d.trigger(t, job, "{}")
		path := filepath.Join(d.mnt, job, "runs", fmt.Sprint(id), "status")
		for deadline := start.Add(3 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			b, _ := os.ReadFile(path)
			if st := strings.TrimSpace(string(b)); slices.Contains(terminal, st) {
				if st != "COMPLETED" {
					t.Fatalf("%s run %d ended %s; log:\n%s", job, id, st, d.cat(t, fmt.Sprintf("mnt/%s/runs/%d/log", job, id)))
				}
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s run %d: not ended after %v", job, id, time.Since(start))
			}
		}
	}
	one := min(measure("one", 1), measure("one", 2))
	tenSteps := measure("ten", 1)
	if got := d.ok(t, `ls mnt/ten/runs/1/steps | wc -l`); got != "10\n" {
		t.Errorf("the ten-step run has %q steps", got)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("1-step chain: %v; 10-step chain: %v; per extra step: %v (loadavg %s, %d CPUs, binary %s)",
		one.Round(time.Millisecond), tenSteps.Round(time.Millisecond), ((tenSteps - one) / 9).Round(time.Millisecond),
		strings.TrimSpace(string(load)), runtime.NumCPU(), jobfsBin)
}

// chainsOwner is the user whose repos folder holds the images of the
// daemon's jobs (the test's user: the daemon runs as it).
func chainsOwner(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// chainsImage makes image <repos>/<owner>/name with an executable entrypoint.
func chainsImage(t *testing.T, d *daemon, name, entrypoint string) {
	t.Helper()
	dir := filepath.Join(d.repos, chainsOwner(t), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "entrypoint"), []byte(entrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
}

var chainsStampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`)

// chainsWrite writes a file in the daemon's folder (next to mnt/).
func chainsWrite(t *testing.T, d *daemon, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// chainsRead reads a file of the daemon's folder.
func chainsRead(t *testing.T, d *daemon, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// chainsTree lists every path below dir.
func chainsTree(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		out[p] = true
		return nil
	})
	return out
}
