package builtin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestWordStatsTask(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		args map[string]any
		want WordStatsResult
	}{
		{
			name: "simple sentences",
			args: map[string]any{"text": "The cat and the hat. The end!"},
			want: WordStatsResult{
				Words: 7, UniqueWords: 5, Characters: 29, Lines: 1, Sentences: 2, AverageWordLength: 3,
				Top: []WordCount{{"the", 3}, {"and", 1}, {"cat", 1}, {"end", 1}, {"hat", 1}},
			},
		},
		{
			name: "apostrophes",
			args: map[string]any{"text": "Don't stop, don\u2019t 'quote' rock'n'roll dogs' '"},
			want: WordStatsResult{
				Words: 6, UniqueWords: 5, Characters: 45, Lines: 1, Sentences: 1, AverageWordLength: 34.0 / 6,
				Top: []WordCount{{"don't", 2}, {"dogs", 1}, {"quote", 1}, {"rock'n'roll", 1}, {"stop", 1}},
			},
		},
		{
			name: "case folding",
			args: map[string]any{"text": "Straße STRASSE strasse ſun SUN"},
			want: WordStatsResult{
				Words: 5, UniqueWords: 2, Characters: 30, Lines: 1, Sentences: 1, AverageWordLength: 5.4,
				Top: []WordCount{{"strasse", 3}, {"sun", 2}},
			},
		},
		{
			name: "composed and decomposed",
			args: map[string]any{"text": "Über über U\u0308ber"},
			want: WordStatsResult{
				Words: 3, UniqueWords: 1, Characters: 15, Lines: 1, Sentences: 1, AverageWordLength: 4,
				Top: []WordCount{{"über", 3}},
			},
		},
		{
			name: "digits",
			args: map[string]any{"text": "Room 101 and room 101."},
			want: WordStatsResult{
				Words: 5, UniqueWords: 3, Characters: 22, Lines: 1, Sentences: 1, AverageWordLength: 17.0 / 5,
				Top: []WordCount{{"101", 2}, {"room", 2}, {"and", 1}},
			},
		},
		{
			name: "sentence ends",
			args: map[string]any{"text": "3.14 is pi. Really?! Yes\u2026 ... 你好。世界！"},
			want: WordStatsResult{
				Words: 8, UniqueWords: 8, Characters: 36, Lines: 1, Sentences: 5, AverageWordLength: 2.5,
				Top: []WordCount{{"14", 1}, {"3", 1}, {"is", 1}, {"pi", 1}, {"really", 1}, {"yes", 1}, {"世界", 1}, {"你好", 1}},
			},
		},
		{
			name: "line breaks",
			args: map[string]any{"text": "one\ntwo\r\nthree\rfour\n", "top": 1},
			want: WordStatsResult{
				Words: 4, UniqueWords: 4, Characters: 20, Lines: 4, Sentences: 1, AverageWordLength: 3.75,
				Top: []WordCount{{"four", 1}},
			},
		},
		{
			name: "empty text",
			args: map[string]any{"text": ""},
			want: WordStatsResult{Top: []WordCount{}},
		},
		{
			name: "only punctuation",
			args: map[string]any{"text": "?! ...\n\n"},
			want: WordStatsResult{Characters: 8, Lines: 2, Top: []WordCount{}},
		},
		{
			name: "filters apply to top only",
			args: map[string]any{"text": "a an the Apple banana apple THE", "min_length": 2, "stopwords": []string{"The"}},
			want: WordStatsResult{
				Words: 7, UniqueWords: 5, Characters: 31, Lines: 1, Sentences: 1, AverageWordLength: 25.0 / 7,
				Top: []WordCount{{"apple", 2}, {"an", 1}, {"banana", 1}},
			},
		},
		{
			name: "ties broken alphabetically",
			args: map[string]any{"text": "b a c b a d", "top": 2},
			want: WordStatsResult{
				Words: 6, UniqueWords: 4, Characters: 11, Lines: 1, Sentences: 1, AverageWordLength: 1,
				Top: []WordCount{{"a", 2}, {"b", 2}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := runTask[WordStatsResult](t.Context(), t, r, "wordstats", tt.args)
			if err != nil {
				t.Fatalf("Run(wordstats) error = %v", err)
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Run(wordstats) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWordStatsGeneratedText builds a text from known word counts and checks that the task
// finds the same counts.
func TestWordStatsGeneratedText(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	vocabulary := []string{"alpha", "beta", "gamma", "delta", "o'neill", "zürich", "naïve", "42", "x", "日本"}
	separators := []string{" ", ", ", "\n", " - ", "; ", "\t", " (", ") ", " \"", "\" "}
	rng := rand.New(rand.NewPCG(1, 2))

	for round := range 20 {
		counts := make(map[string]int)
		var words []string
		for _, word := range vocabulary {
			n := rng.IntN(50)
			if n > 0 {
				counts[word] = n
			}
			for range n {
				// Vary the case of the first letter, which folding must undo.
				if rng.IntN(2) == 0 {
					first, size := utf8.DecodeRuneInString(word)
					words = append(words, strings.ToUpper(string(first))+word[size:])
				} else {
					words = append(words, word)
				}
			}
		}
		rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
		var text strings.Builder
		for _, word := range words {
			text.WriteString(word)
			text.WriteString(separators[rng.IntN(len(separators))])
		}

		want := WordStatsResult{Words: len(words), UniqueWords: len(counts), Top: []WordCount{}}
		totalLength := 0
		for word, count := range counts {
			want.Top = append(want.Top, WordCount{Word: word, Count: count})
			totalLength += count * utf8.RuneCountInString(word)
		}
		slices.SortFunc(want.Top, func(a, b WordCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Word, b.Word))
		})
		want.Top = want.Top[:min(5, len(want.Top))]
		if len(words) > 0 {
			want.AverageWordLength = float64(totalLength) / float64(len(words))
		}

		got, err := runTask[WordStatsResult](t.Context(), t, r, "wordstats", map[string]any{"text": text.String(), "top": 5})
		if err != nil {
			t.Fatalf("round %d: Run(wordstats) error = %v", round, err)
		}
		// Characters, lines and sentences depend on the separators and are covered above.
		got.Characters, got.Lines, got.Sentences = 0, 0, 0
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: Run(wordstats) mismatch (-want +got):\n%s", round, diff)
		}
	}
}

func TestWordStatsInvalidArgs(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		raw  string
		want task.FieldError
	}{
		{name: "missing text", raw: `{}`, want: task.FieldError{Field: "args.text", Message: "is required: give the text to analyze as a string"}},
		{name: "text not a string", raw: `{"text":["a"]}`, want: task.FieldError{Field: "args.text", Message: "must be a string, got an array"}},
		{name: "NUL byte", raw: `{"text":"ab\u0000c"}`, want: task.FieldError{Field: "args.text", Message: "contains a NUL byte at byte offset 2: send plain text without NUL characters"}},
		{name: "invalid UTF-8", raw: "{\"text\":\"ab\xc3(\"}", want: task.FieldError{Field: "args.text", Message: "contains invalid UTF-8: send text encoded as UTF-8"}},
		{name: "lone surrogate", raw: `{"text":"a\udc00"}`, want: task.FieldError{Field: "args.text", Message: `contains the lone UTF-16 surrogate escape \udc00, which is not a Unicode character: send valid Unicode text`}},
		{name: "top zero", raw: `{"text":"a","top":0}`, want: task.FieldError{Field: "args.top", Message: "must be between 1 and 1000, got 0"}},
		{name: "top too large", raw: `{"text":"a","top":1001}`, want: task.FieldError{Field: "args.top", Message: "must be between 1 and 1000, got 1001"}},
		{name: "min length zero", raw: `{"text":"a","min_length":0}`, want: task.FieldError{Field: "args.min_length", Message: "must be between 1 and 100, got 0"}},
		{name: "min length too large", raw: `{"text":"a","min_length":101}`, want: task.FieldError{Field: "args.min_length", Message: "must be between 1 and 100, got 101"}},
		{name: "stopword not a string", raw: `{"text":"a","stopwords":["a",2]}`, want: task.FieldError{Field: "args.stopwords", Message: "must be an array of strings, but element 1 is a number"}},
		{
			name: "stopword with space", raw: `{"text":"a","stopwords":["the","two words"]}`,
			want: task.FieldError{Field: "args.stopwords", Message: `must contain single words, but element 1 ("two words") is not one word: use letters and digits, with apostrophes only inside the word`},
		},
		{
			name: "stopword quoted", raw: `{"text":"a","stopwords":["'quoted'"]}`,
			want: task.FieldError{Field: "args.stopwords", Message: `must contain single words, but element 0 ("'quoted'") is not one word: use letters and digits, with apostrophes only inside the word`},
		},
		{
			name: "stopword empty", raw: `{"text":"a","stopwords":[""]}`,
			want: task.FieldError{Field: "args.stopwords", Message: `must contain single words, but element 0 ("") is not one word: use letters and digits, with apostrophes only inside the word`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Run(t.Context(), "wordstats", json.RawMessage(tt.raw))
			wantFieldError(t, err, tt.want)
		})
	}
}

func TestWordStatsTextLimit(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	atLimit := strings.Repeat("ab ", maxTextBytes/3) + strings.Repeat("c", maxTextBytes%3)
	got, err := runTask[WordStatsResult](t.Context(), t, r, "wordstats", map[string]any{"text": atLimit})
	if err != nil {
		t.Fatalf("Run(wordstats) at %d bytes error = %v", len(atLimit), err)
	}
	if want := maxTextBytes/3 + 1; got.Words != want {
		t.Errorf("Run(wordstats) at the limit words = %d, want %d", got.Words, want)
	}

	_, err = runTask[WordStatsResult](t.Context(), t, r, "wordstats", map[string]any{"text": atLimit + "d"})
	wantFieldError(t, err, task.FieldError{Field: "args.text", Message: "must be at most 1048576 bytes, got 1048577 bytes"})
}

// TestWordStatsValidateDirect covers checks that registry decoding makes unreachable, for a
// caller that builds the args in Go.
func TestWordStatsValidateDirect(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		text string
		want task.FieldError
	}{
		{name: "invalid UTF-8", text: "ok\xffno", want: task.FieldError{Field: "text", Message: "contains invalid UTF-8 at byte offset 2: send text encoded as UTF-8"}},
		{name: "truncated rune", text: "é\xc3", want: task.FieldError{Field: "text", Message: "contains invalid UTF-8 at byte offset 2: send text encoded as UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runWordStats(t.Context(), wordStatsArgs{Text: &tt.text})
			wantFieldError(t, err, tt.want)
		})
	}
}

