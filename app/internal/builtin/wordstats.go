package builtin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Limits and defaults of the wordstats args.
const (
	maxTextBytes        = 1 << 20 // 1 MiB
	defaultTop          = 10
	maxTop              = 1000
	defaultMinLength    = 1
	maxMinLength        = 100
	maxStopwords        = 10_000
	wordStatsCheckBytes = 64 << 10 // bytes of text scanned between two checks of ctx
)

// WordStatsResult is the result of the wordstats task.
//
// A word is a run of Unicode letters and digits, with combining marks and with apostrophes
// (' or U+2019) that sit between two letters or digits, so "don't" is one word. Words are
// compared after Unicode case folding and NFC normalization, with U+2019 replaced by '.
// Word lengths count the code points of that normalized form.
type WordStatsResult struct {
	// Words is the number of words in the text.
	Words int `json:"words"`
	// UniqueWords is the number of distinct normalized words, stopwords and short words included.
	UniqueWords int `json:"unique_words"`
	// Characters is the number of Unicode code points in the text.
	Characters int `json:"characters"`
	// Lines is the number of lines. "\n", "\r\n" and a lone "\r" end a line, and a last line
	// without a line break counts too, so "a\nb" and "a\nb\n" both have 2 lines.
	Lines int `json:"lines"`
	// Sentences is an estimate. A sentence is a run of text with at least one word that ends at
	// '.', '!', '?', '…', a CJK full stop, question or exclamation mark, or the end of the text.
	// A '.' directly followed by a letter or digit, as in "3.14", ends no sentence, but the
	// period of an abbreviation such as "Mr." does.
	Sentences int `json:"sentences"`
	// AverageWordLength is the mean word length in code points, 0 for a text without words.
	AverageWordLength float64 `json:"average_word_length"`
	// Top lists the most frequent words that are at least min_length code points long and not
	// stopwords, by count descending and then by word in code point order.
	Top []WordCount `json:"top"`
}

// WordCount is one entry of WordStatsResult.Top.
type WordCount struct {
	// Word is the normalized word.
	Word string `json:"word"`
	// Count is the number of times the word occurs.
	Count int `json:"count"`
}

type wordStatsArgs struct {
	Text      *string  `json:"text"`
	Top       *int     `json:"top,omitempty"`
	MinLength *int     `json:"min_length,omitempty"`
	Stopwords []string `json:"stopwords,omitempty"`
}

func (a wordStatsArgs) Validate() error { return a.validate("") }

// ValidateWithout checks every argument but piped, which a workflow fills in later.
func (a wordStatsArgs) ValidateWithout(piped string) error { return a.validate(piped) }

func (a wordStatsArgs) validate(piped string) error {
	if piped != "text" {
		if a.Text == nil {
			return &task.FieldError{Field: "text", Message: "is required: give the text to analyze as a string"}
		}
		if err := validatePlainText("text", *a.Text, maxTextBytes); err != nil {
			return err
		}
	}
	if piped != "top" && a.Top != nil && (*a.Top < 1 || *a.Top > maxTop) {
		return &task.FieldError{Field: "top", Message: fmt.Sprintf("must be between 1 and %d, got %d", maxTop, *a.Top)}
	}
	if piped != "min_length" && a.MinLength != nil && (*a.MinLength < 1 || *a.MinLength > maxMinLength) {
		return &task.FieldError{Field: "min_length", Message: fmt.Sprintf("must be between 1 and %d, got %d", maxMinLength, *a.MinLength)}
	}
	if piped == "stopwords" {
		return nil
	}
	return validateStopwords(a.Stopwords)
}

// validatePlainText rejects text that is too long, is not UTF-8 or contains a NUL byte.
// Registry decoding already rejects invalid UTF-8, but the check stays here so that the handler
// does not depend on how its args were decoded.
func validatePlainText(field, text string, maxBytes int) error {
	if len(text) > maxBytes {
		return &task.FieldError{Field: field, Message: fmt.Sprintf("must be at most %d bytes, got %d bytes", maxBytes, len(text))}
	}
	if !utf8.ValidString(text) {
		offset := invalidUTF8Offset(text)
		return &task.FieldError{Field: field, Message: fmt.Sprintf("contains invalid UTF-8 at byte offset %d: send text encoded as UTF-8", offset)}
	}
	if offset := strings.IndexByte(text, 0); offset >= 0 {
		return &task.FieldError{Field: field, Message: fmt.Sprintf("contains a NUL byte at byte offset %d: send plain text without NUL characters", offset)}
	}
	return nil
}

func invalidUTF8Offset(text string) int {
	for offset, r := range text {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(text[offset:]); size == 1 {
				return offset
			}
		}
	}
	return -1
}

func validateStopwords(stopwords []string) error {
	if len(stopwords) > maxStopwords {
		return &task.FieldError{Field: "stopwords", Message: fmt.Sprintf("must have at most %d entries, got %d", maxStopwords, len(stopwords))}
	}
	for i, stopword := range stopwords {
		if err := validatePlainText("stopwords", stopword, maxTextBytes); err != nil {
			return err
		}
		if start, end, ok := nextWord(stopword, 0); !ok || start != 0 || end != len(stopword) {
			return &task.FieldError{
				Field:   "stopwords",
				Message: fmt.Sprintf("must contain single words, but element %d (%q) is not one word: use letters and digits, with apostrophes only inside the word", i, stopword),
			}
		}
	}
	return nil
}

