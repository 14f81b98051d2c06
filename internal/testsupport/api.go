package testsupport

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// APIClient sends requests to one of Latchkey's JSON APIs, the user API or
// the session API, at BaseURL.
type APIClient struct {
	BaseURL string
	// UserAgent is the User-Agent header of every request, which the APIs
	// record in audit events.
	UserAgent string
}

// APIResponse is a response of a JSON API with its body read.
type APIResponse struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// Call sends a request with accessToken, unless empty, as the bearer token.
// A string body is sent as it is, and any other non-nil body as JSON.
func (c APIClient) Call(t testing.TB, accessToken, method, path string, body any) *APIResponse {
	t.Helper()
	response, err := c.Send(accessToken, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return response
}

// Send is Call without t, for goroutines other than the test's, which must
// not call t.Fatal.
func (c APIClient) Send(accessToken, method, path string, body any) (*APIResponse, error) {
	var reader io.Reader
	switch body := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(body)
	default:
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(encoded)
	}

	req, err := http.NewRequest(method, c.BaseURL+path, reader)
	if err != nil {
		return nil, err
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	req.Header.Set("User-Agent", c.UserAgent)

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &APIResponse{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// ExpectStatus fails the test now unless the response has status want.
func (r *APIResponse) ExpectStatus(t testing.TB, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s %s: status %d, expected %d: %.500s", r.Method, r.Path, r.Status, want, r.Body)
	}
}

// Decode reads the JSON body into target, and fails the test now if it
// does not decode.
func (r *APIResponse) Decode(t testing.TB, target any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, target); err != nil {
		t.Fatalf("%s %s: body is not the expected JSON (%v): %.500s", r.Method, r.Path, err, r.Body)
	}
}

// Problem is an RFC 9457 problem document as the APIs write it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// Problem checks that the response is a problem document with status want
// and returns it.
func (r *APIResponse) Problem(t testing.TB, want int) Problem {
	t.Helper()
	r.ExpectStatus(t, want)
	if contentType := r.Header.Get("Content-Type"); !strings.HasPrefix(contentType, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q, expected application/problem+json", r.Method, r.Path, contentType)
	}
	var document Problem
	r.Decode(t, &document)
	if document.Status != want {
		t.Errorf("%s %s: problem status %d, expected %d", r.Method, r.Path, document.Status, want)
	}
	return document
}

// ExpectInvalidToken checks that the response rejects the bearer token as
// invalid_token (RFC 6750 §3.1).
func (r *APIResponse) ExpectInvalidToken(t testing.TB) {
	t.Helper()
	r.Problem(t, http.StatusUnauthorized)
	if challenge := r.Header.Get("WWW-Authenticate"); !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("%s %s: WWW-Authenticate %q, expected error=\"invalid_token\"", r.Method, r.Path, challenge)
	}
}

// Fields returns the sorted names of the fields a problem reports.
func (p Problem) Fields() []string {
	names := make([]string, 0, len(p.Errors))
	for _, fieldError := range p.Errors {
		names = append(names, fieldError.Field)
	}
	slices.Sort(names)
	return names
}
