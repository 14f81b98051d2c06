package conformance

import (
	"math"
	"mime"
	"net/http"
	"strings"
)

// shannonBits estimates the entropy of s in bits: the Shannon entropy of
// its character frequencies times its length, as the official suite's
// entropy checks compute it.
func shannonBits(s string) float64 {
	if s == "" {
		return 0
	}
	counts := map[rune]int{}
	total := 0
	for _, r := range s {
		counts[r]++
		total++
	}
	perCharacter := 0.0
	for _, n := range counts {
		p := float64(n) / float64(total)
		perCharacter -= p * math.Log2(p)
	}
	return perCharacter * float64(total)
}

// inRanges reports whether every byte of s lies in one of the inclusive
// ranges, given as pairs.
func inRanges(s string, ranges ...byte) bool {
	for i := 0; i < len(s); i++ {
		ok := false
		for j := 0; j+1 < len(ranges); j += 2 {
			if s[i] >= ranges[j] && s[i] <= ranges[j+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// The character sets of RFC 6749 Appendix A for error, error_description
// and error_uri, and of printable ASCII for tokens.
func validErrorCode(s string) bool { return inRanges(s, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E) }

func validErrorDescription(s string) bool {
	return inRanges(s, 0x09, 0x0A, 0x0D, 0x0D, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E)
}

func validErrorURIChars(s string) bool { return inRanges(s, 0x21, 0x21, 0x23, 0x5B, 0x5D, 0x7E) }

func printableASCII(s string) bool { return inRanges(s, 0x20, 0x7E) }

// mediaType returns the media type of a Content-Type header without its
// parameters, in lower case, or "" when the header is missing or invalid.
func mediaType(header http.Header) string {
	value := header.Get("Content-Type")
	if value == "" {
		return ""
	}
	parsed, _, err := mime.ParseMediaType(value)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(strings.Split(value, ";")[0]))
	}
	return parsed
}

// hasHeaderToken reports whether a comma-separated header contains token,
// compared case-insensitively.
func hasHeaderToken(header http.Header, name, token string) bool {
	for _, value := range header.Values(name) {
		for _, part := range strings.Split(value, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// isOIDCResponseType reports whether rt is one of the six response types
// of OpenID Connect, in any word order.
func isOIDCResponseType(rt string) bool {
	switch normalizeResponseType(rt) {
	case "code", "id_token", "id_token token", "code id_token", "code token", "code id_token token":
		return true
	}
	return false
}

// normalizeResponseType puts the words of a response type in the order
// the official suite names its variants: code, id_token, token.
func normalizeResponseType(rt string) string {
	words := strings.Fields(rt)
	var ordered []string
	for _, w := range []string{"code", "id_token", "token"} {
		for _, x := range words {
			if x == w {
				ordered = append(ordered, w)
				break
			}
		}
	}
	if len(ordered) != len(words) {
		return rt
	}
	return strings.Join(ordered, " ")
}
