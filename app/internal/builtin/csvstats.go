package builtin

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Limits and defaults of the csvstats args.
const (
	maxCSVBytes       = 4 << 20 // 4 MiB
	csvCheckRows      = 1024    // rows read between two checks of ctx
	maxListedColumns  = 20      // columns named in a missing-column error
	defaultCSVComma   = ','
	countOperation    = "count"
	csvOperationsHelp = "count, sum, avg, min or max"
)

// csvOperations lists the operations in the order of their fields in CSVGroup.
var csvOperations = []string{countOperation, "sum", "avg", "min", "max"}

// CSVStatsResult is the result of the csvstats task.
//
// Values are parsed as float64 and summed with Neumaier's compensated summation, so the
// rounding error of a sum does not grow with the number of rows as it does in a plain loop.
// Each value is still rounded to float64 when parsed: integers above 2^53 and decimals such as
// 0.1 are not exact, and avg is the rounded sum divided by count.
type CSVStatsResult struct {
	// GroupBy is the column whose values form the groups.
	GroupBy string `json:"group_by"`
	// Value is the aggregated column, empty when only count was requested without a value.
	Value string `json:"value,omitempty"`
	// Groups has one entry per distinct group key, sorted by key in byte order, so "10" comes
	// before "9".
	Groups []CSVGroup `json:"groups"`
	// Rows is the number of data rows, without the header row.
	Rows int `json:"rows"`
}

// CSVGroup holds the aggregates of one group. Only the requested operations are set.
type CSVGroup struct {
	// Key is the group_by value shared by the rows of the group.
	Key string `json:"key"`
	// Count is the number of rows in the group.
	Count *int `json:"count,omitempty"`
	// Sum is the sum of the values.
	Sum *float64 `json:"sum,omitempty"`
	// Avg is Sum divided by Count.
	Avg *float64 `json:"avg,omitempty"`
	// Min is the smallest value.
	Min *float64 `json:"min,omitempty"`
	// Max is the largest value.
	Max *float64 `json:"max,omitempty"`
}

type csvStatsArgs struct {
	CSV       *string  `json:"csv"`
	GroupBy   *string  `json:"group_by"`
	Value     *string  `json:"value,omitempty"`
	Ops       []string `json:"ops,omitempty"`
	Delimiter *string  `json:"delimiter,omitempty"`
}

func (a csvStatsArgs) Validate() error { return a.validate("") }

// ValidateWithout checks every argument but piped, which a workflow fills in later.
func (a csvStatsArgs) ValidateWithout(piped string) error { return a.validate(piped) }

func (a csvStatsArgs) validate(piped string) error {
	if piped != "csv" {
		if a.CSV == nil {
			return &task.FieldError{Field: "csv", Message: "is required: give the CSV text with a header row"}
		}
		if len(*a.CSV) > maxCSVBytes {
			return &task.FieldError{Field: "csv", Message: fmt.Sprintf("must be at most %d bytes, got %d bytes", maxCSVBytes, len(*a.CSV))}
		}
		if strings.TrimSpace(*a.CSV) == "" {
			return &task.FieldError{Field: "csv", Message: "is empty: give a header row followed by data rows"}
		}
	}
	if piped != "group_by" && (a.GroupBy == nil || *a.GroupBy == "") {
		return &task.FieldError{Field: "group_by", Message: "is required: give the name of the column to group rows by"}
	}
	if piped != "ops" {
		if err := validateOperations(a.Ops); err != nil {
			return err
		}
	}
	// Whether value is required depends on ops.
	if piped != "value" && piped != "ops" && a.needsValue() && (a.Value == nil || *a.Value == "") {
		return &task.FieldError{Field: "value", Message: "is required unless ops is [\"count\"]: give the name of the numeric column to aggregate"}
	}
	if piped != "delimiter" && a.Delimiter != nil {
		return validateDelimiter(*a.Delimiter)
	}
	return nil
}

func validateOperations(ops []string) error {
	if ops == nil {
		return nil
	}
	if len(ops) == 0 {
		return &task.FieldError{Field: "ops", Message: "must list at least one of " + csvOperationsHelp}
	}
	for i, op := range ops {
		if !slices.Contains(csvOperations, op) {
			return &task.FieldError{Field: "ops", Message: fmt.Sprintf("element %d (%q) is not an operation: use %s", i, op, csvOperationsHelp)}
		}
		if slices.Index(ops, op) < i {
			return &task.FieldError{Field: "ops", Message: fmt.Sprintf("element %d (%q) repeats an earlier element: list each operation once", i, op)}
		}
	}
	return nil
}

