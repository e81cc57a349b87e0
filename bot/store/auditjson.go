package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxSafeInteger is the largest integer every JSON parser reads exactly (2^53−1, IEEE 754 double
// precision); canonical JSON allows no other numbers, so each number has exactly one spelling.
const maxSafeInteger = 1<<53 - 1

// maxJSONDepth bounds the nesting of an audit event, so a hostile value cannot exhaust the stack.
const maxJSONDepth = 64

// CanonicalJSON returns v as canonical JSON, the only form an audit event is stored and hashed
// in: RFC 8785 (JSON Canonicalization Scheme) restricted to integer numbers. Object members are
// sorted by the UTF-16 code units of their names, there is no whitespace between tokens, strings
// escape only '"', '\\' and control characters (as \b \t \n \f \r or \u00xx), and every number
// is an integer of magnitude at most 2^53−1 written in plain decimal. The restriction to
// integers means any RFC 8785 implementation, or Python's json.dumps(v, sort_keys=True,
// separators=(",", ":"), ensure_ascii=False) for ASCII member names, reproduces the bytes.
//
// v may be any value encoding/json marshals (a struct, a map) or a json.RawMessage / []byte
// holding JSON text. The top level must be an object. A duplicate member name, a fraction, an
// exponent or a larger integer is an error: put such values in strings.
func CanonicalJSON(v any) (json.RawMessage, error) {
	var data []byte
	switch x := v.(type) {
	case json.RawMessage:
		data = x
	case []byte:
		data = x
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("store: canonical JSON: %w", err)
		}
	}
	return canonicalize(data)
}

// canonicalize parses data strictly (duplicates and non-integer numbers are errors) and writes
// it back in canonical form.
func canonicalize(data []byte) (json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("store: canonical JSON: input is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("store: canonical JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("store: canonical JSON: an audit event must be a JSON object")
	}
	var out bytes.Buffer
	out.Grow(len(data))
	if err := writeCanonical(&out, dec, tok, "$", 0); err != nil {
		return nil, fmt.Errorf("store: canonical JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("store: canonical JSON: unexpected data after the top-level object")
	}
	return out.Bytes(), nil
}

// writeCanonical writes the value that starts with tok, reading the rest of it from dec. path
// names the value in errors ($.targets[0].user_id).
func writeCanonical(out *bytes.Buffer, dec *json.Decoder, tok json.Token, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%s: nested deeper than %d levels", path, maxJSONDepth)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return writeObject(out, dec, path, depth)
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				elem, err := dec.Token()
				if err != nil {
					return err
				}
				if err := writeCanonical(out, dec, elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			out.WriteByte(']')
			return nil
		}
		return fmt.Errorf("%s: unexpected %q", path, t)
	case string:
		writeCanonicalString(out, t)
	case json.Number:
		n, err := canonicalInteger(string(t))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out.WriteString(n)
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("%s: unexpected token %v", path, tok)
	}
	return nil
}

// writeObject writes an object whose '{' was already read, members sorted as RFC 8785 §3.2.3
// requires: by the UTF-16 code units of their names.
func writeObject(out *bytes.Buffer, dec *json.Decoder, path string, depth int) error {
	type member struct {
		name  string
		value []byte
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s: member name is not a string", path)
		}
		if seen[name] {
			return fmt.Errorf("%s: duplicate member %q", path, name)
		}
		seen[name] = true
		value, err := dec.Token()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := writeCanonical(&buf, dec, value, path+"."+name, depth+1); err != nil {
			return err
		}
		members = append(members, member{name, buf.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			out.WriteByte(',')
		}
		writeCanonicalString(out, m.name)
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3), which differs from
// byte order only for characters above U+FFFF against U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// writeCanonicalString writes s quoted as RFC 8785 §3.2.2.2 says: only '"', '\\' and the control
// characters are escaped, the five with short forms as \b \t \n \f \r, the others as \u00xx.
func writeCanonicalString(out *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			out.WriteString(`\"`)
		case c == '\\':
			out.WriteString(`\\`)
		case c == '\b':
			out.WriteString(`\b`)
		case c == '\t':
			out.WriteString(`\t`)
		case c == '\n':
			out.WriteString(`\n`)
		case c == '\f':
			out.WriteString(`\f`)
		case c == '\r':
			out.WriteString(`\r`)
		case c < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte(hex[c>>4])
			out.WriteByte(hex[c&0xf])
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
}

// canonicalInteger returns the one spelling of the JSON number lit, which must be an integer of
// magnitude at most 2^53−1 without fraction or exponent ("-0" becomes "0").
func canonicalInteger(lit string) (string, error) {
	if strings.ContainsAny(lit, ".eE") {
		return "", fmt.Errorf("number %s is not an integer; audit events allow integers only (put it in a string)", lit)
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
		return "", fmt.Errorf("number %s is outside ±(2^53−1); put it in a string", lit)
	}
	return strconv.FormatInt(n, 10), nil
}

// checkCanonical returns an error unless event is exactly its own canonical form, so the bytes
// the store hashes are the bytes any other implementation would produce from the same value.
func checkCanonical(event []byte) error {
	c, err := canonicalize(event)
	if err != nil {
		return err
	}
	if !bytes.Equal(c, event) {
		return errors.New("store: audit event is not canonical JSON (build it with store.CanonicalJSON)")
	}
	return nil
}
