package task

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// argSchema lists the top-level JSON fields of an args struct type. Fields is nil when the type
// is not a plain struct (or pointer to one), and then only encoding/json checks the field names.
type argSchema struct {
	fields map[string]reflect.Type
	names  []string
}

// schemaOf reads the JSON field names of t the way encoding/json does for plain structs. A struct
// with embedded fields gets no schema, because encoding/json promotes their fields by rules that
// are not worth repeating here.
func schemaOf(t reflect.Type) argSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return argSchema{}
	}

	schema := argSchema{fields: make(map[string]reflect.Type)}
	for field := range t.Fields() {
		if field.Anonymous {
			return argSchema{}
		}
		if !field.IsExported() {
			continue
		}
		tag := field.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = field.Name
		}
		schema.fields[name] = field.Type
		schema.names = append(schema.names, name)
	}
	slices.Sort(schema.names)
	return schema
}

// decodeArgs decodes raw into target strictly and returns a *FieldError for any problem.
//
// Beyond encoding/json with DisallowUnknownFields, it rejects a top level that is not one
// object, duplicate keys and keys that differ from a field name only in case. It also rejects
// invalid UTF-8 and lone UTF-16 surrogate escapes, which encoding/json would silently replace
// with U+FFFD. Missing, empty or null raw args decode as {}.
func decodeArgs(raw json.RawMessage, target any, schema argSchema) error {
	raw = bytes.Trim(raw, " \t\r\n")
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}

	if err := checkSyntax(raw); err != nil {
		return err
	}
	values, err := splitObject(raw, schema)
	if err != nil {
		return err
	}
	if !utf8.Valid(raw) {
		// Every value was checked in splitObject, so the invalid bytes are in a key.
		return &FieldError{Field: "args", Message: "contains a key with invalid UTF-8: send keys encoded as UTF-8"}
	}

	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(target); err != nil {
		return decodeFieldError(err, schema, values)
	}
	return nil
}

// checkSyntax returns a *FieldError unless raw is exactly one valid JSON value.
func checkSyntax(raw json.RawMessage) error {
	if json.Valid(raw) {
		return nil
	}
	var first json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&first); err == nil {
		return &FieldError{Field: "args", Message: "must be a single JSON object, but more data follows it"}
	}
	// Unmarshal reports the offset from the start of raw, which Decoder does not.
	return syntaxFieldError(json.Unmarshal(raw, &first))
}

// splitObject checks that raw is exactly one JSON object with unique, known keys and valid
// Unicode in every value. It returns the raw value of each key.
func splitObject(raw json.RawMessage, schema argSchema) (map[string]json.RawMessage, error) {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	token, err := decoder.Token()
	if err != nil {
		return nil, syntaxFieldError(err)
	}
	if delim, ok := token.(json.Delim); !ok || delim != '{' {
		return nil, &FieldError{Field: "args", Message: "must be a JSON object, got " + describeLiteral(raw)}
	}

	values := make(map[string]json.RawMessage)
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return nil, syntaxFieldError(err)
		}
		key, _ := token.(string) // Token returns object keys as strings.
		var value json.RawMessage
		if err := decoder.Decode(&value); err != nil {
			return nil, syntaxFieldError(err)
		}

		field := "args." + key
		if _, seen := values[key]; seen {
			return nil, &FieldError{Field: field, Message: "is given more than once: give each argument once"}
		}
		if schema.fields != nil {
			if _, known := schema.fields[key]; !known {
				return nil, &FieldError{Field: field, Message: unknownArgumentMessage(schema)}
			}
		}
		if !utf8.Valid(value) {
			return nil, &FieldError{Field: field, Message: "contains invalid UTF-8: send text encoded as UTF-8"}
		}
		if escape, found := loneSurrogate(value); found {
			return nil, &FieldError{
				Field:   field,
				Message: fmt.Sprintf("contains the lone UTF-16 surrogate escape %s, which is not a Unicode character: send valid Unicode text", escape),
			}
		}
		values[key] = value
	}

	if _, err := decoder.Token(); err != nil { // the closing brace
		return nil, syntaxFieldError(err)
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, &FieldError{Field: "args", Message: "must be a single JSON object, but more data follows it"}
	}
	return values, nil
}

func unknownArgumentMessage(schema argSchema) string {
	if len(schema.names) == 0 {
		return "is not an argument of this task, which takes no arguments"
	}
	return "is not an argument of this task: use " + strings.Join(schema.names, ", ") + " (names are case-sensitive)"
}

func syntaxFieldError(err error) *FieldError {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Field: "args", Message: "is not valid JSON: the input ends early"}
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return &FieldError{Field: "args", Message: fmt.Sprintf("is not valid JSON: %v (at byte %d of the args)", syntax, syntax.Offset)}
	}
	return &FieldError{Field: "args", Message: "is not valid JSON: " + err.Error()}
}

