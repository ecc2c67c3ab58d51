package crypt

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchChunk = 64 << 10

// benchSecrets are secrets of the kinds jobs set: API tokens, keys,
// passwords, a database URL.
func benchSecrets(n int) [][]byte {
	r := rand.New(rand.NewPCG(3, 4))
	const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	word := func(alphabet string, n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	kinds := []func() string{
		func() string { return "ghp_" + word(b62, 36) },
		func() string { return "AKIA" + word("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) },
		func() string { return word(b62+"+/", 40) },
		func() string { return word("0123456789abcdef", 32) },
		func() string { return "Tr0ub4dor&" + word(b62, 3) },
		func() string { return "postgres://app:" + word(b62, 20) + "@db.internal:5432/app" },
		func() string { return "xoxb-" + word("0123456789", 12) + "-" + word(b62, 24) },
	}
	var out [][]byte
	for i := range n {
		out = append(out, []byte(kinds[i%len(kinds)]()))
	}
	return out
}

// benchLog is log text of a build step: timestamps, levels, paths, numbers,
// with one line in about 200 that carries a secret.
func benchLog(size int, secrets [][]byte) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	words := strings.Fields("the build step compiled package module test passed failed cache hit miss " +
		"downloading resolving linking warning deprecated retry connection established request response " +
		"GET POST /api/v1/jobs status ok error timeout user config env secret token key")
	levels := []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	var sb strings.Builder
	for sb.Len() < size {
		fmt.Fprintf(&sb, "2025-11-25T05:%02d:%02d.%03dZ %-5s [%s] ", r.IntN(60), r.IntN(60), r.IntN(1000),
			levels[r.IntN(len(levels))], words[r.IntN(len(words))])
		for range 4 + r.IntN(10) {
			sb.WriteString(words[r.IntN(len(words))])
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "src/pkg%d/file_%d.go:%d (%d ms)", r.IntN(50), r.IntN(300), r.IntN(2000), r.IntN(5000))
		if len(secrets) > 0 && r.IntN(200) == 0 {
			fmt.Fprintf(&sb, " token=%s", secrets[r.IntN(len(secrets))])
		}
		sb.WriteByte('\n')
	}
	return []byte(sb.String()[:size])
}

// BenchmarkMasker masks 64 KiB writes of log text; compare with
// BenchmarkMaskerBaseline.
func BenchmarkMasker(b *testing.B) {
	for _, n := range []int{0, 1, 20} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			secrets := benchSecrets(n)
			data := benchLog(benchChunk, secrets)
			m := NewMasker(io.Discard, secrets)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				m.Write(data)
			}
			m.Flush()
		})
	}
}

// BenchmarkMaskerBaseline writes the same data without a Masker: to
// io.Discard (the bare cost of a Write), and to a file, which is what the
// log sink does.
func BenchmarkMaskerBaseline(b *testing.B) {
	data := benchLog(benchChunk, benchSecrets(20))
	b.Run("discard", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			io.Discard.Write(data)
		}
	})
	b.Run("file", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			if i%256 == 0 { // keep the file at 16 MiB at most
				f.Truncate(0)
				f.Seek(0, io.SeekStart)
			}
			f.Write(data)
		}
	})
}