func validateDelimiter(delimiter string) error {
	r, size := utf8.DecodeRuneInString(delimiter)
	if size == 0 || size != len(delimiter) {
		return &task.FieldError{Field: "delimiter", Message: fmt.Sprintf("must be exactly one character, got %q", delimiter)}
	}
	// encoding/csv rejects these, because they are part of the CSV syntax or not characters.
	if r == 0 || r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError {
		return &task.FieldError{Field: "delimiter", Message: fmt.Sprintf("cannot be %q: use a character such as , or ; or | or a tab", delimiter)}
	}
	return nil
}

// operations returns the requested operations, or the default count, sum and avg.
func (a csvStatsArgs) operations() []string {
	if a.Ops == nil {
		return []string{countOperation, "sum", "avg"}
	}
	return a.Ops
}

// needsValue reports whether an operation other than count needs the value column.
func (a csvStatsArgs) needsValue() bool {
	return slices.ContainsFunc(a.operations(), func(op string) bool { return op != countOperation })
}

func (a csvStatsArgs) comma() rune {
	if a.Delimiter == nil {
		return defaultCSVComma
	}
	r, _ := utf8.DecodeRuneInString(*a.Delimiter)
	return r
}

func registerCSVStats(r *task.Registry) {
	task.Register(r, task.Definition[csvStatsArgs]{
		Name:        "csvstats",
		Description: "Group the rows of CSV text by one column and count, sum, average, or take the min or max of another.",
		Run:         runCSVStats,
		MaxRetries:  -1,
	})
}

func runCSVStats(ctx context.Context, args csvStatsArgs) (any, error) {
	// Validate ran before Run, but a failure here must still be permanent.
	if err := args.Validate(); err != nil {
		return nil, task.Permanent(err)
	}

	groups, rows, err := aggregateCSV(ctx, args)
	if err != nil {
		return nil, err
	}

	result := CSVStatsResult{GroupBy: *args.GroupBy, Groups: make([]CSVGroup, 0, len(groups)), Rows: rows}
	if args.Value != nil {
		result.Value = *args.Value
	}
	for key, group := range groups {
		result.Groups = append(result.Groups, group.result(key, args.operations()))
	}
	slices.SortFunc(result.Groups, func(a, b CSVGroup) int { return strings.Compare(a.Key, b.Key) })
	return result, nil
}

// aggregateCSV reads the CSV text of args and returns the aggregates by group key and the number
// of data rows. Errors about the input are permanent and name the line and the column.
func aggregateCSV(ctx context.Context, args csvStatsArgs) (map[string]*groupAggregate, int, error) {
	// A byte order mark from a spreadsheet export would otherwise become part of the first name.
	reader := csv.NewReader(strings.NewReader(strings.TrimPrefix(*args.CSV, "\ufeff")))
	reader.Comma = args.comma()
	reader.FieldsPerRecord = -1 // checked here, to name both field counts in the error
	reader.ReuseRecord = true

	header, err := reader.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, task.Permanent(errors.New("csv is empty: the first line must be a header row"))
	}
	if err != nil {
		return nil, 0, task.Permanent(csvParseError(err))
	}
	header = slices.Clone(header) // ReuseRecord overwrites the slice on the next Read
	headerLine, _ := reader.FieldPos(0)

	groupColumn, err := findColumn(header, headerLine, *args.GroupBy, "group_by")
	if err != nil {
		return nil, 0, task.Permanent(err)
	}
	valueColumn := -1
	if args.needsValue() {
		if valueColumn, err = findColumn(header, headerLine, *args.Value, "value"); err != nil {
			return nil, 0, task.Permanent(err)
		}
	}

	groups := make(map[string]*groupAggregate)
	rows := 0
	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return groups, rows, nil
		}
		if err != nil {
			return nil, 0, task.Permanent(csvParseError(err))
		}
		rows++
		if rows%csvCheckRows == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}

		line, _ := reader.FieldPos(0)
		if len(record) != len(header) {
			return nil, 0, task.Permanent(fmt.Errorf("line %d has %d fields, but the header row has %d: give every row one field per column", line, len(record), len(header)))
		}

		group := groups[record[groupColumn]]
		if group == nil {
			group = &groupAggregate{}
			groups[record[groupColumn]] = group
		}
		if valueColumn < 0 {
			group.count++
			continue
		}

		valueLine, _ := reader.FieldPos(valueColumn)
		value, err := parseCSVNumber(record[valueColumn])
		if err != nil {
			return nil, 0, task.Permanent(fmt.Errorf("line %d, column %q: %w", valueLine, *args.Value, err))
		}
		if err := group.add(value); err != nil {
			return nil, 0, task.Permanent(fmt.Errorf("line %d, column %q: %w for group %q", valueLine, *args.Value, err, record[groupColumn]))
		}
	}
}

