package sessionapi

import (
	"strings"

	"github.com/medama-io/go-useragent"
)

// deviceParser turns a User-Agent header into names a person recognises.
type deviceParser struct {
	parser *useragent.Parser
}

func newDeviceParser() *deviceParser {
	return &deviceParser{parser: useragent.NewParser()}
}

// describe returns a device ("Desktop, Windows") and a browser ("Chrome
// 118") for a User-Agent header, or "Unknown" for what it cannot tell.
func (d *deviceParser) describe(header string) (device, browser string) {
	agent := d.parser.Parse(header)

	var parts []string
	if kind := string(agent.Device()); kind != "" {
		parts = append(parts, kind)
	}
	if os := string(agent.OS()); os != "" {
		parts = append(parts, os)
	}
	device = strings.Join(parts, ", ")
	if device == "" {
		device = "Unknown"
	}

	browser = string(agent.Browser())
	if browser == "" {
		return device, "Unknown"
	}
	if major := agent.BrowserVersionMajor(); major != "" {
		browser += " " + major
	}
	return device, browser
}
