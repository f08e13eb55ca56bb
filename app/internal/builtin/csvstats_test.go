package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestCSVStatsTask(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		args map[string]any
		want CSVStatsResult
	}{
		{
			name: "default operations",
			args: map[string]any{"csv": "region,amount\nnorth,10\nsouth,5\nnorth,2.5\n", "group_by": "region", "value": "amount"},
			want: CSVStatsResult{GroupBy: "region", Value: "amount", Rows: 3, Groups: []CSVGroup{
				{Key: "north", Count: new(2), Sum: new(12.5), Avg: new(6.25)},
				{Key: "south", Count: new(1), Sum: new(5.0), Avg: new(5.0)},
			}},
		},
		{
			name: "all operations",
			args: map[string]any{
				"csv":      "id,team,score\n1,b,-3\n2,a,7\n3,b,4.5\n4,b,1e1\n",
				"group_by": "team", "value": "score", "ops": []string{"max", "min", "avg", "sum", "count"},
			},
			want: CSVStatsResult{GroupBy: "team", Value: "score", Rows: 4, Groups: []CSVGroup{
				{Key: "a", Count: new(1), Sum: new(7.0), Avg: new(7.0), Min: new(7.0), Max: new(7.0)},
				{Key: "b", Count: new(3), Sum: new(11.5), Avg: new(11.5 / 3), Min: new(-3.0), Max: new(10.0)},
			}},
		},
		{
			name: "count without value",
			args: map[string]any{"csv": "colour\nred\nblue\nred\n", "group_by": "colour", "ops": []string{"count"}},
			want: CSVStatsResult{GroupBy: "colour", Rows: 3, Groups: []CSVGroup{
				{Key: "blue", Count: new(1)},
				{Key: "red", Count: new(2)},
			}},
		},
		{
			name: "count ignores non-numeric value",
			args: map[string]any{"csv": "k,v\nx,abc\n", "group_by": "k", "value": "v", "ops": []string{"count"}},
			want: CSVStatsResult{GroupBy: "k", Value: "v", Rows: 1, Groups: []CSVGroup{{Key: "x", Count: new(1)}}},
		},
		{
			name: "semicolon and quotes",
			args: map[string]any{
				"csv":      "\"city; state\";amount\n\"Portland; OR\";\" 1.5 \"\n\"Line\nbreak\";2\n\"Portland; OR\";+3\n",
				"group_by": "city; state", "value": "amount", "delimiter": ";",
			},
			want: CSVStatsResult{GroupBy: "city; state", Value: "amount", Rows: 3, Groups: []CSVGroup{
				{Key: "Line\nbreak", Count: new(1), Sum: new(2.0), Avg: new(2.0)},
				{Key: "Portland; OR", Count: new(2), Sum: new(4.5), Avg: new(2.25)},
			}},
		},
		{
			name: "tab delimiter and byte order mark",
			args: map[string]any{"csv": "\ufeffk\tv\r\na\t1\r\n\r\na\t2\r\n", "group_by": "k", "value": "v", "delimiter": "\t", "ops": []string{"sum"}},
			want: CSVStatsResult{GroupBy: "k", Value: "v", Rows: 2, Groups: []CSVGroup{{Key: "a", Sum: new(3.0)}}},
		},
		{
			name: "keys sorted as strings",
			args: map[string]any{"csv": "k,v\n9,1\n10,1\n,1\nb,1\nB,1\n", "group_by": "k", "value": "v", "ops": []string{"count"}},
			want: CSVStatsResult{GroupBy: "k", Value: "v", Rows: 5, Groups: []CSVGroup{
				{Key: "", Count: new(1)}, {Key: "10", Count: new(1)}, {Key: "9", Count: new(1)}, {Key: "B", Count: new(1)}, {Key: "b", Count: new(1)},
			}},
		},
		{
			name: "header only",
			args: map[string]any{"csv": "k,v\n", "group_by": "k", "value": "v"},
			want: CSVStatsResult{GroupBy: "k", Value: "v", Rows: 0, Groups: []CSVGroup{}},
		},
		{
			name: "group by value column",
			args: map[string]any{"csv": "v\n1\n1\n2\n", "group_by": "v", "value": "v", "ops": []string{"sum"}},
			want: CSVStatsResult{GroupBy: "v", Value: "v", Rows: 3, Groups: []CSVGroup{{Key: "1", Sum: new(2.0)}, {Key: "2", Sum: new(2.0)}}},
		},
		{
			name: "compensated sum",
			args: map[string]any{"csv": "k,v\na,1e16\na,1\na,-1e16\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\nb,0.1\n", "group_by": "k", "value": "v", "ops": []string{"sum"}},
			// A plain float64 loop gives 0 for a and 0.9999999999999999 for b.
			want: CSVStatsResult{GroupBy: "k", Value: "v", Rows: 13, Groups: []CSVGroup{{Key: "a", Sum: new(1.0)}, {Key: "b", Sum: new(1.0)}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := runTask[CSVStatsResult](t.Context(), t, r, "csvstats", tt.args)
			if err != nil {
				t.Fatalf("Run(csvstats) error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Run(csvstats) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCSVStatsGeneratedRows aggregates random integer rows, whose float64 sums are exact, and
// compares them with sums computed in integers.
func TestCSVStatsGeneratedRows(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	rng := rand.New(rand.NewPCG(3, 4))

	for round := range 10 {
		type totals struct{ count, sum, min, max int64 }
		expected := make(map[string]*totals)
		var text strings.Builder
		text.WriteString("when,shop,amount,note\n")
		rows := 1 + rng.IntN(3000)
		for i := range rows {
			shop := fmt.Sprintf("shop-%02d", rng.IntN(25))
			amount := rng.Int64N(2_000_000) - 1_000_000
			fmt.Fprintf(&text, "2024-01-%02d,%s,%d,\"note, %d\"\n", 1+i%28, shop, amount, i)

			total := expected[shop]
			if total == nil {
				total = &totals{min: amount, max: amount}
				expected[shop] = total
			}
			total.count++
			total.sum += amount
			total.min = min(total.min, amount)
			total.max = max(total.max, amount)
		}

		want := CSVStatsResult{GroupBy: "shop", Value: "amount", Rows: rows, Groups: []CSVGroup{}}
		for shop, total := range expected {
			want.Groups = append(want.Groups, CSVGroup{
				Key:   shop,
				Count: new(int(total.count)),
				Sum:   new(float64(total.sum)),
				Avg:   new(float64(total.sum) / float64(total.count)),
				Min:   new(float64(total.min)),
				Max:   new(float64(total.max)),
			})
		}
		slices.SortFunc(want.Groups, func(a, b CSVGroup) int { return strings.Compare(a.Key, b.Key) })

		args := map[string]any{"csv": text.String(), "group_by": "shop", "value": "amount", "ops": []string{"count", "sum", "avg", "min", "max"}}
		got, err := runTask[CSVStatsResult](t.Context(), t, r, "csvstats", args)
		if err != nil {
			t.Fatalf("round %d: Run(csvstats) error = %v", round, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: Run(csvstats) mismatch (-want +got):\n%s", round, diff)
		}
	}
}

func TestCSVStatsMalformedInput(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		args map[string]any
		want string
	}{
		{
			name: "non-numeric value",
			args: map[string]any{"csv": "region,amount\nnorth,1\nsouth,2\neast,abc\n", "group_by": "region", "value": "amount"},
			want: `line 4, column "amount": "abc" is not a number`,
		},
		{
			name: "empty value",
			args: map[string]any{"csv": "region,amount\nnorth,\n", "group_by": "region", "value": "amount"},
			want: `line 2, column "amount": the value is empty, expected a number`,
		},
		{
			name: "decimal comma",
			args: map[string]any{"csv": "region;amount\nnorth;1,5\n", "group_by": "region", "value": "amount", "delimiter": ";"},
			want: `line 2, column "amount": "1,5" is not a number`,
		},
		{
			name: "hexadecimal",
			args: map[string]any{"csv": "k,v\na,0x10\n", "group_by": "k", "value": "v"},
			want: `line 2, column "v": "0x10" is not a number`,
		},
		{
			name: "NaN",
			args: map[string]any{"csv": "k,v\na,1\na,NaN\n", "group_by": "k", "value": "v"},
			want: `line 3, column "v": "NaN" is not a finite number`,
		},
		{
			name: "infinity",
			args: map[string]any{"csv": "k,v\na,-Inf\n", "group_by": "k", "value": "v"},
			want: `line 2, column "v": "-Inf" is not a finite number`,
		},
		{
			name: "value beyond float64",
			args: map[string]any{"csv": "k,v\na,1e999\n", "group_by": "k", "value": "v"},
			want: `line 2, column "v": "1e999" is beyond the float64 range of about ±1.8e308`,
		},
		{
			name: "sum beyond float64",
			args: map[string]any{"csv": "k,v\na,1.5e308\nb,1\na,1.5e308\n", "group_by": "k", "value": "v"},
			want: `line 4, column "v": the sum is beyond the float64 range of about ±1.8e308 for group "a"`,
		},
		{
			name: "ragged row",
			args: map[string]any{"csv": "a,b,c\n1,2,3\n4,5\n", "group_by": "a", "value": "c"},
			want: "line 3 has 2 fields, but the header row has 3: give every row one field per column",
		},
		{
			name: "extra field",
			args: map[string]any{"csv": "a,b\n1,2,3\n", "group_by": "a", "value": "b"},
			want: "line 2 has 3 fields, but the header row has 2: give every row one field per column",
		},
		{
			name: "missing group column",
			args: map[string]any{"csv": "region,amount\nnorth,1\n", "group_by": "Region", "value": "amount"},
			want: `line 1: the header row has no column "Region" (named by group_by): its columns are "region", "amount"`,
		},
		{
			name: "missing value column after blank lines",
			args: map[string]any{"csv": "\n\nregion,amount\nnorth,1\n", "group_by": "region", "value": "total"},
			want: `line 3: the header row has no column "total" (named by value): its columns are "region", "amount"`,
		},
		{
			name: "many columns listed briefly",
			args: map[string]any{"csv": "c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14,c15,c16,c17,c18,c19,c20,c21,c22\n", "group_by": "x", "ops": []string{"count"}},
			want: `line 1: the header row has no column "x" (named by group_by): its columns are "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15", "c16", "c17", "c18", "c19", "c20" and 2 more`,
		},
		{
			name: "duplicate column",
			args: map[string]any{"csv": "k,v,k\n1,2,3\n", "group_by": "k", "ops": []string{"count"}},
			want: `line 1: the header row has the column "k" (named by group_by) 2 times, first at columns 1 and 3: rename all but one`,
		},
		{
			name: "bare quote",
			args: map[string]any{"csv": "k,v\na,1\nb\"c,2\n", "group_by": "k", "value": "v"},
			want: `line 3, byte 2: bare " in non-quoted-field: put quotes around the whole field and write each quote inside it as ""`,
		},
		{
			name: "unterminated quote",
			args: map[string]any{"csv": "k,v\n\"a,1\nb,2\n", "group_by": "k", "value": "v"},
			want: `line 3, byte 5 in the record that starts on line 2: extraneous or missing " in quoted-field: close the quoted field with " and write each quote inside it as ""`,
		},
		{
			name: "only a byte order mark",
			args: map[string]any{"csv": "\ufeff", "group_by": "k", "value": "v"},
			want: "csv is empty: the first line must be a header row",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.Marshal(tt.args)
			if err != nil {
				t.Fatalf("marshal args: %v", err)
			}
			if _, err := r.Validate("csvstats", raw); err != nil {
				t.Fatalf("Validate(csvstats) error = %v, want nil because only Run reads the CSV", err)
			}

			out, err := r.Run(t.Context(), "csvstats", raw)
			if err == nil {
				t.Fatalf("Run(csvstats) = %s, want an error", out)
			}
			if !task.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Run(csvstats) error:\n got  %s\n want %s", err, tt.want)
			}
		})
	}
}

func TestCSVStatsInvalidArgs(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		raw  string
		want task.FieldError
	}{
		{name: "missing csv", raw: `{"group_by":"k"}`, want: task.FieldError{Field: "args.csv", Message: "is required: give the CSV text with a header row"}},
		{name: "empty csv", raw: `{"csv":"","group_by":"k","value":"v"}`, want: task.FieldError{Field: "args.csv", Message: "is empty: give a header row followed by data rows"}},
		{name: "blank csv", raw: `{"csv":" \n\r\n","group_by":"k","value":"v"}`, want: task.FieldError{Field: "args.csv", Message: "is empty: give a header row followed by data rows"}},
		{name: "missing group by", raw: `{"csv":"k,v\n","value":"v"}`, want: task.FieldError{Field: "args.group_by", Message: "is required: give the name of the column to group rows by"}},
		{name: "empty group by", raw: `{"csv":"k,v\n","group_by":"","value":"v"}`, want: task.FieldError{Field: "args.group_by", Message: "is required: give the name of the column to group rows by"}},
		{name: "missing value", raw: `{"csv":"k,v\n","group_by":"k"}`, want: task.FieldError{Field: "args.value", Message: `is required unless ops is ["count"]: give the name of the numeric column to aggregate`}},
		{name: "missing value for max", raw: `{"csv":"k,v\n","group_by":"k","ops":["count","max"]}`, want: task.FieldError{Field: "args.value", Message: `is required unless ops is ["count"]: give the name of the numeric column to aggregate`}},
		{name: "empty ops", raw: `{"csv":"k,v\n","group_by":"k","value":"v","ops":[]}`, want: task.FieldError{Field: "args.ops", Message: "must list at least one of count, sum, avg, min or max"}},
		{name: "unknown op", raw: `{"csv":"k,v\n","group_by":"k","value":"v","ops":["sum","median"]}`, want: task.FieldError{Field: "args.ops", Message: `element 1 ("median") is not an operation: use count, sum, avg, min or max`}},
		{name: "op in upper case", raw: `{"csv":"k,v\n","group_by":"k","value":"v","ops":["SUM"]}`, want: task.FieldError{Field: "args.ops", Message: `element 0 ("SUM") is not an operation: use count, sum, avg, min or max`}},
		{name: "repeated op", raw: `{"csv":"k,v\n","group_by":"k","value":"v","ops":["sum","avg","sum"]}`, want: task.FieldError{Field: "args.ops", Message: `element 2 ("sum") repeats an earlier element: list each operation once`}},
		{name: "ops not an array", raw: `{"csv":"k,v\n","group_by":"k","value":"v","ops":"sum"}`, want: task.FieldError{Field: "args.ops", Message: "must be an array of strings, got a string"}},
		{name: "long delimiter", raw: `{"csv":"k,v\n","group_by":"k","value":"v","delimiter":";;"}`, want: task.FieldError{Field: "args.delimiter", Message: `must be exactly one character, got ";;"`}},
		{name: "empty delimiter", raw: `{"csv":"k,v\n","group_by":"k","value":"v","delimiter":""}`, want: task.FieldError{Field: "args.delimiter", Message: `must be exactly one character, got ""`}},
		{name: "quote delimiter", raw: `{"csv":"k,v\n","group_by":"k","value":"v","delimiter":"\""}`, want: task.FieldError{Field: "args.delimiter", Message: `cannot be "\"": use a character such as , or ; or | or a tab`}},
		{name: "newline delimiter", raw: `{"csv":"k,v\n","group_by":"k","value":"v","delimiter":"\n"}`, want: task.FieldError{Field: "args.delimiter", Message: `cannot be "\n": use a character such as , or ; or | or a tab`}},
		{name: "replacement delimiter", raw: `{"csv":"k,v\n","group_by":"k","value":"v","delimiter":"\ufffd"}`, want: task.FieldError{Field: "args.delimiter", Message: "cannot be \"\ufffd\": use a character such as , or ; or | or a tab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Run(t.Context(), "csvstats", json.RawMessage(tt.raw))
			wantFieldError(t, err, tt.want)
		})
	}
}

func TestCSVStatsSizeLimit(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	// Long rows keep the row count, and so the run time under -race, low.
	header := "k,v,padding\n"
	row := "a,1," + strings.Repeat("p", 200) + "\n"
	atLimit := header + strings.Repeat(row, (maxCSVBytes-len(header))/len(row))
	got, err := runTask[CSVStatsResult](t.Context(), t, r, "csvstats", map[string]any{"csv": atLimit, "group_by": "k", "value": "v", "ops": []string{"count"}})
	if err != nil {
		t.Fatalf("Run(csvstats) at %d bytes error = %v", len(atLimit), err)
	}
	if want := (maxCSVBytes - len(header)) / len(row); got.Rows != want {
		t.Errorf("Run(csvstats) at the limit rows = %d, want %d", got.Rows, want)
	}

	tooLarge := atLimit + strings.Repeat("x", maxCSVBytes-len(atLimit)+1)
	_, err = runTask[CSVStatsResult](t.Context(), t, r, "csvstats", map[string]any{"csv": tooLarge, "group_by": "k", "value": "v"})
	wantFieldError(t, err, task.FieldError{Field: "args.csv", Message: "must be at most 4194304 bytes, got 4194305 bytes"})
}

func TestCSVStatsCancelled(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	text := "k,v\n" + strings.Repeat("a,1\n", 5*csvCheckRows)
	_, err := runTask[CSVStatsResult](ctx, t, r, "csvstats", map[string]any{"csv": text, "group_by": "k", "value": "v"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run(csvstats) with a cancelled context error = %v, want context.Canceled", err)
	}
	if task.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}
}

func TestParseCSVNumber(t *testing.T) {
	t.Parallel()

	valid := map[string]float64{
		"0": 0, "-0": 0, "+1": 1, "1.": 1, ".5": 0.5, "-.5": -0.5, " 12.25 ": 12.25,
		"1e3": 1000, "1E-2": 0.01, "2.5e+1": 25, "007": 7, "1e-400": 0,
	}
	for text, want := range valid {
		got, err := parseCSVNumber(text)
		if err != nil || got != want {
			t.Errorf("parseCSVNumber(%q) = %v, %v, want %v", text, got, err, want)
		}
	}

	for _, text := range []string{".", "-", "+", "e3", "1e", "1e+", "1.2.3", "1_000", "0x1p3", "1 2", "--1", "١٢", "infinity", "nan"} {
		if got, err := parseCSVNumber(text); err == nil {
			t.Errorf("parseCSVNumber(%q) = %v, want an error", text, got)
		}
	}
}

func FuzzCSVStats(f *testing.F) {
	f.Add("region,amount\nnorth,10\nsouth,5\nnorth,2.5\n", "region", "amount", ",")
	f.Add("\"a;b\";v\n\"x\ny\";1e3\n", "a;b", "v", ";")
	f.Add("k\tv\r\n\"\"\"\"\t-0\r\n", "k", "v", "\t")
	f.Add("k,v\nb\"c,2\n\"open,1\n", "k", "v", ",")
	f.Add("\ufeffk,v,k\n1,NaN,2\n", "k", "v", "|")
	f.Add("k,v\na,1.5e308\na,1.5e308\n", "k", "v", ",")

	r := newRegistry(f)
	f.Fuzz(func(t *testing.T, text, groupBy, value, delimiter string) {
		raw, err := json.Marshal(map[string]any{
			"csv": text, "group_by": groupBy, "value": value, "delimiter": delimiter,
			"ops": []string{"count", "sum", "avg", "min", "max"},
		})
		if err != nil {
			t.Fatalf("marshal args: %v", err)
		}
		out, err := r.Run(context.Background(), "csvstats", raw)
		var panicErr *task.PanicError
		if errors.As(err, &panicErr) {
			t.Fatalf("csvstats panicked: %v\n%s", panicErr.Value, panicErr.Stack)
		}
		if err != nil {
			if !task.IsPermanent(err) {
				t.Fatalf("csvstats error %v is not permanent", err)
			}
			return
		}

		var result CSVStatsResult
		if err := json.Unmarshal(out, &result); err != nil {
			t.Fatalf("decode result %s: %v", out, err)
		}
		counted := 0
		for i, group := range result.Groups {
			if group.Count == nil || group.Sum == nil || group.Avg == nil || group.Min == nil || group.Max == nil {
				t.Fatalf("group %+v lacks a requested operation", group)
			}
			counted += *group.Count
			if *group.Min > *group.Max {
				t.Errorf("group %q min %v > max %v", group.Key, *group.Min, *group.Max)
			}
			if i > 0 && result.Groups[i-1].Key >= group.Key {
				t.Errorf("groups not sorted: %q before %q", result.Groups[i-1].Key, group.Key)
			}
		}
		if counted != result.Rows {
			t.Errorf("group counts sum to %d, want rows %d", counted, result.Rows)
		}
	})
}