// findColumn returns the index of the header column called name. The header row is on line
// headerLine, and argument is the args field that named the column, both for the error message.
func findColumn(header []string, headerLine int, name, argument string) (int, error) {
	var indexes []int
	for i, column := range header {
		if column == name {
			indexes = append(indexes, i)
		}
	}

	switch len(indexes) {
	case 1:
		return indexes[0], nil
	case 0:
		listed := make([]string, 0, min(len(header), maxListedColumns))
		for _, column := range header[:min(len(header), maxListedColumns)] {
			listed = append(listed, strconv.Quote(column))
		}
		more := ""
		if len(header) > maxListedColumns {
			more = fmt.Sprintf(" and %d more", len(header)-maxListedColumns)
		}
		return 0, fmt.Errorf("line %d: the header row has no column %q (named by %s): its columns are %s%s", headerLine, name, argument, strings.Join(listed, ", "), more)
	default:
		return 0, fmt.Errorf("line %d: the header row has the column %q (named by %s) %d times, first at columns %d and %d: rename all but one", headerLine, name, argument, len(indexes), indexes[0]+1, indexes[1]+1)
	}
}

// csvParseError rewrites an encoding/csv error with the line and what to change.
func csvParseError(err error) error {
	var parseErr *csv.ParseError
	if !errors.As(err, &parseErr) {
		return fmt.Errorf("read csv: %w", err)
	}

	hint := ""
	switch {
	case errors.Is(parseErr.Err, csv.ErrBareQuote):
		hint = `: put quotes around the whole field and write each quote inside it as ""`
	case errors.Is(parseErr.Err, csv.ErrQuote):
		hint = `: close the quoted field with " and write each quote inside it as ""`
	}
	// A quoted field can span lines, so the record may start well before the error.
	start := ""
	if parseErr.StartLine != parseErr.Line {
		start = fmt.Sprintf(" in the record that starts on line %d", parseErr.StartLine)
	}
	// ParseError.Column is a 1-based byte index in the line.
	return fmt.Errorf("line %d, byte %d%s: %w%s", parseErr.Line, parseErr.Column, start, parseErr.Err, hint)
}

// parseCSVNumber parses a decimal number such as "-12.5" or "1e3", with surrounding spaces
// allowed. It rejects hexadecimal, NaN, infinities and values beyond the float64 range, all of
// which strconv.ParseFloat would accept or turn into an infinity.
func parseCSVNumber(field string) (float64, error) {
	text := strings.TrimSpace(field)
	if text == "" {
		return 0, errors.New("the value is empty, expected a number")
	}
	if !isDecimalNumber(text) {
		switch strings.ToLower(strings.TrimLeft(text, "+-")) {
		case "nan", "inf", "infinity":
			return 0, fmt.Errorf("%q is not a finite number", field)
		}
		return 0, fmt.Errorf("%q is not a number", field)
	}

	value, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(value, 0) {
		return 0, fmt.Errorf("%q is beyond the float64 range of about ±1.8e308", field)
	}
	return value, nil
}

// isDecimalNumber reports whether s matches [+-]digits[.digits][(e|E)[+-]digits], with at
// least one digit before or after the point.
func isDecimalNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	mantissaDigits := 0
	for i < len(s) && isASCIIDigit(s[i]) {
		i++
		mantissaDigits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
			mantissaDigits++
		}
	}
	if mantissaDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exponentDigits := 0
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
			exponentDigits++
		}
		if exponentDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

// groupAggregate accumulates the values of one group.
type groupAggregate struct {
	count        int
	sum          float64
	compensation float64 // Neumaier's running correction of sum
	min, max     float64
}

// add folds a finite value into the aggregates. It returns an error if the sum leaves the
// float64 range.
func (g *groupAggregate) add(value float64) error {
	if g.count == 0 {
		g.min, g.max = value, value
	}
	g.count++
	g.min = min(g.min, value)
	g.max = max(g.max, value)

	total := g.sum + value
	if math.IsInf(total, 0) {
		return errors.New("the sum is beyond the float64 range of about ±1.8e308")
	}
	// Neumaier: keep the low-order bits that the addition lost, from the smaller operand.
	if math.Abs(g.sum) >= math.Abs(value) {
		g.compensation += (g.sum - total) + value
	} else {
		g.compensation += (value - total) + g.sum
	}
	g.sum = total
	return nil
}

func (g *groupAggregate) result(key string, operations []string) CSVGroup {
	group := CSVGroup{Key: key}
	sum := g.sum + g.compensation
	for _, op := range operations {
		switch op {
		case countOperation:
			group.Count = new(g.count)
		case "sum":
			group.Sum = new(sum)
		case "avg":
			group.Avg = new(sum / float64(g.count))
		case "min":
			group.Min = new(g.min)
		case "max":
			group.Max = new(g.max)
		}
	}
	return group
}