func TestWordStatsCancelled(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := runTask[WordStatsResult](ctx, t, r, "wordstats", map[string]any{"text": "some words"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run(wordstats) with a cancelled context error = %v, want context.Canceled", err)
	}
}

func TestCountLines(t *testing.T) {
	t.Parallel()

	tests := map[string]int{
		"":         0,
		"a":        1,
		"a\n":      1,
		"\n":       1,
		"\n\n":     2,
		"a\nb":     2,
		"a\r\nb":   2,
		"a\rb\r":   2,
		"a\n\r\nb": 3,
		"a\r\rb":   3,
	}
	for text, want := range tests {
		if got := countLines(text); got != want {
			t.Errorf("countLines(%q) = %d, want %d", text, got, want)
		}
	}
}

func FuzzWordStats(f *testing.F) {
	f.Add("The cat and the hat. The end!", 10, 1)
	f.Add("Don't stop, don\u2019t 'quote' rock'n'roll", 3, 2)
	f.Add("Straße U\u0308ber \u0301 '' ''a a'' 3.14.", 1, 1)
	f.Add("\r\n\r\n…。！？", 1000, 100)
	f.Add("\xff\xfe invalid", 5, 1)
	f.Add("a\x00b", 5, 1)

	r := newRegistry(f)
	f.Fuzz(func(t *testing.T, text string, top, minLength int) {
		raw, err := json.Marshal(map[string]any{"text": text, "top": top, "min_length": minLength})
		if err != nil {
			t.Fatalf("marshal args: %v", err)
		}
		out, err := r.Run(context.Background(), "wordstats", raw)
		var panicErr *task.PanicError
		if errors.As(err, &panicErr) {
			t.Fatalf("wordstats panicked on %q: %v\n%s", text, panicErr.Value, panicErr.Stack)
		}
		if err != nil {
			if !task.IsPermanent(err) {
				t.Fatalf("wordstats error %v is not permanent", err)
			}
			return
		}

		var result WordStatsResult
		if err := json.Unmarshal(out, &result); err != nil {
			t.Fatalf("decode result %s: %v", out, err)
		}
		if result.UniqueWords > result.Words {
			t.Errorf("unique words %d > words %d", result.UniqueWords, result.Words)
		}
		if len(result.Top) > top || len(result.Top) > result.UniqueWords {
			t.Errorf("top has %d entries, want at most %d and at most %d", len(result.Top), top, result.UniqueWords)
		}
		if result.Sentences > result.Words {
			t.Errorf("sentences %d > words %d", result.Sentences, result.Words)
		}
		ranked := 0
		for i, entry := range result.Top {
			ranked += entry.Count
			if entry.Count < 1 || utf8.RuneCountInString(entry.Word) < minLength {
				t.Errorf("top entry %+v violates count >= 1 or min_length %d", entry, minLength)
			}
			if i > 0 && entry.Count > result.Top[i-1].Count {
				t.Errorf("top entry %d count %d > previous count %d", i, entry.Count, result.Top[i-1].Count)
			}
		}
		if ranked > result.Words {
			t.Errorf("top counts sum to %d > words %d", ranked, result.Words)
		}
	})
}
