package builtin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkWordStatsMaxText runs wordstats on a text of the maximum size, mostly ASCII with
// some non-ASCII words.
func BenchmarkWordStatsMaxText(b *testing.B) {
	r := newRegistry(b)
	sentence := "The quick brown fox jumps over the lazy dog; Zürich's naïve café isn't open. "
	text := strings.Repeat(sentence, maxTextBytes/len(sentence))
	raw, err := json.Marshal(map[string]any{"text": text, "top": 100})
	if err != nil {
		b.Fatal(err)
	}

	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := r.Run(b.Context(), "wordstats", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCSVStatsMaxCSV runs csvstats with all operations on a CSV of about the maximum
// size, with 1000 groups.
func BenchmarkCSVStatsMaxCSV(b *testing.B) {
	r := newRegistry(b)
	var text strings.Builder
	text.WriteString("day,shop,amount\n")
	for i := 0; text.Len() < maxCSVBytes-64; i++ {
		fmt.Fprintf(&text, "2024-01-%02d,shop-%03d,%d.%02d\n", 1+i%28, i%1000, i%9973, i%100)
	}
	raw, err := json.Marshal(map[string]any{
		"csv": text.String(), "group_by": "shop", "value": "amount",
		"ops": []string{"count", "sum", "avg", "min", "max"},
	})
	if err != nil {
		b.Fatal(err)
	}

	b.SetBytes(int64(text.Len()))
	for b.Loop() {
		if _, err := r.Run(b.Context(), "csvstats", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFibMax computes F(100000), the largest accepted n.
func BenchmarkFibMax(b *testing.B) {
	r := newRegistry(b)
	raw := json.RawMessage(`{"n":100000}`)
	for b.Loop() {
		if _, err := r.Run(b.Context(), "fib", raw); err != nil {
			b.Fatal(err)
		}
	}
}