// decodeFieldError turns an error from encoding/json into a *FieldError that names the field.
func decodeFieldError(err error, schema argSchema, values map[string]json.RawMessage) *FieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return typeFieldError(typeErr, schema, values)
	}

	var fieldErr *FieldError
	if errors.As(err, &fieldErr) { // from a custom UnmarshalJSON
		return &FieldError{Field: joinField(fieldErr.Field), Message: fieldErr.Message}
	}

	// encoding/json reports an unknown field only as text. The top level is checked in
	// splitObject, so this is a nested object, whose path encoding/json does not give.
	if name, found := strings.CutPrefix(err.Error(), "json: unknown field "); found {
		return &FieldError{Field: "args", Message: "contains the unknown field " + name + " in a nested object"}
	}
	return &FieldError{Field: "args", Message: "is invalid: " + err.Error()}
}

func typeFieldError(err *json.UnmarshalTypeError, schema argSchema, values map[string]json.RawMessage) *FieldError {
	field := joinField(err.Field)
	got := describeTypeErrorValue(err.Value)

	// encoding/json names the slice, not the element, when an element has the wrong type.
	if fieldType, ok := schema.fields[err.Field]; ok {
		fieldType = derefType(fieldType)
		if fieldType.Kind() == reflect.Slice && derefType(fieldType.Elem()) == derefType(err.Type) {
			index := firstBadElement(values[err.Field], fieldType.Elem())
			return &FieldError{
				Field:   field,
				Message: fmt.Sprintf("must be %s, but element %d is %s", describeType(fieldType), index, got),
			}
		}
	}

	// A whole number that does not fit the integer type is a range problem, not a type problem.
	if literal, ok := strings.CutPrefix(err.Value, "number "); ok && isSignedInt(err.Type) && isIntegerLiteral(literal) {
		bits := derefType(err.Type).Bits()
		return &FieldError{
			Field:   field,
			Message: fmt.Sprintf("must be an integer between %d and %d, got %s", minInt(bits), maxInt(bits), literal),
		}
	}

	return &FieldError{Field: field, Message: fmt.Sprintf("must be %s, got %s", describeType(err.Type), got)}
}

// firstBadElement returns the index of the first element of the JSON array raw that does not
// decode into elemType, or -1 if none fails.
func firstBadElement(raw json.RawMessage, elemType reflect.Type) int {
	var elements []json.RawMessage
	if err := json.Unmarshal(raw, &elements); err != nil {
		return -1
	}
	for i, element := range elements {
		if err := json.Unmarshal(element, reflect.New(elemType).Interface()); err != nil {
			return i
		}
	}
	return -1
}

func joinField(field string) string {
	if field == "" {
		return "args"
	}
	return "args." + field
}

// describeTypeErrorValue rewrites UnmarshalTypeError.Value ("number 3.5", "string", "bool") as
// the value the caller sent.
func describeTypeErrorValue(value string) string {
	if literal, ok := strings.CutPrefix(value, "number "); ok {
		return literal
	}
	switch value {
	case "number":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "array":
		return "an array"
	case "object":
		return "an object"
	default:
		return value
	}
}

// describeLiteral names the JSON type of the value that starts raw.
func describeLiteral(raw []byte) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '"':
		return "a string"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// describeType names the JSON value that decodes into t, with an article: "an integer".
func describeType(t reflect.Type) string {
	t = derefType(t)
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array of " + describeElements(t.Elem())
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "a JSON value for Go type " + t.String()
	}
}

// describeElements names the JSON values that decode into t, in the plural: "integers".
func describeElements(t reflect.Type) string {
	t = derefType(t)
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return "strings"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integers"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integers"
	case reflect.Float32, reflect.Float64:
		return "numbers"
	case reflect.String:
		return "strings"
	case reflect.Bool:
		return "booleans"
	case reflect.Slice, reflect.Array:
		return "arrays"
	case reflect.Map, reflect.Struct:
		return "objects"
	default:
		return "values"
	}
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isSignedInt(t reflect.Type) bool {
	switch derefType(t).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	default:
		return false
	}
}

// isIntegerLiteral reports whether s is a JSON number without fraction or exponent.
func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func minInt(bits int) int64 { return math.MinInt64 >> (64 - bits) }

func maxInt(bits int) int64 { return math.MaxInt64 >> (64 - bits) }

// loneSurrogate returns the first \uXXXX escape in the JSON text raw that encodes half of a
// UTF-16 surrogate pair without its other half. raw must be syntactically valid JSON.
func loneSurrogate(raw []byte) (string, bool) {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			unit, ok := escapedUnit(raw, i)
			if !ok {
				i++ // skip the escaped character, which may be a quote
				continue
			}
			escape := string(raw[i : i+6])
			switch {
			case unit >= 0xDC00 && unit <= 0xDFFF:
				return escape, true
			case unit >= 0xD800 && unit <= 0xDBFF:
				low, ok := escapedUnit(raw, i+6)
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return escape, true
				}
				i += 11 // the pair is 12 bytes long
			default:
				i += 5
			}
		}
	}
	return "", false
}

// escapedUnit parses the \uXXXX escape at raw[i:] and returns its UTF-16 code unit.
func escapedUnit(raw []byte, i int) (uint16, bool) {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return 0, false
	}
	unit, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return uint16(unit), true
}