func registerWordStats(r *task.Registry) {
	task.Register(r, task.Definition[wordStatsArgs]{
		Name:        "wordstats",
		Description: "Count the words, lines and sentences of a text and list its most frequent words.",
		Run:         runWordStats,
		MaxRetries:  -1,
	})
}

func runWordStats(ctx context.Context, args wordStatsArgs) (any, error) {
	// Validate ran before Run, but a failure here must still be permanent.
	if err := args.Validate(); err != nil {
		return nil, task.Permanent(err)
	}

	top, minLength := defaultTop, defaultMinLength
	if args.Top != nil {
		top = *args.Top
	}
	if args.MinLength != nil {
		minLength = *args.MinLength
	}

	normalizer := newWordNormalizer()
	stopwords := make(map[string]bool, len(args.Stopwords))
	for _, stopword := range args.Stopwords {
		stopwords[normalizer.normalize(stopword)] = true
	}

	return analyzeText(ctx, *args.Text, normalizer, func(word string, length int) bool {
		return length >= minLength && !stopwords[word]
	}, top)
}

// analyzeText computes the statistics of text. ranked selects the words that may appear in
// Top, given the normalized word and its length in code points.
func analyzeText(ctx context.Context, text string, normalizer *wordNormalizer, ranked func(word string, length int) bool, top int) (WordStatsResult, error) {
	result := WordStatsResult{
		Characters: utf8.RuneCountInString(text),
		Lines:      countLines(text),
		Top:        []WordCount{},
	}

	counts := make(map[string]int)
	totalLength := 0
	wordInSentence := false
	nextCheck := 0
	for offset := 0; offset < len(text); {
		if offset >= nextCheck {
			if err := ctx.Err(); err != nil {
				return WordStatsResult{}, err
			}
			nextCheck = offset + wordStatsCheckBytes
		}

		r, size := utf8.DecodeRuneInString(text[offset:])
		if isWordRune(r) {
			_, end, _ := nextWord(text, offset)
			word := normalizer.normalize(text[offset:end])
			counts[word]++
			totalLength += utf8.RuneCountInString(word)
			result.Words++
			wordInSentence = true
			offset = end
			continue
		}

		if wordInSentence && endsSentence(text, offset, r, size) {
			result.Sentences++
			wordInSentence = false
		}
		offset += size
	}
	if wordInSentence {
		result.Sentences++
	}

	result.UniqueWords = len(counts)
	if result.Words > 0 {
		result.AverageWordLength = float64(totalLength) / float64(result.Words)
	}
	result.Top = topWords(counts, ranked, top)
	return result, nil
}

// topWords returns up to limit words that ranked accepts, by count descending and then by word.
func topWords(counts map[string]int, ranked func(word string, length int) bool, limit int) []WordCount {
	candidates := make([]WordCount, 0, len(counts))
	for word, count := range counts {
		if ranked(word, utf8.RuneCountInString(word)) {
			candidates = append(candidates, WordCount{Word: word, Count: count})
		}
	}
	slices.SortFunc(candidates, func(a, b WordCount) int {
		if byCount := cmp.Compare(b.Count, a.Count); byCount != 0 {
			return byCount
		}
		return strings.Compare(a.Word, b.Word)
	})
	return candidates[:min(limit, len(candidates))]
}

// nextWord returns the byte range of the first word that starts at or after text[from:].
func nextWord(text string, from int) (start, end int, ok bool) {
	start = from
	for start < len(text) {
		r, size := utf8.DecodeRuneInString(text[start:])
		if isWordRune(r) {
			break
		}
		start += size
	}
	if start >= len(text) {
		return 0, 0, false
	}

	end = start
	for end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		if isWordRune(r) || unicode.IsMark(r) {
			end += size
			continue
		}
		if isApostrophe(r) {
			if following, _ := utf8.DecodeRuneInString(text[end+size:]); isWordRune(following) {
				end += size
				continue
			}
		}
		break
	}
	return start, end, true
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isApostrophe(r rune) bool {
	return r == '\'' || r == '\u2019'
}

// endsSentence reports whether the rune r of the given size at text[offset:] ends a sentence.
func endsSentence(text string, offset int, r rune, size int) bool {
	switch r {
	case '!', '?', '\u2026', '\u3002', '\uff01', '\uff1f':
		return true
	case '.':
		// A period inside a number or a word, as in "3.14" or "e.g", ends no sentence.
		following, _ := utf8.DecodeRuneInString(text[offset+size:])
		return !isWordRune(following)
	default:
		return false
	}
}

func countLines(text string) int {
	if text == "" {
		return 0
	}
	breaks := strings.Count(text, "\n") + strings.Count(text, "\r") - strings.Count(text, "\r\n")
	if strings.HasSuffix(text, "\n") || strings.HasSuffix(text, "\r") {
		return breaks
	}
	return breaks + 1
}

// wordNormalizer case-folds and NFC-normalizes words. It is not safe for concurrent use,
// because cases.Caser is not.
type wordNormalizer struct {
	fold cases.Caser
}

func newWordNormalizer() *wordNormalizer {
	return &wordNormalizer{fold: cases.Fold()}
}

func (n *wordNormalizer) normalize(word string) string {
	if isASCII(word) {
		// Case folding of ASCII is lower-casing, and ASCII is already in NFC.
		return strings.ToLower(word)
	}
	word = strings.ReplaceAll(word, "\u2019", "'")
	return norm.NFC.String(n.fold.String(word))
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
