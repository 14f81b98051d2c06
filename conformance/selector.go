package conformance

import (
	"fmt"
	"strings"

	"golang.org/x/net/html"
)

// selector is a list of compound CSS selectors, any of which may match.
// Each compound selector has an optional tag and any number of #id, .class,
// [attribute] and [attribute=value] parts. Combinators (descendant, child)
// are not supported, because the login and consent forms need none.
type selector []compoundSelector

type compoundSelector struct {
	tag        string
	attributes []attributeMatch
}

type attributeMatch struct {
	name string
	// value is compared exactly; for class it is one of the class words.
	value    string
	hasValue bool
}

// parseSelector parses a comma-separated selector list.
func parseSelector(text string) (selector, error) {
	var list selector
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("selector %q has an empty part", text)
		}
		compound, err := parseCompound(part)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", text, err)
		}
		list = append(list, compound)
	}
	return list, nil
}

func parseCompound(text string) (compoundSelector, error) {
	var c compoundSelector
	i := 0
	for i < len(text) && isNameByte(text[i]) {
		i++
	}
	c.tag = strings.ToLower(text[:i])
	for i < len(text) {
		switch text[i] {
		case '#', '.':
			start := i + 1
			j := start
			for j < len(text) && isNameByte(text[j]) {
				j++
			}
			if j == start {
				return c, fmt.Errorf("empty name after %q", text[i])
			}
			name := "id"
			if text[i] == '.' {
				name = "class"
			}
			c.attributes = append(c.attributes, attributeMatch{name: name, value: text[start:j], hasValue: true})
			i = j
		case '[':
			end := strings.IndexByte(text[i:], ']')
			if end < 0 {
				return c, fmt.Errorf("unclosed [ in %q", text)
			}
			inner := text[i+1 : i+end]
			name, value, hasValue := strings.Cut(inner, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"'`)
			if name == "" {
				return c, fmt.Errorf("empty attribute name in %q", text)
			}
			c.attributes = append(c.attributes, attributeMatch{name: name, value: value, hasValue: hasValue})
			i += end + 1
		default:
			return c, fmt.Errorf("unsupported syntax at %q (only tag, #id, .class and [attribute=value] parts are supported)", text[i:])
		}
	}
	return c, nil
}

func isNameByte(b byte) bool {
	return b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// matches reports whether the element n matches any compound selector.
func (s selector) matches(n *html.Node) bool {
	if n == nil || n.Type != html.ElementNode {
		return false
	}
	for _, c := range s {
		if c.matches(n) {
			return true
		}
	}
	return false
}

func (c compoundSelector) matches(n *html.Node) bool {
	if c.tag != "" && c.tag != "*" && n.Data != c.tag {
		return false
	}
	for _, a := range c.attributes {
		value, present := attribute(n, a.name)
		if !present {
			return false
		}
		if !a.hasValue {
			continue
		}
		if a.name == "class" {
			found := false
			for _, word := range strings.Fields(value) {
				if word == a.value {
					found = true
				}
			}
			if !found {
				return false
			}
			continue
		}
		if value != a.value {
			return false
		}
	}
	return true
}

// first returns the first element under root, in document order, that s
// matches.
func (s selector) first(root *html.Node) *html.Node {
	var found *html.Node
	walk(root, func(n *html.Node) bool {
		if s.matches(n) {
			found = n
			return false
		}
		return true
	})
	return found
}

// walk visits the nodes under root in document order until visit returns
// false.
func walk(root *html.Node, visit func(*html.Node) bool) bool {
	if !visit(root) {
		return false
	}
	for child := root.FirstChild; child != nil; child = child.NextSibling {
		if !walk(child, visit) {
			return false
		}
	}
	return true
}

func attribute(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && strings.EqualFold(a.Key, name) {
			return a.Val, true
		}
	}
	return "", false
}
