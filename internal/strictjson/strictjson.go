// Package strictjson refuses JSON that encoding/json accepts but may read
// otherwise than its sender meant: an object holding the same key twice
// (encoding/json keeps the last one, and matches keys to fields without
// regard to case, so {"dry_run":true,"DRY_RUN":false} is not a dry run)
// and, where asked, null values (which encoding/json reads as "left out").
//
// Check runs on the bytes before json.Decoder.Decode does; it leaves types,
// unknown fields and malformed JSON to the decoder.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrAmbiguous marks JSON that Check refuses.
var ErrAmbiguous = errors.New("ambiguous JSON")

// Options say what Check refuses besides repeated keys.
type Options struct {
	// NoNull refuses null anywhere ("give a value or leave the field out").
	NoNull bool
}

// frame is one open object or array.
type frame struct {
	object bool
	keys   map[string]string // folded key → the key as written
	key    string            // the key whose value comes next (objects)
	inKey  bool              // the next token is a key (objects)
}

// Check returns an error wrapping ErrAmbiguous when data holds an object
// with two keys that encoding/json would match to the same field (equal
// under Unicode case folding), or, with opt.NoNull, a null. It returns nil
// for malformed JSON, so that the decoder's error is the one reported.
func Check(data []byte, opt Options) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return nil // done, or malformed: the decoder says why
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.object && top.inKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueRead(stack)
				continue
			}
			key, _ := tok.(string)
			folded := strings.ToLower(strings.ToUpper(key))
			if prev, dup := top.keys[folded]; dup {
				if prev == key {
					return fmt.Errorf("%w: key %.60q is given twice", ErrAmbiguous, key)
				}
				return fmt.Errorf("%w: keys %.60q and %.60q name the same field", ErrAmbiguous, prev, key)
			}
			top.keys[folded] = key
			top.key, top.inKey = key, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]string{}, inKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		case nil:
			if opt.NoNull {
				where := "the body"
				if top != nil && top.object {
					where = fmt.Sprintf("%.60q", top.key)
				} else if top != nil {
					where = "an array element"
				}
				return fmt.Errorf("%w: null for %s: give a value or leave the field out", ErrAmbiguous, where)
			}
		}
		valueRead(stack)
	}
}

// valueRead notes that the value of the innermost object's key is read.
func valueRead(stack []*frame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].inKey = true
	}
}
